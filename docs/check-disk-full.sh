#!/bin/bash
# Run as root from the repository with the venv active (source .venv/bin/activate): needs mosquitto,
# influxd, influx (Debian packages mosquitto, influxdb, influxdb-client), curl and mount. About 3 minutes.
# By-hand: the store stopped for 60 s under a live stream while the hub's spool sits on a 2 MiB disk
# that fills up about 50 s into the outage. Expected: "stored: unknown,0,60000", the hub's
# "holding N lines in memory" error and its spool_failed alert, then "the spool works again".
# OUTAGE_S=120 MESSAGES=90000 keeps the disk full for over a minute (at 500 msgs/s the writer's
# queue, 100,000 points, takes what arrives meanwhile; ingest would wait once it is full).
# POINTS=10 sends 10 points per message: the queue fills within seconds of the disk and ingest
# waits (past 1.5 x the keepalive the connection is given up; it reconnects when the writer goes on).
# DISK=data puts the hub's whole data dir (SQLite state DB, seq journal, spool) on a 3 MiB disk
# instead: then the state DB fills up too ("state DB unavailable ... database or disk is full").
set -u
OUTAGE_S=${OUTAGE_S:-60}; MESSAGES=${MESSAGES:-60000}; DISK=${DISK:-spool}; POINTS=${POINTS:-1}
W=/tmp/gs-disk-full; umount -l $W/hub/spool $W/hub 2>/dev/null; rm -rf $W; mkdir -p $W/mq $W/hub
if [ "$DISK" = data ]; then MNT=$W/hub; SIZE=3m; else MNT=$W/hub/spool; SIZE=2m; mkdir -p $MNT; fi
mount -t tmpfs -o size=$SIZE tmpfs $MNT
MQTT_PORT=18831 INFLUX_PORT=18087 INFLUX_BIND_PORT=18089
source "$(dirname "$0")/by-hand-lib.sh"
start_mosquitto
start_influxd
gridsentinel hub run --mqtt-url mqtt://127.0.0.1:18831 --client-id hub-1 --data-dir $W/hub \
  --http-port 18081 --series influxdb-v1 --series-url http://127.0.0.1:18087 --series-db gridsentinel \
  >> $W/hub.log 2>&1 &
HUB=$!
until curl -s -o /dev/null http://127.0.0.1:18081/healthz; do sleep 0.2; done
echo "$(date +%T) $MESSAGES messages of $POINTS point(s) at 500/s; influxd stopped for $OUTAGE_S s after 20 s; $MNT is $SIZE"
gridsentinel sim load --url mqtt://127.0.0.1:18831 --devices 50 --messages $MESSAGES --rate 500 --points $POINTS \
  --device-prefix df --json > $W/load.json &
LOAD=$!; sleep 20
kill $(cat $W/influxd.pid); echo "$(date +%T) influxd stopped"
for i in $(seq 1 $((OUTAGE_S / 10))); do sleep 10; echo "$(date +%T) disk: $(df --output=pcent $MNT | tail -1)"; done
start_influxd; echo "$(date +%T) influxd started again"
wait $LOAD; sleep 20; echo "$(date +%T) stored: $(count df) (expected $((MESSAGES * POINTS)))"
grep -E "data loss|opened for|holding|spool_failed|works again|back after|LOST|disconnect|connected|unavailable" $W/hub.log | cut -c1-240
kill $HUB $(cat $W/influxd.pid); pkill -f "mosquitto -c $W"; sleep 2; umount -l $MNT
