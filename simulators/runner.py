"""The scenario runner: a real broker, a real hub process and one real edge agent per simulated device.

``ScenarioRunner(scenario, RunOptions(...)).run()`` generates the scenario's community,
writes the hub's case workflow (with the scenario's short SLA limits on a 24/7
calendar), starts the broker (mosquitto, or the embedded one), the hub in a child
process, a TCP proxy per device (so partitions cut a device's network without
touching the agent) and the agents with durable SQLite outboxes, all in this
process. It then plays the timeline, checks the assertions against the hub's REST
API and returns a :class:`RunReport` with a canonical summary (incident rules per
device, cases per grid/category/state) that is the same for the same seed.

``--speed`` divides the timeline, the device intervals and every fault duration; the
hub's SLA clock keeps real time, so a scenario whose assertions depend on SLA limits
sets ``max_speed: 1``.

With ``store: influxdb-v1`` the runner also starts a real ``influxd`` and points the hub's
series writer at it; ``store_down`` SIGKILLs it for a while, and the ``series_missing``
assertion compares what every device delivered (the broker-acknowledged telemetry kept in
its SQLite outbox) with the timestamps stored in influxd.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from edge.agent import Agent
from edge.config import parse_config
from simulators.camera import TRIGGER_SCENES
from simulators.community import agent_config, generate_community
from simulators.community_workflow import to_workflow
from simulators.drivers import find_sim
from simulators.profiles import PROFILES
from simulators.proxy import ProxyPool
from simulators.scenario import CaseAction, Expectation, Scenario, ScenarioError, Step
from simulators.scenario_checks import Expectations
from simulators.scenario_report import Check, ProgressFn, RunReport
from simulators.servers import INFLUX_DB, EmbeddedBroker, HubProcess, Influxd, Mosquitto, ServerError
from simulators.sim_kiosk import TRIGGERS

logger = logging.getLogger(__name__)
TERMINAL_CASE_STATES = frozenset({"evaluated", "cancelled", "merged"})
STARTUP_TIMEOUT_S = 60.0
#: The runner asks the hub's ``/healthz`` this often while the timeline plays (``hub_up``).
PROBE_EVERY_S = 1.0


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How to run a scenario."""

    speed: float = 1.0
    broker: str = "auto"  # auto | mosquitto | embedded
    workdir: Path | None = None
    keep: bool = False
    #: The agents' ``outbox.hist_after_s`` (None: the edge default): buffered messages older than this
    #: when sent are marked historical.
    hist_after_s: float | None = None


@dataclass(slots=True)
class Probes:
    """What the runner's ``/healthz`` probes saw while the timeline played."""

    sent: int = 0
    unanswered: int = 0
    broker_down: int = 0
    store_not_ok: int = 0
    last_error: str = ""
    next_at: float = 0.0


class SkewClock:
    """A device clock: wall time plus an offset a scenario can change."""

    def __init__(self) -> None:
        self.offset_s = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset_s


class ScenarioRunner:
    """Runs one scenario end to end."""

    def __init__(self, scenario: Scenario, options: RunOptions | None = None) -> None:
        self.scenario = scenario
        self.options = options or RunOptions()
        if self.options.speed > scenario.max_speed:
            raise ScenarioError(
                f"scenario {scenario.name} allows --speed up to {scenario.max_speed:g}, got {self.options.speed:g}"
            )
        self.speed = self.options.speed
        self.community: Any = None
        self.broker: Any = None
        self.proxies: Any = None
        self.hub: Any = None
        self.agents: list[Any] = []
        self.api: httpx.Client | None = None
        self._t0 = 0.0
        self._restores: list[tuple[float, Callable[[], None]]] = []
        self.clocks: dict[str, SkewClock] = {}
        self.store_server: Any = None
        self._outbox_dir: Path | None = None
        self._planned_hub_starts = 1
        self.probes = Probes()
        self.expect: Expectations | None = None

    # ------------------------------------------------------------------ setup

    def _grid_code(self, ref: str) -> str:
        return f"{self.community.community['code']}{ref}" if len(ref) == 3 else ref

    def _build_community(self) -> Any:
        spec = self.scenario.community
        community = generate_community(
            spec.grids,
            seed=self.scenario.seed,
            site=spec.site,
            mix_per_grid=spec.mix,
            interval_s=spec.interval / self.speed,
        )
        ids = {d["device"]["id"] for d in community.devices}
        for device_id in spec.camera_scenes:
            if device_id not in ids:
                raise ScenarioError(f"community.camera_scenes: no device {device_id!r} in the generated community")
        for entry in community.devices:
            for driver in entry["drivers"]:
                # Spontaneous faults would make runs differ; scenarios force their conditions explicitly.
                if driver["type"] == "sim_kiosk":
                    driver.update(jam_per_1000_prints=0.0, reader_faults_per_day=0.0, app_crashes_per_day=0.0)
                if driver["type"] == "sim_camera" and entry["device"]["id"] in spec.camera_scenes:
                    driver["scene"] = spec.camera_scenes[entry["device"]["id"]]
        return community

    def _check_references(self) -> None:
        """Every device and grid the timeline names exists, and the trigger fits the device's driver."""
        drivers = {d["device"]["id"]: d["drivers"][0] for d in self.community.devices}
        grids = {g.code for g in self.community.grids}
        for i, step in enumerate(self.scenario.timeline):
            where = f"timeline[{i}] ({step.action} at {step.at:g}s)"
            action = getattr(step, step.action)
            device = getattr(action, "device", None)
            if isinstance(device, str) and device not in drivers:
                raise ScenarioError(f"{where}: no device {device!r}; this community has {', '.join(sorted(drivers))}")
            grid = getattr(action, "grid", None)
            if isinstance(grid, str) and self._grid_code(grid) not in grids:
                raise ScenarioError(f"{where}: no grid {grid!r}; grids are 001..{len(grids):03d}")
            if step.trigger is not None or step.release is not None:
                t = step.trigger or step.release
                assert t is not None
                driver = drivers[t.device]
                if driver["type"] == "sim_kiosk":
                    known: set[str] = set(TRIGGERS)
                elif driver["type"] == "sim_camera":
                    known = set(TRIGGER_SCENES)
                elif driver["type"] == "sim_sensor":
                    profile = PROFILES[driver["profile"]]
                    known = {a.type for a in profile.alarms} | {a.metric for a in profile.alarms}
                else:
                    raise ScenarioError(f"{where}: {t.device} ({driver['type']}) takes no triggers")
                if t.condition not in known:
                    raise ScenarioError(f"{where}: {t.device} has no condition {t.condition!r}; has {sorted(known)}")

    def _write_workflow(self, data_dir: Path) -> None:

        doc = to_workflow(self.community)
        if self.scenario.sla:
            # a scenario's short limits all run on wall-clock time
            doc["calendars"] = {"always": {"around_the_clock": True}}
            doc["default_calendar"] = "always"
            doc["sla"] = [s.model_dump(exclude_none=True) for s in self.scenario.sla]
        (data_dir / "cases.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))

    def _start_broker(self, workdir: Path) -> None:
        choice = self.options.broker
        if choice in ("auto", "mosquitto"):
            try:
                self.broker = Mosquitto(workdir / "broker")
            except ServerError:
                if choice == "mosquitto":
                    raise
                logger.warning("mosquitto is not installed: using the embedded broker")
        if self.broker is None:
            self.broker = EmbeddedBroker()
        self.broker.start()

    def _start_agents(self, workdir: Path) -> None:
        small = {s.outbox_full.device: s.outbox_full.max_bytes for s in self.scenario.timeline if s.outbox_full}
        outbox_dir = self._outbox_dir = workdir / "outbox"
        outbox_dir.mkdir(parents=True, exist_ok=True)
        for entry in self.community.devices:
            device_id = entry["device"]["id"]
            port = self.proxies.add(device_id)
            raw = agent_config(
                entry,
                f"mqtt://127.0.0.1:{port}",
                outbox={"backend": "sqlite", "path": str(outbox_dir / f"{device_id}.db")},
            )
            raw["mqtt"].update(keepalive_s=10, backoff_min_s=0.2, backoff_max_s=2.0)
            if device_id in small:
                raw["outbox"]["max_bytes"] = small[device_id]
            if self.options.hist_after_s is not None:
                raw["outbox"]["hist_after_s"] = self.options.hist_after_s
            clock = self.clocks[device_id] = SkewClock()
            self.agents.append(Agent(parse_config(raw, source=f"scenario device {device_id}"), clock=clock))
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="scenario-start") as pool:
            list(pool.map(lambda agent: agent.start(), self.agents))

    def _wait_online(self, timeout: float) -> None:
        want = len(self.community.devices)
        deadline = time.monotonic() + timeout
        online = 0
        while time.monotonic() < deadline:
            try:
                online = sum(1 for d in self._get("/api/v1/devices") if d["state"] == "online")
            except httpx.HTTPError:
                online = 0
            if online >= want:
                return
            time.sleep(0.25)
        raise ScenarioError(f"only {online} of {want} devices came online within {timeout:g}s")

    # ------------------------------------------------------------------- HTTP

    def _get(self, path: str, **params: Any) -> Any:
        assert self.expect is not None
        return self.expect.get(path, **params)

    # ------------------------------------------------------------------- run

    def run(self, progress: ProgressFn | None = None) -> RunReport:
        """Set up, play the timeline, check, tear down; never raises for a failed assertion."""
        sc = self.scenario
        report = RunReport(sc.name, sc.seed, self.speed, 0)
        started = time.monotonic()
        try:
            with self.running(report):
                self._play(report, progress)
                self._final_checks(report)
                report.incidents = self._get("/api/v1/incidents", limit=1000)
                report.cases = self._get("/api/v1/cases", limit=1000)
                report.losses = self._get("/api/v1/gaps", limit=1000)["items"]
                report.messages = sum(int(d["last_seq"] or 0) for d in self._get("/api/v1/devices"))
                if self.store_server is not None and self.expect is not None:
                    self.expect.count_series(report)
        finally:
            report.elapsed_s = time.monotonic() - started
        return report

    @contextmanager
    def running(self, report: RunReport | None = None) -> Iterator[ScenarioRunner]:
        """The scenario's world, up: broker, hub, proxies and every agent online; torn down on exit.

        :meth:`run` plays the timeline inside it; a test may drive the world itself (``find_sim``
        for the devices, :attr:`proxies` for their network, :attr:`api` for the hub).
        """
        sc = self.scenario
        own_dir = self.options.workdir is None
        workdir = Path(tempfile.mkdtemp(prefix=f"gs-scenario-{sc.name}-")) if own_dir else self.options.workdir
        assert workdir is not None
        try:
            self.community = self._build_community()
            self._check_references()
            data_dir = workdir / "hub"
            data_dir.mkdir(parents=True, exist_ok=True)
            self._write_workflow(data_dir)
            self._start_broker(workdir)
            influx = None
            if sc.store == "influxdb-v1":
                self.store_server = Influxd(workdir / "influxd", db=INFLUX_DB)
                self.store_server.start()
                influx = (self.store_server.url, INFLUX_DB)
            if report is not None:
                report.devices, report.store = len(self.community.devices), sc.store
            self.hub = HubProcess(data_dir, self.broker.url, sla_sweep_s=sc.sla_sweep, influx=influx)
            self.hub.start()
            self.api = httpx.Client(base_url=self.hub.base_url, timeout=10.0, headers={"X-Actor": "operator-01"})
            self.proxies = ProxyPool("127.0.0.1", self.broker.port)
            self._start_agents(workdir)
            self.expect = Expectations(
                self.api,
                self.community,
                self._grid_code,
                store=self.store_server,
                outboxes=self._outbox_dir,
                clocks=self.clocks,
            )
            self._wait_online(STARTUP_TIMEOUT_S)
            yield self
        finally:
            self._teardown()
            if own_dir and not self.options.keep:
                shutil.rmtree(workdir, ignore_errors=True)

    def _play(self, report: RunReport, progress: ProgressFn | None) -> None:
        end = self.scenario.duration / self.speed
        self._t0 = time.monotonic()
        for step in self.scenario.steps():
            self._sleep_until(step.at / self.speed, progress, f"next: {step.action} at {step.at:g}s")
            text = self._do(step, report)
            report.steps.append(f"{step.at:g}s {text}")
            logger.info("scenario %s at %gs: %s", self.scenario.name, step.at, text)
        self._sleep_until(end, progress, "running")
        if self.store_server is not None and not self.store_server.running:
            # timing slack at the very end: the validator keeps every outage inside the duration
            logger.info("scenario %s: starting the series store again at the end", self.scenario.name)
            self._restores = [(at, fn) for at, fn in self._restores if fn != self._store_up]
            self._store_up()
        if progress:
            progress(1.0, "checking")

    def _now(self) -> float:
        return time.monotonic() - self._t0

    def _sleep_until(self, t: float, progress: ProgressFn | None, label: str) -> None:
        end = self.scenario.duration / self.speed
        while True:
            self._restore_due()
            self._probe()
            now = self._now()
            if progress:
                progress(min(1.0, now / end), label)
            if now >= t:
                return
            time.sleep(min(0.2, t - now))

    def _restore_due(self) -> None:
        now = self._now()
        due = [fn for at, fn in self._restores if at <= now]
        self._restores = [(at, fn) for at, fn in self._restores if at > now]
        for fn in due:
            fn()

    def _later(self, seconds: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` ``seconds`` of scenario time from now (already divided by the speed)."""
        self._restores.append((self._now() + seconds, fn))

    def _store_up(self) -> None:
        self.store_server.start()
        logger.info("scenario %s: series store back on %s", self.scenario.name, self.store_server.url)

    def _probe(self) -> None:
        """Ask the hub's ``/healthz`` at most every PROBE_EVERY_S: did it answer, broker and store up?"""
        p = self.probes
        now = time.monotonic()
        if self.api is None or now < p.next_at:
            return
        p.next_at = now + PROBE_EVERY_S
        p.sent += 1
        try:
            body = self.api.get("/healthz", timeout=2.0).json()  # 503 still answers: store or broker down
        except (httpx.HTTPError, ValueError) as exc:
            p.unanswered += 1
            p.last_error = f"{type(exc).__name__}: {exc}"
            return
        p.broker_down += not body.get("broker_connected")
        p.store_not_ok += not body.get("store_ok")

    # ---------------------------------------------------------------- actions

    def _devices_of(self, grid: str) -> list[str]:
        code = self._grid_code(grid)
        found = [d["device"]["id"] for d in self.community.devices if d["device"]["grid"] == code]
        if not found:
            raise ScenarioError(f"partition: no devices in grid {grid}")
        return found

    def _do(self, step: Step, report: RunReport) -> str:
        if step.trigger is not None:
            t = step.trigger
            duration = None if t.duration is None else t.duration / self.speed
            find_sim(t.device).trigger(t.condition, duration)
            return f"trigger {t.condition} on {t.device}"
        if step.release is not None:
            find_sim(step.release.device).release(step.release.condition)
            return f"release {step.release.condition} on {step.release.device}"
        if step.partition is not None:
            p = step.partition
            names = [p.device] if p.device is not None else self._devices_of(p.grid or "")
            self.proxies.cut(names)
            self._later(p.duration / self.speed, lambda: self.proxies.restore(names))
            return f"partition {p.device or 'grid ' + str(p.grid)} ({len(names)} devices) for {p.duration:g}s"
        if step.outbox_full is not None:
            o = step.outbox_full
            self.proxies.cut([o.device])
            self._later(o.duration / self.speed, lambda: self.proxies.restore([o.device]))
            return f"outbox of {o.device} filling ({o.max_bytes} bytes) while cut off for {o.duration:g}s"
        if step.clock_skew is not None:
            c = step.clock_skew
            self.clocks[c.device].offset_s = c.seconds
            return f"clock of {c.device} skewed by {c.seconds:+g}s"
        if step.broker_restart is not None:
            self.broker.kill()  # a crash: sessions survive up to mosquitto's last autosave
            time.sleep(step.broker_restart.down / self.speed)
            self.broker.start()
            return "broker restarted"
        if step.hub_kill is not None:
            self.hub.kill()
            self._planned_hub_starts += 1
            time.sleep(step.hub_kill.down / self.speed)
            self.hub.start()
            return "hub killed (SIGKILL) and started again"
        if step.store_down is not None:
            if not self.store_server.running:
                report.checks.append(Check(f"{step.at:g}s", "store_down", False, "the series store is already down"))
                return "store_down: already down"
            self.store_server.kill()
            self._later(step.store_down.duration / self.speed, self._store_up)
            return f"series store (influxd) killed (SIGKILL) for {step.store_down.duration:g}s"
        if step.case is not None:
            try:
                return self._case(step.case, report, f"{step.at:g}s")
            except httpx.HTTPError as exc:
                report.checks.append(Check(f"{step.at:g}s", f"case {step.case.action}", False, f"hub API: {exc}"))
                return f"case {step.case.action}: hub API error {exc}"
        assert step.expect is not None
        for expectation in step.expect:
            report.checks.append(self._check(expectation, f"{step.at:g}s"))
        return f"{len(step.expect)} assertion(s)"

    def _case(self, action: CaseAction, report: RunReport, at: str) -> str:
        assert self.api is not None
        cases = [c for c in self._get("/api/v1/cases", limit=1000) if c["state"] not in TERMINAL_CASE_STATES]
        grid = self._grid_code(action.grid) if action.grid else None
        cases = [
            c
            for c in cases
            if (action.category is None or c["category"] == action.category)
            and (grid is None or c["grid"] == grid)
            and (action.state is None or c["state"] == action.state)
        ]
        what = f"case {action.action}"
        if not cases:
            report.checks.append(Check(at, what, False, "no open case matches"))
            return f"{what}: no matching case"
        case = min(cases, key=lambda c: c["id"])
        actor = action.actor or self._default_actor(action.action, case)
        body: dict[str, Any] = {"note": action.note or f"scenario {self.scenario.name}"}
        if action.action == "verify":
            body["result"] = action.result or "pass"
        if action.action in ("return", "cancel"):
            body["reason"] = action.reason or "not ours"
        if action.action == "evaluate":
            body["satisfaction"] = action.satisfaction or 5
        path = f"plan/{action.step}" if action.action == "plan_step" else action.action
        if action.action == "plan_step":
            body = {"note": body["note"]}
        r = self.api.post(f"/api/v1/cases/{case['id']}/{path}", json=body, headers={"X-Actor": actor})
        ok = r.status_code < 300
        if not ok:
            report.checks.append(
                Check(at, f"{what} #{case['id']} by {actor}", False, f"HTTP {r.status_code}: {r.text}")
            )
        return f"{what} #{case['id']} by {actor}: {'ok' if ok else r.status_code}"

    def _default_actor(self, action: str, case: dict[str, Any]) -> str:
        if action in ("verify", "close", "evaluate", "cancel", "plan_step"):
            return "sup-01"
        return str(case["handler"] or (case["assignees"] or ["gw-001"])[0])

    # ------------------------------------------------------------- assertions

    def _final_checks(self, report: RunReport) -> None:
        pending = list(self.scenario.expect)
        deadline = time.monotonic() + self.scenario.settle
        while True:
            results = [self._check(e, "end") for e in pending]
            if all(c.ok for c in results) or time.monotonic() >= deadline:
                report.checks.extend(results)
                return
            time.sleep(1.0)

    def _check(self, e: Expectation, at: str) -> Check:
        if e.hub_up is not None:
            return self._hub_up(at)
        assert self.expect is not None
        return self.expect.check(e, at)

    def _hub_up(self, at: str) -> Check:
        p = self.probes
        alive = self.hub is not None and self.hub.proc is not None and self.hub.proc.poll() is None
        starts = self.hub.starts if self.hub is not None else 0
        ok = alive and starts == self._planned_hub_starts and p.unanswered == 0 and p.sent > 0
        detail = f"{p.sent - p.unanswered}/{p.sent} health probes answered"
        detail += f" ({p.store_not_ok} with the store not ok, {p.broker_down} with the broker down)"
        if starts != self._planned_hub_starts:
            detail += f"; started {starts} times, planned {self._planned_hub_starts}"
        if not alive:
            detail += "; the hub process is not running"
        if p.unanswered:
            detail += f"; last error {p.last_error}"
        return Check(at, "hub up throughout", ok, detail)

    # --------------------------------------------------------------- teardown

    def _teardown(self) -> None:
        if self.agents:
            with ThreadPoolExecutor(max_workers=8, thread_name_prefix="scenario-stop") as pool:
                list(pool.map(lambda agent: agent.stop(timeout=3.0), self.agents))
            self.agents.clear()
        if self.api is not None:
            self.api.close()
        for stop in (
            self.hub.stop if self.hub else None,
            self.proxies.close if self.proxies else None,
            self.broker.kill if self.broker else None,
            self.store_server.stop if self.store_server else None,
        ):
            if stop is not None:
                try:
                    stop()
                except Exception:  # teardown boundary: stop the rest
                    logger.exception("scenario teardown step failed")
