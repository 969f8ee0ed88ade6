"""Every alarm reaches the right hands: the vocabulary, enumerated, through every part it crosses.

For every device kind the community generator makes (camera, kiosk and each sensor profile) and
every alarm that kind can raise, a simulated device raises it inside the real edge agent, over a
real Mosquitto, into a running hub process with the shipped rules and the shipped (generated) case
config. For each, the test checks: exactly one incident, of the one rule that maps the event type,
in the category the vocabulary gives it; a case dispatched to the force that owns that category,
on the calendar that applies; and the clear. Three grids run at once:

- ``001``: live alarms;
- ``002``: raised while the grid's network is cut and still on when it comes back: the incident
  opens late with both times, and its case is dispatched like any other;
- ``003``: raised and cleared while the network is cut: recorded closed, no case, nobody paged.

A new event type without a simulated source, a rule or a route makes this test fail.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from edge.vocabulary import CATEGORIES, EVENT_TYPES, HUB_EVENT_TYPES, EventType
from hub.rules.loader import default_rules
from hub.rules.models import EventRule
from simulators.camera import TRIGGER_SCENES, SimCameraDriver
from simulators.community import FORCE_KEYS, SENSOR_PROFILES
from simulators.drivers import find_sim
from simulators.profiles import PROFILES
from simulators.runner import RunOptions, ScenarioRunner
from simulators.scenario import CommunitySpec, Scenario
from simulators.servers import wait_until
from simulators.sim_kiosk import TRIGGERS
from tests.servers import require_binary

pytestmark = pytest.mark.integration

#: An empty printer is also a low one: paper_out brings paper_low with it.
IMPLIED: dict[str, set[str]] = {EventType.PAPER_OUT: {EventType.PAPER_LOW}}
LIVE, STILL_ON, CLEARED_OFFLINE = "001", "002", "003"
#: Long enough for the slowest alarm (a camera confirms loitering after 30 s) to be raised offline.
OUTAGE_S = 75.0
RELEASE_OFFLINE_AT_S = 60.0


@dataclass(frozen=True, slots=True)
class Alarm:
    """One alarm one kind of device can raise."""

    kind: str  # the community mix key: camera, kiosk or a sensor profile
    event: str

    @property
    def prefix(self) -> str:
        return {"camera": "cam"}.get(self.kind, self.kind)


def alarms() -> list[Alarm]:
    """The matrix: every kind the generator makes x every alarm it can raise."""
    out = [Alarm(p, a.type.value) for p in SENSOR_PROFILES for a in PROFILES[p].alarms]
    out += [Alarm("kiosk", t) for t in TRIGGERS]
    out += [Alarm("camera", t) for t in TRIGGER_SCENES]
    return out


def rule_of(event: str) -> EventRule:
    """The one shipped event rule that maps ``event``."""
    [rule] = [r for r in default_rules() if isinstance(r, EventRule) and event in r.event_types]
    return rule


def test_every_device_alarm_has_a_simulated_source_and_exactly_one_rule() -> None:
    raised = {a.event for a in alarms()}
    assert raised == {str(t) for t in EVENT_TYPES} - {str(t) for t in HUB_EVENT_TYPES}
    for event in raised:
        assert rule_of(event).category == EVENT_TYPES[EventType(event)].category, event


def devices(matrix: list[Alarm], grid: str) -> dict[str, Alarm]:
    """Device id -> the alarm it raises, in one grid (the generator numbers each kind from 01)."""
    seen: dict[str, int] = defaultdict(int)
    out = {}
    for alarm in matrix:
        seen[alarm.kind] += 1
        out[f"{alarm.prefix}-{grid}-{seen[alarm.kind]:02d}"] = alarm
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScenarioRunner]:
    require_binary("mosquitto", "mosquitto")
    matrix = alarms()
    mix: dict[str, float] = defaultdict(float)
    for alarm in matrix:
        mix[alarm.kind] += 1
    cameras = [d for g in (LIVE, STILL_ON, CLEARED_OFFLINE) for d in devices(matrix, g) if d.startswith("cam-")]
    scenario = Scenario(
        name="alarm-matrix",
        description="every alarm of the vocabulary, live and raised while offline",
        seed=7,
        community=CommunitySpec(grids=3, mix=dict(mix), interval=1.0, camera_scenes=dict.fromkeys(cameras, "static")),
        duration=600.0,
    )
    workdir: Path = tmp_path_factory.mktemp("matrix")
    runner = ScenarioRunner(scenario, RunOptions(broker="mosquitto", workdir=workdir, hist_after_s=2.0))
    with runner.running():
        yield runner


def get(runner: ScenarioRunner, path: str, **params: Any) -> Any:
    assert runner.api is not None
    r = runner.api.get(path, params=params)
    r.raise_for_status()
    return r.json()


def incidents_by_device(runner: ScenarioRunner) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for inc in get(runner, "/api/v1/incidents", limit=1000):
        if inc["device_id"] and inc["rule_id"] != "device_offline":
            out[inc["device_id"]].append(inc)
    return out


def alarm_incident(incs: list[dict[str, Any]], alarm: Alarm) -> dict[str, Any] | None:
    mine = [i for i in incs if i["rule_id"] == rule_of(alarm.event).id]
    return mine[0] if len(mine) == 1 else None


def problems_with_incidents(runner: ScenarioRunner, wanted: dict[str, Alarm]) -> list[str]:
    """Why the devices' incidents are not yet exactly their alarm's (empty when they are)."""
    by_device = incidents_by_device(runner)
    out = []
    for device, alarm in wanted.items():
        incs = by_device.get(device, [])
        expected = {rule_of(alarm.event).id} | {rule_of(e).id for e in IMPLIED.get(alarm.event, ())}
        got = sorted(i["rule_id"] for i in incs)
        if sorted(expected) != got:
            out.append(f"{device} raised {alarm.event}: incidents {got}, want one each of {sorted(expected)}")
    return out


def check_cases(runner: ScenarioRunner, wanted: dict[str, Alarm]) -> list[str]:
    """Each alarm's incident is in a case dispatched to the owning force, on the right calendar."""
    by_device = incidents_by_device(runner)
    cases = get(runner, "/api/v1/cases", limit=1000)
    out = []
    for device, alarm in wanted.items():
        inc = alarm_incident(by_device[device], alarm)
        if inc is None:
            out.append(f"{device} {alarm.event}: incidents {[(i['rule_id'], i['state']) for i in by_device[device]]}")
            continue
        info = CATEGORIES[EVENT_TYPES[EventType(alarm.event)].category]
        assert inc["category"] == EVENT_TYPES[EventType(alarm.event)].category, (device, inc)
        mine = [c for c in cases if inc["id"] in c["incident_ids"]]
        if len(mine) != 1:
            out.append(f"{device} {alarm.event}: incident {inc['id']} in {len(mine)} cases")
            continue
        case = mine[0]
        force = case["force"]
        if force not in FORCE_KEYS or FORCE_KEYS[force] is not info.owner or case["state"] != "dispatched":
            out.append(f"{device} {alarm.event}: case {case['id']} {case['state']} to {force}, owner {info.owner}")
        calendar = "always" if info.around_the_clock or case["severity"] == "critical" else "office"
        if case["calendar"] != calendar:
            out.append(f"{device} {alarm.event}: case {case['id']} on {case['calendar']}, want {calendar}")
    return out


def wait_for(what: str, problems: Any, timeout: float) -> None:
    """Poll ``problems()`` until it lists none; fail with the last list."""
    deadline = time.monotonic() + timeout
    last: list[str] = []
    while time.monotonic() < deadline:
        last = problems()
        if not last:
            return
        time.sleep(1.0)
    pytest.fail(f"{what} after {timeout:g}s:\n" + "\n".join(last))


def test_every_alarm_reaches_the_force_that_owns_it_live_and_after_an_outage(world: ScenarioRunner) -> None:
    matrix = alarms()
    live, still_on, cleared = (devices(matrix, g) for g in (LIVE, STILL_ON, CLEARED_OFFLINE))
    offline = [*still_on, *cleared]
    proxies = world.proxies
    assert proxies is not None
    proxies.cut(offline)
    wait_until(
        lambda: (
            sum(d["state"] == "offline" for d in get(world, "/api/v1/devices") if d["id"] in offline) == len(offline)
        ),
        timeout=30,
        what="the cut grids offline",
    )
    cameras = [d for d in (*live, *offline) if d.startswith("cam-")]
    wait_until(lambda: all(cast(SimCameraDriver, find_sim(d)).learned for d in cameras), 30, what="cameras learnt")
    t0 = time.monotonic()
    for device, alarm in {**live, **still_on, **cleared}.items():
        find_sim(device).trigger(alarm.event)

    # live: one incident each, its case with the owning force, on the right calendar
    wait_for("live alarms without their incident", lambda: problems_with_incidents(world, live), 120)
    wait_for("live alarms without their case", lambda: check_cases(world, live), 30)
    for device, alarm in live.items():
        find_sim(device).release(alarm.event)

    # raised and cleared while cut off; then the network comes back
    time.sleep(max(0.0, t0 + RELEASE_OFFLINE_AT_S - time.monotonic()))
    for device, alarm in cleared.items():
        find_sim(device).release(alarm.event)
    time.sleep(max(0.0, t0 + OUTAGE_S - time.monotonic()))
    healed_at_ms = time.time() * 1000
    proxies.restore(offline)

    wait_for("late alarms without their incident", lambda: problems_with_incidents(world, {**still_on, **cleared}), 90)
    wait_for("late alarms without their case", lambda: check_cases(world, still_on), 30)
    by_device = incidents_by_device(world)
    for device, alarm in still_on.items():
        inc = alarm_incident(by_device[device], alarm)
        assert inc is not None and inc["hist"] and inc["state"] == "open", (device, inc)
        assert inc["received_ms"] >= healed_at_ms - 5000 and inc["raised_ms"] < healed_at_ms - 10_000, inc
    cases = get(world, "/api/v1/cases", limit=1000)
    for device, alarm in cleared.items():
        inc = alarm_incident(by_device[device], alarm)
        assert inc is not None and inc["hist"], (device, inc)
        assert (inc["state"], inc["close_reason"], inc["group_id"]) == ("closed", "cleared_offline", None), str(inc)
        assert inc["raised_ms"] < inc["closed_ms"] < inc["received_ms"], inc
        assert not [c for c in cases if inc["id"] in c["incident_ids"]], f"{device}: a recorded alarm paged someone"
    for device, alarm in still_on.items():
        find_sim(device).release(alarm.event)

    # the clears: every incident closes (verified clears hold up to two minutes)
    def still_open() -> list[str]:
        by_device = incidents_by_device(world)
        return [
            f"{d} {a.event}: {[(i['rule_id'], i['state']) for i in by_device[d]]}"
            for d, a in {**live, **still_on}.items()
            if any(i["state"] == "open" for i in by_device[d])
        ]

    wait_for("incidents not closed by their clear", still_open, 200)
    evaluation = get(world, "/api/v1/evaluation", by="all")["groups"][0]
    assert evaluation["late_alarms"] >= 1  # the grid that was cut off raised its alarms late
