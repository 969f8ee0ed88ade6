# Shared by docs/check-nothing-lost.sh and docs/check-disk-full.sh (sourced, not run): a real Mosquitto
# with the production flow-control settings and Debian's influxd 1.x, under the work directory $W.
# Needs W, MQTT_PORT, INFLUX_PORT and INFLUX_BIND_PORT set by the caller.
start_mosquitto() {
  mkdir -p $W/mq
  cat > $W/mosquitto.conf <<CONF
persistence true
persistence_location $W/mq/
max_queued_messages 0
max_queued_bytes 1073741824
max_inflight_messages 20000
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
CONF
  mosquitto -c $W/mosquitto.conf > $W/mosquitto.log 2>&1 &
}
start_influxd() {   # configured through its environment variables
  INFLUXDB_BIND_ADDRESS=127.0.0.1:$INFLUX_BIND_PORT INFLUXDB_HTTP_BIND_ADDRESS=127.0.0.1:$INFLUX_PORT \
  INFLUXDB_META_DIR=$W/influx/meta INFLUXDB_DATA_DIR=$W/influx/data INFLUXDB_DATA_WAL_DIR=$W/influx/wal \
  INFLUXDB_REPORTING_DISABLED=true INFLUXDB_HTTP_LOG_ENABLED=false influxd run >> $W/influxd.log 2>&1 &
  echo $! > $W/influxd.pid
  until curl -s -o /dev/null http://127.0.0.1:$INFLUX_PORT/ping; do sleep 0.2; done
}
count() {   # points of the devices named PREFIX-*
  influx -port $INFLUX_PORT -database gridsentinel -format csv \
    -execute "SELECT count(m0) FROM \"unknown\" WHERE device =~ /^$1-/" | tail -1
}
