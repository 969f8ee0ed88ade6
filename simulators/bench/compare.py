"""The comparator of ``gridsentinel bench ingest``: the MQTT -> InfluxDB pipeline people copy from the docs.

Telegraf (``mqtt_consumer`` -> ``influxdb`` output) is the widely used pipeline,
but it is not packaged here, so the comparator is the other one everybody
writes: a paho-mqtt subscriber that ``json.loads`` each message, builds
influxdb-client ``Point`` objects and hands them to the client's batching
``WriteApi`` (``WriteOptions(batch_size=5000, flush_interval=1000)``), as in the
InfluxDB client documentation. influxdb-client only speaks ``/api/v2/write``,
which Debian's influxd 1.6 lacks (it came in 1.8), so it writes into
VictoriaMetrics, which serves that API. It gets the same backlog the hub gets
(same message count, devices, points per message, QoS, persistent session),
and its loss is counted in the store the same way.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Final

from edge import wire

logger = logging.getLogger(__name__)

CLIENT_ID: Final = "bench-docs-pipeline"
SITE: Final = "cmp"
DESCRIPTION: Final = (
    "paho-mqtt + influxdb-client batching WriteApi (batch_size=5000, flush_interval=1000) "
    "-> victoria-metrics /api/v2/write, same backlog"
)


class DocsPipeline:
    """paho-mqtt -> json -> influxdb-client Point -> batching WriteApi, counting what the server acknowledged."""

    def __init__(self, mqtt_url: str, influx_url: str, qos: int, measurement: str) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import WriteOptions

        self.mqtt_url = mqtt_url
        self.qos = qos
        self.measurement = measurement
        self.received = 0
        self.first_message = 0.0
        self.acked_points = 0
        self.last_ack = 0.0
        self.failed_points = 0
        self._lock = threading.Lock()
        self.influx = InfluxDBClient(url=influx_url, token="bench-token", org="bench")
        self.write_api = self.influx.write_api(
            write_options=WriteOptions(batch_size=5000, flush_interval=1000),
            success_callback=self._success,
            error_callback=self._error,
        )
        self.client: Any = None

    def _lines(self, data: Any) -> int:
        text = data.decode() if isinstance(data, bytes) else str(data)
        return text.count("\n") + 1 if text else 0

    def _success(self, _conf: Any, data: Any) -> None:
        with self._lock:
            self.acked_points += self._lines(data)
            self.last_ack = time.time()

    def _error(self, _conf: Any, data: Any, exc: Exception) -> None:
        with self._lock:
            self.failed_points += self._lines(data)
        logger.warning("docs pipeline: batch dropped after retries: %s", exc)

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        from influxdb_client.client.write.point import Point
        from influxdb_client.domain.write_precision import WritePrecision

        if not self.received:
            self.first_message = time.time()
        self.received += 1
        _root, _v, site, device, _channel = msg.topic.split("/")
        body = json.loads(msg.payload)
        raw = body.get("points") or [{"ts": body["ts"], "metrics": body["metrics"]}]
        points = []
        for item in raw:
            point = Point(self.measurement).tag("site", site).tag("device", device)  # type: ignore[no-untyped-call]
            for name, value in item["metrics"].items():
                point = point.field(name, value)
            points.append(point.time(item["ts"], WritePrecision.MS))
        self.write_api.write(bucket="bench_cmp", record=points)

    def start(self) -> None:
        """Connect with a persistent session (the backlog is waiting for it)."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        from simulators.bench.util import host_port

        host, port = host_port(self.mqtt_url)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=CLIENT_ID, clean_session=False)
        client.on_message = self._on_message
        client.connect(host, port, keepalive=60)
        client.loop_start()
        self.client = client

    def stop(self) -> None:
        """Disconnect, flush and close the client."""
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
        self.write_api.close()  # type: ignore[no-untyped-call]
        self.influx.close()  # type: ignore[no-untyped-call]


def run_comparator(args: argparse.Namespace, servers: Any, workdir: Path) -> dict[str, Any]:
    """Backlog drain of the docs pipeline on the same N messages; its throughput and loss."""
    from simulators.bench.ingest import MEASUREMENT, _load_spec
    from simulators.bench.util import (
        ProcessCpu,
        comparator_result,
        forget_session,
        prime_session,
        say,
        vm_count,
        wait_progress,
    )
    from simulators.loadgen import run_load

    vm_url = servers.start_vm()
    prime_session(servers.mqtt_url, CLIENT_ID, [wire.subscription(wire.Channel.TELEMETRY)], args.qos)
    messages = args.compare_messages or args.messages
    spec = _load_spec(args, servers.mqtt_url, site=SITE, messages=messages, rate=0.0, devices=args.devices)
    say(f"comparator: queueing {spec.messages:,} messages for the docs pipeline")
    load = run_load(spec)
    expected = load.messages * spec.points
    pipeline = DocsPipeline(servers.mqtt_url, vm_url, args.qos, MEASUREMENT)
    cpu = ProcessCpu(servers, pipeline_pid=os.getpid(), store="victoria-metrics")  # it runs in this process
    pipeline.start()
    try:
        wait_progress(
            lambda: pipeline.acked_points + pipeline.failed_points >= expected,
            lambda: pipeline.acked_points + pipeline.received,
            lambda: f"{pipeline.received:,} received, {pipeline.acked_points:,}/{expected:,} stored",
            "comparator",
            args.timeout,
        )
        cpu_us = cpu.per_message_us(load.messages)
    finally:
        pipeline.stop()
        forget_session(servers.mqtt_url, CLIENT_ID)
    elapsed = pipeline.last_ack - (pipeline.first_message or pipeline.last_ack)
    stored = vm_count(vm_url, SITE, f"{MEASUREMENT}_m0", expected=expected)
    return comparator_result(
        "paho+influxdb-client", DESCRIPTION, messages=load.messages, points=expected, stored=stored,
        elapsed_s=elapsed, received=pipeline.received, acked_points=pipeline.acked_points,
        failed_points=pipeline.failed_points, cpu_us_per_msg=cpu_us,
    )  # fmt: skip
