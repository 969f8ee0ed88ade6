"""``gridsentinel bench cameras``: a street of 1,800 simulated cameras plus a tamper storm on one hub.

Starts a mosquitto on a free loopback port and a real hub (every plug-in, the embedded series
store, a generated street of unit grids as its case workflow, and an arrival probe installed as
one more plug-in: this module's :func:`install`). The :class:`~simulators.camera_fleet.CameraFleet`
connects every camera, sends its birth, then its telemetry once per ``--interval`` for
``--seconds``; halfway through, ``--storm`` cameras raise ``tamper_covered`` within ``--storm-s``.
While the fleet still runs, headless Chromium opens the operator page on the camera view and
the time until its first page of rows is on screen is ``camera_view_s``.

Figures: ``lag_p99_s`` from each message's device timestamp to the hub handing it to its sinks
(after dedup and storage), ``lost`` = sent ``(device, seq)`` that never arrived, ``tamper_incidents``
= incidents the storm opened (and their p99 from publish to stored).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Final

from edge.wire import Event, Status, Telemetry
from hub.context import PLUGINS, HubContext, need
from hub.ingest.sinks import DeviceRef
from simulators.camera_fleet import CameraFleet, street_cameras

logger = logging.getLogger(__name__)
TARGET_LAG_P99_S: Final = 1.0
TARGET_VIEW_S: Final = 2.0


class ArrivalProbe:
    """A sink recording when each ``(device, seq)`` reached the hub's sinks (wall clock, ms)."""

    def __init__(self) -> None:
        self.arrived: dict[tuple[str, int], int] = {}

    def on_status(self, device: DeviceRef, status: Status, received_ms: int) -> None:
        """Statuses carry no seq."""

    def on_telemetry(self, device: DeviceRef, msg: Telemetry, received_ms: int) -> None:
        """Record the arrival."""
        self.arrived.setdefault((device.device_id, msg.seq), int(time.time() * 1000))

    def on_event(self, device: DeviceRef, msg: Event, received_ms: int) -> None:
        """Record the arrival."""
        self.arrived.setdefault((device.device_id, msg.seq), int(time.time() * 1000))

    def on_health(self, device: DeviceRef, old: str, new: str, at_ms: int) -> None:
        """Not measured."""


def install(ctx: HubContext) -> None:
    """The bench's plug-in: the arrival probe as a sink (installed last, so it sees what the others saw)."""
    probe = ArrivalProbe()
    ctx.add_sink(probe)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's options."""
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--cameras", type=int, default=1800, help="simulated cameras on the street")
    parser.add_argument("--grids", type=int, default=60, help="unit grids the cameras are spread over")
    parser.add_argument("--interval", type=float, default=10.0, help="telemetry interval of a camera, s")
    parser.add_argument("--seconds", type=float, default=40.0, help="how long the street runs, s")
    parser.add_argument("--storm", type=int, default=300, help="cameras covered in the tamper storm")
    parser.add_argument("--storm-s", type=float, default=1.0, help="seconds the storm is spread over")
    parser.set_defaults(func=run)


def _p(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def measure_camera_view(url: str, token: str, rows: int) -> float:
    """Seconds from opening the page on the camera view until its first page of rows is rendered."""
    from playwright.sync_api import sync_playwright

    from simulators.servers import ServerError, find_binary

    chromium = find_binary("chromium")
    if chromium is None:
        raise ServerError("chromium is not installed (Debian package chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
            started = time.perf_counter()
            page.goto(f"{url}/?token={token}#cameras")
            page.wait_for_function(
                f"document.querySelectorAll('#cam-rows[data-loaded] tr.camera').length >= {rows}", timeout=30_000
            )
            return time.perf_counter() - started
        finally:
            browser.close()


def _time_api(url: str, token: str) -> float:
    """Seconds for the camera view's first page straight from the API (what the page waits for)."""
    import httpx

    started = time.perf_counter()
    r = httpx.get(f"{url}/api/v1/cameras?limit=50", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    r.raise_for_status()
    return time.perf_counter() - started


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Run the street and return the figures."""
    from hub.config import HubSettings
    from hub.service import Hub, tune_gc
    from simulators.bench.fleet import raise_fd_limit
    from simulators.bench.util import start_hub_quietly
    from simulators.community import generate_district
    from simulators.community_workflow import write_workflow
    from simulators.servers import Mosquitto

    raise_fd_limit(args.cameras * 2 + 1024)
    (street,) = generate_district(1, args.grids, mix_per_grid={})
    (workdir / "hub").mkdir(parents=True)
    write_workflow(workdir / "hub" / "cases.yaml", street)
    broker = Mosquitto(workdir / "mosquitto", persistence=False)
    broker.start()
    hub = Hub(
        HubSettings(mqtt_url=broker.url, http_port=0, data_dir=workdir / "hub", client_id="bench-cameras"),
        plugins=(*PLUGINS, __name__),
    )
    try:
        start_hub_quietly(hub)
        tune_gc()
        return _run(args, hub, broker.port, street.grid_codes())
    finally:
        hub.stop()
        broker.stop()


def _run(args: argparse.Namespace, hub: Any, port: int, grids: list[str]) -> dict[str, Any]:
    """Connect the street, run it with its storm, open the camera view meanwhile, then count."""
    assert hub.ctx is not None and hub.registry is not None
    probe = next(sink for sink in hub.ctx.sinks if isinstance(sink, ArrivalProbe))
    token = need(hub.ctx.services.tokens, "tokens").issue_token("operator-01", "bench cameras")
    opened: dict[str, int] = {}
    sub = hub.ctx.bus.subscribe(maxlen=100_000)
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for ev in sub.get(0.1):
                if ev.kind == "incident" and ev.data.get("change") == "opened":
                    opened.setdefault(str(ev.data.get("device_id")), int(time.time() * 1000))

    watcher = threading.Thread(target=watch, name="bench-cameras-watch", daemon=True)
    watcher.start()
    fleet = CameraFleet(street_cameras(args.cameras, grids), "127.0.0.1", port, args.interval)
    loop = asyncio.new_event_loop()
    connect_s = loop.run_until_complete(fleet.connect())
    deadline = time.monotonic() + 60
    while len(hub.registry.list_public()) < args.cameras and time.monotonic() < deadline:
        time.sleep(0.1)
    storm_at = args.seconds / 2
    runner = threading.Thread(
        target=loop.run_until_complete,
        args=(fleet.run(args.seconds, storm_at, args.storm, args.storm_s),),
        name="bench-cameras-fleet",
        daemon=True,
    )
    t_run = time.monotonic()
    runner.start()
    # the page is opened while the street keeps sending, a few seconds after the storm
    time.sleep(max(0.0, storm_at + args.storm_s + 3.0 - (time.monotonic() - t_run)))
    url = f"http://127.0.0.1:{hub.http_port}"
    api_s = _time_api(url, token)
    view_s = measure_camera_view(url, token, min(50, args.cameras))
    runner.join(args.seconds + 60)
    unacked = loop.run_until_complete(fleet.drain())
    sent = fleet.sent.ts_ms
    deadline = time.monotonic() + 15
    while (len(probe.arrived) < len(sent) or len(opened) < args.storm) and time.monotonic() < deadline:
        time.sleep(0.1)
    loop.run_until_complete(fleet.close())
    loop.close()
    stop.set()
    watcher.join(2)
    lags = [(probe.arrived[k] - ts) / 1000 for k, ts in sent.items() if k in probe.arrived]
    raised = fleet.sent.first_event_ms
    incident_lags = [(opened[d] - ts) / 1000 for d, ts in raised.items() if d in opened]
    result: dict[str, Any] = {
        "cameras": args.cameras,
        "grids": len(grids),
        "interval_s": args.interval,
        "seconds": args.seconds,
        "connect_s": round(connect_s, 2),
        "telemetry_msgs": fleet.sent.telemetry,
        "storm_events": fleet.sent.events,
        "lag_p50_s": round(statistics.median(lags), 3) if lags else None,
        "lag_p99_s": round(_p(lags, 0.99) or 0.0, 3) if lags else None,
        "lag_max_s": round(max(lags), 3) if lags else None,
        "lost": len(sent) - len(lags),
        "unacked_by_broker": unacked,
        "tamper_incidents": len(incident_lags),
        "tamper_incident_p99_s": round(_p(incident_lags, 0.99) or 0.0, 3) if incident_lags else None,
        "camera_api_s": round(api_s, 3),
        "camera_view_s": round(view_s, 3),
        "target_lag_p99_s": TARGET_LAG_P99_S,
        "target_camera_view_s": TARGET_VIEW_S,
    }
    result["ok"] = (
        result["lost"] == 0
        and lags != []
        and result["lag_p99_s"] < TARGET_LAG_P99_S
        and view_s < TARGET_VIEW_S
        and len(incident_lags) == args.storm
    )
    return result


def run(args: argparse.Namespace) -> int:
    """Run and print a table or JSON."""
    from simulators.servers import ServerError

    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="gs-bench-cameras-") as tmp:
        try:
            result = measure(args, Path(tmp))
        except ServerError as exc:
            print(f"gridsentinel bench cameras: {exc}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(result))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
    return 0 if result["ok"] else 1
