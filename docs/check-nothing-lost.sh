#!/bin/bash
# Run from the repository with the venv active (source .venv/bin/activate): needs mosquitto, influxd,
# influx (Debian packages mosquitto, influxdb, influxdb-client) and curl. Takes about 5 minutes.
# Expected: "stored: unknown,0,60000" twice, and no "data loss" or "opened for" lines.
# By-hand: the store stopped for 60 s, then the hub killed with SIGKILL, each under a live stream.
set -u
W=/tmp/gs-by-hand; rm -rf $W; mkdir -p $W/mq
MQTT_PORT=18830 INFLUX_PORT=18086 INFLUX_BIND_PORT=18088
source "$(dirname "$0")/by-hand-lib.sh"
start_mosquitto
start_hub() {
  gridsentinel hub run --mqtt-url mqtt://127.0.0.1:18830 --client-id hub-1 --data-dir $W/hub \
    --http-port 18080 --series influxdb-v1 --series-url http://127.0.0.1:18086 --series-db gridsentinel \
    >> $W/hub.log 2>&1 &
  echo $! > $W/hub.pid
  until curl -s -o /dev/null http://127.0.0.1:18080/healthz; do sleep 0.2; done
}
start_influxd; start_hub
echo "$(date +%T) 1: 60,000 messages over 120 s; influxd stopped for 60 s in the middle"
gridsentinel sim load --url mqtt://127.0.0.1:18830 --devices 50 --messages 60000 --rate 500 \
  --device-prefix out --json > $W/load1.json &
LOAD=$!; sleep 20
kill $(cat $W/influxd.pid); echo "$(date +%T) influxd stopped"; sleep 60
start_influxd; echo "$(date +%T) influxd started again"
wait $LOAD; sleep 15; echo "$(date +%T) stored: $(count out)"
echo "$(date +%T) 2: 60,000 messages over 120 s; the hub killed with SIGKILL after 30 s, restarted 20 s later"
gridsentinel sim load --url mqtt://127.0.0.1:18830 --devices 50 --messages 60000 --rate 500 \
  --device-prefix k9 --json > $W/load2.json &
LOAD=$!; sleep 30
kill -9 $(cat $W/hub.pid); echo "$(date +%T) hub killed"; sleep 20
start_hub; echo "$(date +%T) hub started again"
wait $LOAD; sleep 15; echo "$(date +%T) stored: $(count k9)"
grep -E "data loss|opened for|spool|back after" $W/hub.log
kill $(cat $W/hub.pid) $(cat $W/influxd.pid); pkill -f "mosquitto -c $W"
