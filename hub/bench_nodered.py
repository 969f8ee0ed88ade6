"""A second comparator for ``gridsentinel bench ingest``: Node-RED, the low-code MQTT -> InfluxDB pipeline.

Node-RED (https://nodered.org) is how a great many installations move MQTT into InfluxDB
without writing code. The flow here is what its documentation and the
``node-red-contrib-influxdb`` examples build: an ``mqtt in`` node (QoS 1, persistent
session, JSON payload) -> a ``function`` node that turns a payload into points (site and
device tags from the topic, the metrics as fields, the device timestamp) -> an
``influx batch`` node writing to the **same influxd** the hub writes to (its own
database). Out of the box that is one HTTP write per MQTT message.

Node-RED is not a Debian package here: the bench installs it with npm on first use into
``~/.cache/gridsentinel/node-red`` (``GS_NODE_RED_DIR`` to choose; about 120 MB, 20-30 s)
and runs it with the system ``node``. Without node or npm it says so and measures nothing.

Timing: from the moment Node-RED logs that its MQTT client connected (the backlog starts
to flow) until InfluxQL ``count`` sees every point (polled every 0.25 s). Its loss is
counted in influxd the same way as the hub's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Final

from edge import wire
from hub.benchutil import ServerProcess, ServerUnavailable, host_port, say
from hub.series.influx_v1 import InfluxV1Store

PACKAGES: Final = ("node-red@4.1.15", "node-red-contrib-influxdb@0.7.0")  # Node-RED 5 needs Node.js 22.9+
CLIENT_ID: Final = "bench-node-red"
SITE: Final = "nodered"
DATABASE: Final = "bench_nodered"
#: Default backlog: Node-RED writes once per message, so it is given fewer messages than the hub.
DEFAULT_MESSAGES: Final = 20_000
DESCRIPTION: Final = (
    "Node-RED 4 mqtt in (QoS 1, persistent session) -> function -> influx batch "
    "(node-red-contrib-influxdb 0.7) -> the same influxd 1.x, one write per message"
)

# The function node: payload -> points for the influx batch node (timestamps in ms, precision "ms").
_FUNCTION: Final = """
const levels = msg.topic.split("/");
const body = msg.payload;
const raw = body.points || [{ts: body.ts, metrics: body.metrics}];
msg.payload = raw.map(p => ({
    measurement: MEASUREMENT,
    tags: {site: levels[2], device: levels[3]},
    fields: p.metrics,
    timestamp: p.ts === undefined ? body.ts : p.ts,
}));
return msg;
"""


def install_dir() -> Path:
    """Where Node-RED is (or will be) installed."""
    env = os.environ.get("GS_NODE_RED_DIR")
    return Path(env) if env else Path.home() / ".cache" / "gridsentinel" / "node-red"


def ensure_installed() -> Path:
    """Path of Node-RED's ``red.js``, installing it with npm first when it is missing."""
    root = install_dir()
    red = root / "node_modules" / "node-red" / "red.js"
    if all(_installed_version(root, spec) == spec.rsplit("@", 1)[1] for spec in PACKAGES):
        return red
    npm = shutil.which("npm")
    if npm is None:
        raise ServerUnavailable("npm not found: install the Debian packages 'nodejs' and 'npm' for this comparator")
    root.mkdir(parents=True, exist_ok=True)
    say(f"comparator: installing {' and '.join(PACKAGES)} with npm into {root} (once)")
    done = subprocess.run(
        [npm, "install", "--prefix", str(root), "--no-audit", "--no-fund", "--loglevel=error", *PACKAGES],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0 or not red.exists():
        raise ServerUnavailable(f"npm install of Node-RED failed ({done.returncode}): {done.stderr[-1000:]}")
    return red


def _installed_version(root: Path, spec: str) -> str | None:
    """The version of package ``name@version`` installed under ``root`` (None when it is not)."""
    try:
        meta = json.loads((root / "node_modules" / spec.rsplit("@", 1)[0] / "package.json").read_text())
    except (OSError, ValueError):
        return None
    version = meta.get("version") if isinstance(meta, dict) else None
    return version if isinstance(version, str) else None


def flows(mqtt_url: str, influx_url: str, measurement: str, qos: int) -> list[dict[str, Any]]:
    """The Node-RED flow: mqtt in -> function -> influx batch."""
    mqtt_host, mqtt_port = host_port(mqtt_url)
    influx_host, influx_port = host_port(influx_url)
    return [
        {"id": "tab", "type": "tab", "label": "bench"},
        {
            "id": "broker",
            "type": "mqtt-broker",
            "name": "bench",
            "broker": mqtt_host,
            "port": str(mqtt_port),
            "clientid": CLIENT_ID,
            "autoConnect": True,
            "usetls": False,
            "protocolVersion": "4",
            "keepalive": "60",
            "cleansession": False,
        },
        {
            "id": "influx",
            "type": "influxdb",
            "hostname": influx_host,
            "port": str(influx_port),
            "protocol": "http",
            "database": DATABASE,
            "name": "bench",
            "usetls": False,
            "influxdbVersion": "1.x",
        },
        {
            "id": "in",
            "type": "mqtt in",
            "z": "tab",
            "topic": wire.subscription(wire.Channel.TELEMETRY, site=SITE),
            "qos": str(qos),
            "datatype": "json",
            "broker": "broker",
            "nl": False,
            "rap": True,
            "inputs": 0,
            "wires": [["fn"]],
        },
        {
            "id": "fn",
            "type": "function",
            "z": "tab",
            "name": "to points",
            "func": f"const MEASUREMENT = {json.dumps(measurement)};\n{_FUNCTION}",
            "outputs": 1,
            "wires": [["out"]],
        },
        {
            "id": "out",
            "type": "influxdb batch",
            "z": "tab",
            "influxdb": "influx",
            "precision": "ms",
            "retentionPolicy": "",
            "name": "",
            "database": DATABASE,
            "wires": [],
        },
    ]


class NodeRedProcess(ServerProcess):
    """Node-RED running the bench flow headless (no editor, no admin API)."""

    name = "node"
    package = "nodejs"

    def __init__(self, workdir: Path, red: Path, flow: list[dict[str, Any]]) -> None:
        super().__init__(workdir)
        self.red = red
        self.flow = flow

    def ready(self) -> bool:
        """Node-RED has started its flows."""
        return self.log_path.exists() and "Started flows" in self.log_path.read_text(errors="replace")

    def connected(self) -> bool:
        """Its MQTT client is connected (the queued backlog flows from here on)."""
        return "Connected to broker" in self.log_path.read_text(errors="replace")

    def command(self) -> list[str]:
        """Write the flow and a settings file, and return ``node red.js``."""
        (self.workdir / "flows.json").write_text(json.dumps(self.flow))
        settings = self.workdir / "settings.js"
        settings.write_text(
            "module.exports = {httpAdminRoot: false, httpNodeRoot: false, uiHost: '127.0.0.1',"
            " flowFile: 'flows.json', credentialSecret: false,"
            " logging: {console: {level: 'info', metrics: false, audit: false}}};\n"
        )
        return [
            self.binary,
            str(self.red),
            "--userDir",
            str(self.workdir),
            "--settings",
            str(settings),
            "--port",
            str(self.port),
        ]


class _Watch:
    """What the Node-RED run has done so far: when it connected, and the points influxd holds
    (counted at most every 0.25 s, and when)."""

    def __init__(self, node: NodeRedProcess, store: InfluxV1Store, measurement: str) -> None:
        self.node, self.store, self.measurement = node, store, measurement
        self.connected = 0.0
        self.stored, self.counted_at = 0, 0.0
        self._next_count = 0.0

    def poll(self) -> int:
        """Look again (cheaply when nothing is due); the points stored."""
        if not self.connected and self.node.connected():
            self.connected = time.time()
        now = time.monotonic()
        if now >= self._next_count:
            self.stored, self.counted_at = self.store.count(self.measurement), time.time()
            self._next_count = now + 0.25
        return self.stored


def run_node_red(args: argparse.Namespace, servers: Any, workdir: Path) -> dict[str, Any]:
    """Backlog drain through Node-RED into the hub's influxd; its throughput and loss."""
    from hub.bench_ingest import MEASUREMENT, _load_spec
    from hub.benchutil import comparator_result, forget_session, prime_session, wait_progress
    from simulators.loadgen import run_load

    if servers.store != "influxdb-v1" or not servers.store_url:
        raise ServerUnavailable("the Node-RED comparator writes to the bench's InfluxDB 1.x (--store influxdb-v1)")
    red = ensure_installed()
    influx_url = servers.store_url
    store = InfluxV1Store(influx_url, DATABASE)  # Node-RED's own database; counted with the hub's InfluxQL
    store.ensure_database()
    prime_session(servers.mqtt_url, CLIENT_ID, [wire.subscription(wire.Channel.TELEMETRY, site=SITE)], args.qos)
    messages = args.compare_messages or min(args.messages, DEFAULT_MESSAGES)
    spec = _load_spec(args, servers.mqtt_url, site=SITE, messages=messages, rate=0.0, devices=args.devices)
    say(f"comparator: queueing {spec.messages:,} messages for Node-RED")
    load = run_load(spec)
    expected = load.messages * spec.points
    node = NodeRedProcess(workdir / "node-red", red, flows(servers.mqtt_url, influx_url, MEASUREMENT, args.qos))
    watch = _Watch(node, store, MEASUREMENT)
    try:
        node.start(timeout=60)
        started = time.time()
        try:
            wait_progress(
                lambda: watch.stored >= expected,
                watch.poll,
                lambda: f"Node-RED {watch.stored:,}/{expected:,} points stored",
                "comparator",
                args.timeout,
            )
        finally:
            node.stop()
            forget_session(servers.mqtt_url, CLIENT_ID)
        stored = store.count(MEASUREMENT)
    finally:
        store.close()
    elapsed = watch.counted_at - (watch.connected or started)
    errors = logged_errors(node.log_path)
    result = comparator_result(
        "Node-RED",
        DESCRIPTION,
        messages=load.messages,
        points=expected,
        stored=stored,
        elapsed_s=elapsed,
        errors_logged=len(errors),
    )
    if errors:  # why it lost what it lost: it acknowledged the messages on receipt, then a write failed
        result["first_error"] = errors[0]
        say(f"comparator: Node-RED logged {len(errors):,} errors; the first: {errors[0]}")
    return result


def logged_errors(log_path: Path) -> list[str]:
    """The ``[error]`` lines of Node-RED's log (its nodes report failed writes there), without timestamps."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return []
    return [line.split(" - ", 1)[-1][:300] for line in text.splitlines() if "[error]" in line]
