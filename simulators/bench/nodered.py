"""A comparator for ``gridsentinel bench ingest``: Node-RED as a competent user tunes it for MQTT -> InfluxDB.

Node-RED (https://nodered.org) is how a great many installations move MQTT into InfluxDB
without writing code. Out of the box (``mqtt in`` -> ``function`` -> ``influx batch``) it makes
one HTTP write per message and drains a few hundred messages per second; nobody who moves a
fleet's telemetry that way runs it like that. The flow here is the tuned one
(docs/benchmarks.md says why each setting):

    mqtt in (QoS 1, persistent session, client id fixed, parsed JSON)
      -> function "to points" (site and device tags from the topic, metrics as fields, device ts)
      -> join (manual: an array of 1,000 messages, or whatever came within 1 s)
      -> function "flatten" (the join's array of per-message arrays -> one array of points)
      -> influx batch (node-red-contrib-influxdb, precision ms) -> the **same influxd** as the hub

Node-RED is not a Debian package here: the bench installs it with npm on first use into
``~/.cache/gridsentinel/node-red`` (``GS_NODE_RED_DIR`` to choose; about 120 MB, 20-30 s)
and runs it with the system ``node``. Without node or npm it says so and measures nothing.

Timing: from the moment Node-RED logs that its MQTT client connected (the backlog starts to
flow) until influxd's own counter of points written over HTTP (``/debug/vars``, polled every
10 ms: cheap, unlike an InfluxQL ``count`` that would take influxd's CPU from the run) has
grown by the backlog. Loss is counted afterwards with InfluxQL in Node-RED's own database,
the same way as the hub's.
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
from hub.series.influx_v1 import InfluxV1Store
from simulators.bench.util import host_port, say
from simulators.servers import ServerError, ServerProcess

PACKAGES: Final = ("node-red@4.1.15", "node-red-contrib-influxdb@0.7.0")  # Node-RED 5 needs Node.js 22.9+
CLIENT_ID: Final = "bench-node-red"
SITE: Final = "nodered"
DATABASE: Final = "bench_nodered"
#: The join node's batch: this many messages, or what arrived within JOIN_TIMEOUT_S.
JOIN_COUNT: Final = 1000
JOIN_TIMEOUT_S: Final = 1
DESCRIPTION: Final = (
    f"Node-RED 4 mqtt in (QoS 1, persistent session) -> function -> join ({JOIN_COUNT:,} msgs / "
    f"{JOIN_TIMEOUT_S} s) -> influx batch (node-red-contrib-influxdb 0.7) -> the same influxd 1.x"
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

# After the join: its array holds one array of points per message; influx batch wants one array.
_FLATTEN: Final = """
msg.payload = msg.payload.flat();
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
        raise ServerError("npm not found: install the Debian packages 'nodejs' and 'npm' for this comparator")
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
        raise ServerError(f"npm install of Node-RED failed ({done.returncode}): {done.stderr[-1000:]}")
    return red


def _installed_version(root: Path, spec: str) -> str | None:
    """The version of package ``name@version`` installed under ``root`` (None when it is not)."""
    try:
        meta = json.loads((root / "node_modules" / spec.rsplit("@", 1)[0] / "package.json").read_text())
    except (OSError, ValueError):
        return None
    version = meta.get("version") if isinstance(meta, dict) else None
    return version if isinstance(version, str) else None


def flows(
    mqtt_url: str, influx_url: str, measurement: str, qos: int, *, site: str = SITE, database: str = DATABASE
) -> list[dict[str, Any]]:
    """The Node-RED flow: mqtt in -> function -> join -> function -> influx batch."""
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
            "database": database,
            "name": "bench",
            "usetls": False,
            "influxdbVersion": "1.x",
        },
        {
            "id": "in",
            "type": "mqtt in",
            "z": "tab",
            "topic": wire.subscription(wire.Channel.TELEMETRY, site=site),
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
            "wires": [["batcher"]],
        },
        {
            "id": "batcher",
            "type": "join",
            "z": "tab",
            "name": "batch",
            "mode": "custom",
            "build": "array",
            "property": "payload",
            "propertyType": "msg",
            "key": "topic",
            "joiner": "\\n",
            "joinerType": "str",
            "accumulate": False,
            "timeout": str(JOIN_TIMEOUT_S),
            "count": str(JOIN_COUNT),
            "reduceRight": False,
            "wires": [["flat"]],
        },
        {
            "id": "flat",
            "type": "function",
            "z": "tab",
            "name": "flatten",
            "func": _FLATTEN,
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
            "database": database,
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


def influxd_points_written(url: str) -> int:
    """influxd's own count of points written over HTTP so far (``httpd.pointsWrittenOK`` of ``/debug/vars``)."""
    import httpx

    response = httpx.get(f"{url}/debug/vars", timeout=10)
    response.raise_for_status()
    return sum(
        int(v["values"].get("pointsWrittenOK", 0))
        for k, v in response.json().items()
        if k.startswith("httpd") and isinstance(v, dict)
    )


def run_node_red(args: argparse.Namespace, servers: Any, workdir: Path, round_no: int = 0) -> dict[str, Any]:
    """Backlog drain through the tuned Node-RED flow into the hub's influxd; its throughput, loss and
    the CPU each process spent per message (``round_no`` keeps each round's site and database apart)."""
    from simulators.bench.ingest import MEASUREMENT, _load_spec
    from simulators.bench.util import ProcessCpu, comparator_result, forget_session, prime_session, wait_progress

    if servers.store != "influxdb-v1" or not servers.store_url:
        raise ServerError("the Node-RED comparator writes to the bench's InfluxDB 1.x (--store influxdb-v1)")
    from simulators.loadgen import run_load

    red = ensure_installed()
    influx_url = servers.store_url
    site, database = f"{SITE}{round_no or ''}", f"{DATABASE}{round_no or ''}"
    store = InfluxV1Store(influx_url, database)  # Node-RED's own database; counted with the hub's InfluxQL
    store.ensure_database()
    prime_session(servers.mqtt_url, CLIENT_ID, [wire.subscription(wire.Channel.TELEMETRY, site=site)], args.qos)
    messages = args.compare_messages or args.messages
    spec = _load_spec(args, servers.mqtt_url, site=site, messages=messages, rate=0.0, devices=args.devices)
    say(f"comparator: queueing {spec.messages:,} messages for Node-RED")
    load = run_load(spec)
    expected = load.messages * spec.points
    flow = flows(servers.mqtt_url, influx_url, MEASUREMENT, args.qos, site=site, database=database)
    node = NodeRedProcess(workdir / f"node-red{round_no or ''}", red, flow)
    written0 = influxd_points_written(influx_url)
    progress = {"written": 0, "connected": 0.0, "done": 0.0}
    try:
        node.start(timeout=60)
        assert node.proc is not None
        cpu = ProcessCpu(servers, pipeline_pid=node.proc.pid)
        started = time.time()

        def poll() -> int:
            if not progress["connected"] and node.connected():
                progress["connected"] = time.time()
            progress["written"] = influxd_points_written(influx_url) - written0
            if progress["written"] >= expected and not progress["done"]:
                progress["done"] = time.time()
            return int(progress["written"])

        try:
            wait_progress(
                lambda: poll() >= expected,
                lambda: int(progress["written"]),
                lambda: f"Node-RED {progress['written']:,}/{expected:,} points written",
                "comparator",
                args.timeout,
            )
            cpu_us = cpu.per_message_us(load.messages)
        finally:
            node.stop()
            forget_session(servers.mqtt_url, CLIENT_ID)
        stored = store.count(MEASUREMENT)
    finally:
        store.close()
    elapsed = (progress["done"] or time.time()) - (progress["connected"] or started)
    errors = logged_errors(node.log_path)
    result = comparator_result(
        "Node-RED",
        DESCRIPTION,
        messages=load.messages,
        points=expected,
        stored=stored,
        elapsed_s=elapsed,
        errors_logged=len(errors),
        cpu_us_per_msg=cpu_us,
    )
    if errors:  # why it lost what it lost: it acknowledged the messages on receipt, then a write failed
        result["first_error"] = errors[0]
        say(f"comparator: Node-RED logged {len(errors):,} errors; the first: {errors[0]}")
    return result


def logged_errors(log_path: Path) -> list[str]:
    """The ``[error]`` lines of Node-RED's log (its nodes report failed writes there), without timestamps,
    and the untagged ``Error:`` lines its runtime prints when it cannot start a flow."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return []
    return [
        line.split(" - ", 1)[-1][:300] for line in text.splitlines() if "[error]" in line or line.startswith("Error:")
    ]
