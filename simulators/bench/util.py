"""What the benchmarks share besides the servers (those come from :mod:`simulators.servers`): progress lines,
comparator rows, CPU accounting, the :class:`Servers` a bench started, VictoriaMetrics counts and MQTT
session priming.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from simulators.servers import Influxd, Mosquitto, ServerError, VictoriaMetrics, find_binary, vm_export

logger = logging.getLogger(__name__)


def say(message: str, bench: str = "ingest") -> None:
    """A progress line of ``gridsentinel bench BENCH`` on stderr (the result goes to stdout)."""
    print(f"[bench {bench}] {message}", file=sys.stderr, flush=True)


def comparator_result(
    name: str, description: str, *, messages: int, points: int, stored: int, elapsed_s: float, **extra: Any
) -> dict[str, Any]:
    """One comparator's row of the bench's JSON: what it was sent, what reached the store, how fast
    (``extra`` goes in after the counts); says the headline on stderr."""
    elapsed_s = max(elapsed_s, 1e-9)
    result: dict[str, Any] = {
        "name": name,
        "description": description,
        "messages": messages,
        "points": points,
        **extra,
        "stored_points": stored,
        "lost": max(0, points - stored),
        "drain_s": round(elapsed_s, 3),
        "msgs_per_s": round(messages / elapsed_s, 1),
        "points_per_s": round(points / elapsed_s, 1),
    }
    say(f"comparator: {name} {result['msgs_per_s']:,.0f} msgs/s, lost {result['lost']}")
    return result


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU of process ``pid`` so far (``/proc/PID/stat``), or None when it cannot be read."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: The server process behind each store the bench starts.
STORE_SERVERS: Final = {"influxdb-v1": "influxd", "influxdb-v2": "victoria-metrics"}


class ProcessCpu:
    """CPU the processes of one run spend from now on: the pipeline (hub or peer), the broker and the store
    (``store`` names its server when it is not the bench's store; ``/proc/PID/stat``; a process the bench
    did not start is left out)."""

    def __init__(self, servers: Any, *, pipeline_pid: int, store: str | None = None) -> None:
        self.pids = {
            "pipeline": pipeline_pid,
            "broker": started_pid(servers, "mosquitto"),
            "store": started_pid(servers, store or STORE_SERVERS.get(servers.store, "")),
        }
        self.start = {role: cpu_seconds(pid) for role, pid in self.pids.items()}

    def per_message_us(self, messages: int) -> dict[str, float | None]:
        """CPU-µs per message of each process since construction (None where it could not be read)."""
        out: dict[str, float | None] = {}
        for role, pid in self.pids.items():
            now, then = cpu_seconds(pid), self.start[role]
            out[role] = None if now is None or then is None else round((now - then) / max(1, messages) * 1e6, 1)
        return out


def started_pid(servers: Any, name: str) -> int | None:
    """The pid of the server called ``name`` that the bench started, else None."""
    for server in getattr(servers, "started", ()):
        proc = getattr(server, "proc", None)
        if getattr(server, "name", None) == name and proc is not None:
            return int(proc.pid)
    return None


def start_hub_quietly(hub: Any) -> None:
    """``hub.start()`` without the once-only administrator banner: the bench's hub is thrown away with
    its data dir, so it gets its token the automation way (``$GRIDSENTINEL_ADMIN_TOKEN``, a fresh
    one no one sees), and anything else it prints goes to stderr (stdout carries only ``--json``)."""
    import secrets

    from hub.security import auth

    saved = os.environ.get(auth.ADMIN_TOKEN_ENV)
    if saved is None:
        os.environ[auth.ADMIN_TOKEN_ENV] = auth.TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            hub.start()
    finally:
        if saved is None:
            os.environ.pop(auth.ADMIN_TOKEN_ENV, None)


def wait_progress(
    done: Callable[[], bool],
    progress: Callable[[], int],
    status: Callable[[], str],
    label: str,
    timeout_s: float,
    *,
    stall_s: float = 30.0,
) -> bool:
    """Poll every 10 ms until ``done()``; say ``label: status()`` once a second; give up (False, said)
    after ``timeout_s``, or after ``stall_s`` in which ``progress()`` did not change."""
    start = time.monotonic()
    deadline, next_report = start + timeout_s, start + 1.0
    last, last_change = -1, start
    while not done():
        now = time.monotonic()
        value = progress()
        if value != last:
            last, last_change = value, now
        if now > deadline or now - last_change > stall_s:
            say(f"{label}: gave up with {status()}")
            return False
        if now >= next_report:
            say(f"{label}: {status()}")
            next_report = now + 1.0
        time.sleep(0.01)
    return True


@dataclass
class Servers:
    """What the bench started (stopped in reverse order) and where the store lives."""

    workdir: Path
    mqtt_url: str = ""
    store: str = "embedded"
    store_url: str | None = None
    store_server: str = "embedded SQLite"
    vm_url: str | None = None  # a VictoriaMetrics we started (counts via its export API)
    started: list[Any] = field(default_factory=list)

    def stop(self) -> None:
        """Stop every server we started."""
        for server in reversed(self.started):
            try:
                server.stop()
            except Exception:  # shutdown boundary: stop the rest
                logger.exception("could not stop %s", server.name)
        self.started.clear()

    def start_vm(self) -> str:
        """Start (once) a VictoriaMetrics and return its url."""
        if self.vm_url is None:
            vm = VictoriaMetrics(self.workdir / "victoria-metrics")
            vm.start()
            self.started.append(vm)
            self.vm_url = vm.url
            say(f"victoria-metrics on {vm.url}")
        return self.vm_url


def default_store() -> str:
    """influxdb-v1 when ``influxd`` is installed, else the embedded store."""
    return "influxdb-v1" if find_binary("influxd") else "embedded"


def start_servers(args: argparse.Namespace, workdir: Path) -> Servers:
    """Start mosquitto and, unless ``--influx-url`` is given, the store's server."""
    servers = Servers(workdir, store=args.store)
    try:
        broker = Mosquitto(workdir / "mosquitto", persistence=False)  # the bench does not restart the broker
        broker.start()
        servers.started.append(broker)
        servers.mqtt_url = broker.url
        say(f"mosquitto on {broker.url} (max_queued_messages 0, max_inflight_messages 20000)")
        if args.store == "influxdb-v1":
            if args.influx_url:
                servers.store_url, servers.store_server = args.influx_url, f"InfluxDB 1.x at {args.influx_url}"
            else:
                influxd = Influxd(workdir / "influxd")
                influxd.start()
                servers.started.append(influxd)
                servers.store_url, servers.store_server = influxd.url, "influxd 1.x (Debian)"
                say(f"influxd on {influxd.url}")
        elif args.store == "influxdb-v2":
            if args.influx_url:
                servers.store_url, servers.store_server = args.influx_url, f"InfluxDB v2 API at {args.influx_url}"
            else:
                servers.store_url = servers.start_vm()
                servers.store_server = "victoria-metrics /api/v2/write"
    except Exception:
        servers.stop()
        raise
    return servers


#: VictoriaMetrics 1.79 makes acknowledged samples searchable in steps about a second apart, up to ~2.5 s
#: after the last 204 even with ``/internal/force_flush``; a count waits this long for them to settle.
VM_SETTLE_S: Final = 5.0
VM_SETTLE_TIMEOUT_S: Final = 60.0


def vm_count_now(url: str, site: str, metric: str) -> int:
    """Samples of ``metric`` with label ``site`` that VictoriaMetrics serves right now (after a force flush;
    exported per series, see :func:`simulators.servers.vm_export`)."""
    return sum(len(series["values"]) for series in vm_export(url, f'{metric}{{site="{site}"}}'))


def vm_count(
    url: str,
    site: str,
    metric: str,
    *,
    expected: int | None = None,
    settle_s: float = VM_SETTLE_S,
    timeout_s: float = VM_SETTLE_TIMEOUT_S,
) -> int:
    """Samples VictoriaMetrics holds once they are searchable: polled until the count reaches ``expected``
    or has not changed for ``settle_s`` (at most ``timeout_s``).

    A single count straight after the last acknowledged write misses what the server has taken but not
    yet made searchable -- up to ~2.5 s of samples on 1.79 (docs/benchmarks.md, "lost on /api/v2/write")."""
    deadline = time.monotonic() + timeout_s
    last, since = vm_count_now(url, site, metric), time.monotonic()
    while (expected is None or last < expected) and time.monotonic() < deadline:
        time.sleep(0.25)
        now = vm_count_now(url, site, metric)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= settle_s:
            break
    return last


def prime_session(mqtt_url: str, client_id: str, filters: Sequence[str], qos: int) -> None:
    """Subscribe ``client_id`` once with a persistent session, so the broker queues for it while it is away."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    host, port = host_port(mqtt_url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False, protocol=mqtt.MQTTv311)
    subscribed = threading.Event()
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect(host, port, keepalive=60)
    client.loop_start()
    try:
        client.subscribe([(f, max(qos, 1)) for f in filters])
        if not subscribed.wait(10):
            raise ServerError(f"{mqtt_url}: no SUBACK for {client_id} within 10 s")
    finally:
        client.disconnect()
        client.loop_stop()


def host_port(url: str) -> tuple[str, int]:
    """(host, port) of an ``mqtt://host:port`` url."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 1883


def forget_session(mqtt_url: str, client_id: str) -> None:
    """Connect once with a clean session: the broker drops ``client_id``'s subscriptions and queue, so a
    finished phase's session does not make the broker queue the next phase's load for nobody."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    host, port = host_port(mqtt_url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True, protocol=mqtt.MQTTv311)
    connected = threading.Event()
    client.on_connect = lambda *_a: connected.set()
    client.connect(host, port, keepalive=60)
    client.loop_start()
    try:
        if not connected.wait(10):
            logger.warning("%s: could not clear the session of %s", mqtt_url, client_id)
    finally:
        client.disconnect()
        client.loop_stop()
