"""Scenario files: schema errors name the key; the short CI set runs against real mosquitto; same seed, same run.

The InfluxDB outage runs against a real influxd too (SIGKILLed mid-run, its data kept).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from simulators import cli
from simulators.runner import RunOptions, ScenarioRunner, missing_points
from simulators.scenario import Expectation, ScenarioError, load_scenario, parse_scenario, parse_seconds, shipped
from tests.servers import require_binary

SHIPPED = (
    "camera-tampering-spree",
    "fire-in-a-building",
    "hub-crash-during-a-storm",
    "influxdb-outage",
    "kiosk-paper-outage",
    "normal-day",
    "power-cut-in-one-grid",
)
MINIMAL = {"name": "t", "description": "d", "duration": "10s"}


def test_every_shipped_scenario_validates() -> None:
    assert tuple(shipped()) == SHIPPED
    for name in SHIPPED:
        sc = load_scenario(name)
        assert sc.name == name
        assert sc.expect, f"{name} asserts nothing"


def test_durations() -> None:
    assert [parse_seconds(v) for v in (5, "5s", "500ms", "2m", "1h", "0.25m")] == [5, 5, 0.5, 120, 3600, 15]
    with pytest.raises(ValueError):
        parse_seconds("soon")


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ({**MINIMAL, "seeed": 1}, "seeed"),
        ({**MINIMAL, "community": {"grids": 2, "devicez": 3}}, "community.devicez"),
        (
            {**MINIMAL, "timeline": [{"at": "1s", "trigger": {"device": "x", "conditon": "smoke"}}]},
            "timeline.0.trigger.conditon",
        ),
        ({**MINIMAL, "timeline": [{"at": "1s", "explode": {}}]}, "timeline.0.explode"),
        ({**MINIMAL, "expect": [{"incidents": {"rule": "smoke", "cuont": 1}}]}, "expect.0.incidents.cuont"),
        ({**MINIMAL, "duration": "later"}, "duration"),
    ],
)
def test_validation_names_the_bad_key(doc: dict[str, object], where: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(doc, "s.yaml")
    assert f"s.yaml: {where}:" in str(info.value)


def test_step_needs_exactly_one_action_and_fits_the_duration() -> None:
    with pytest.raises(ScenarioError, match="exactly one action"):
        parse_scenario({**MINIMAL, "timeline": [{"at": 1, "hub_kill": {}, "broker_restart": {}}]})
    with pytest.raises(ScenarioError, match="after the end"):
        parse_scenario({**MINIMAL, "timeline": [{"at": 11, "hub_kill": {}}]})
    with pytest.raises(ScenarioError, match="exactly one of device or grid"):
        parse_scenario({**MINIMAL, "timeline": [{"at": 1, "partition": {"for": 5}}]})


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {**MINIMAL, "timeline": [{"at": 1, "store_down": {"for": 5}}]},
            "timeline.0.store_down: needs `store: influxdb-v1`",
        ),
        ({**MINIMAL, "expect": [{"hub_up": True}, {"series_missing": {"count": 0}}]}, "expect.1.series_missing: needs"),
        (
            {**MINIMAL, "timeline": [{"at": 2, "expect": [{"series_points": {"min": 1}}]}]},
            "timeline.0.expect.0.series_points: needs",
        ),
        (
            {**MINIMAL, "store": "influxdb-v1", "timeline": [{"at": 6, "store_down": {"for": 5}}]},
            "timeline.0.store_down: the store would still be down at the end",
        ),
        (
            {**MINIMAL, "store": "influxdb-v1", "timeline": [{"at": 1, "store_down": {"for": 0}}]},
            "timeline.0.store_down.for",
        ),
        ({**MINIMAL, "store": "influx"}, "store: Input should be 'embedded' or 'influxdb-v1'"),
    ],
)
def test_store_faults_are_validated(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(doc, "s.yaml")
    assert message in str(info.value)


def test_store_down_is_accepted_with_an_influxdb_store() -> None:
    doc = {
        **MINIMAL,
        "store": "influxdb-v1",
        "timeline": [{"at": 1, "store_down": {"for": "5s"}}],
        "expect": [{"series_missing": {"count": 0}}, {"alerts": {"kind": "store_down"}}, {"hub_up": True}],
    }
    sc = parse_scenario(doc)
    assert sc.timeline[0].action == "store_down"
    assert sc.timeline[0].store_down is not None and sc.timeline[0].store_down.duration == 5.0


def test_missing_points_are_the_delivered_timestamps_not_stored() -> None:
    delivered = {1000: 1, 2000: 2, 3000: 4, 4000: 5}
    assert missing_points(delivered, {1000, 2000, 3000, 4000, 9000}) == []
    assert missing_points(delivered, {2000, 4000}) == [1, 4]
    assert missing_points(delivered, set()) == [1, 2, 4, 5]


def test_speed_above_the_scenario_limit_is_refused() -> None:
    with pytest.raises(ScenarioError, match="up to 1"):
        ScenarioRunner(load_scenario("fire-in-a-building"), RunOptions(speed=2))


def test_unknown_scenario_names_the_shipped_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ScenarioError, match="power-cut-in-one-grid"):
        load_scenario("no-such-scenario")


def test_sim_list_prints_every_shipped_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.list_cmd(None) == 0  # type: ignore[arg-type]
    out = capsys.readouterr().out
    for name in SHIPPED:
        assert name in out


# ------------------------------------------------------------ real runs (mosquitto, hub process, agents)


@pytest.mark.integration
def test_fire_in_a_building_from_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    """Smoke alarms -> incidents -> a case driven by simulated people through a failed verification to closed."""
    require_binary("mosquitto", "mosquitto")

    parser = argparse.ArgumentParser()
    cli.configure(parser)
    args = parser.parse_args(["run", "fire-in-a-building", "--broker", "mosquitto", "--quiet", "--json"])
    code = args.func(args)
    out = capsys.readouterr().out
    assert code == 0, out
    assert '"ok": true' in out


@pytest.mark.integration
def test_fault_scenario_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    """power-cut-in-one-grid twice with the same seed: the same incidents and cases; its assertions hold."""
    require_binary("mosquitto", "mosquitto")
    scenario = load_scenario("power-cut-in-one-grid")
    reports = [
        ScenarioRunner(scenario, RunOptions(speed=4, broker="mosquitto", workdir=tmp_path / f"run{i}")).run()
        for i in range(2)
    ]
    for report in reports:
        assert report.ok, [c for c in report.checks if not c.ok]
    assert reports[0].canonical() == reports[1].canonical()
    assert reports[0].canonical()["incidents"]  # not trivially equal


@pytest.mark.integration
def test_a_failing_assertion_fails_the_run(tmp_path: Path) -> None:
    """A scenario that expects an incident that never comes reports it as failed (exit code 1 from the CLI)."""
    require_binary("mosquitto", "mosquitto")
    doc = {
        "name": "wrong",
        "description": "expects a smoke incident nobody triggers",
        "community": {"grids": 1, "mix": {"smoke": 1}, "interval": "1s"},
        "duration": "2s",
        "settle": "1s",
        "expect": [{"incidents": {"rule": "smoke", "count": 1}}, {"deadletters": {"count": 0}}],
    }
    report = ScenarioRunner(parse_scenario(doc), RunOptions(broker="mosquitto", workdir=tmp_path)).run()
    assert [c.ok for c in report.checks] == [False, True]
    assert not report.ok


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"at": 1, "trigger": {"device": "smoke-009-01", "condition": "smoke"}}, "no device 'smoke-009-01'"),
        ({"at": 1, "trigger": {"device": "smoke-001-01", "condition": "paper_out"}}, "no condition 'paper_out'"),
        ({"at": 1, "partition": {"grid": "007", "for": 5}}, "no grid '007'"),
    ],
)
def test_unknown_devices_grids_and_conditions_are_refused_before_anything_starts(
    step: dict[str, object], message: str
) -> None:
    doc = {**MINIMAL, "community": {"grids": 1, "mix": {"smoke": 1}}, "timeline": [step]}
    runner = ScenarioRunner(parse_scenario(doc), RunOptions(broker="embedded"))
    with pytest.raises(ScenarioError, match=message):
        runner.run()
    assert runner.hub is None and runner.broker is None  # refused before any server started


@pytest.mark.integration
def test_influxdb_outage_spools_and_loses_nothing(tmp_path: Path) -> None:
    """influxdb-outage at its top speed against a real influxd, SIGKILLed mid-run: the alarm still becomes an
    incident, the hub raises store_down and keeps answering, and after the replay every delivered telemetry
    point is in influxd. Then the same check against that store with points deleted reports them (it can fail)."""
    require_binary("mosquitto", "mosquitto")
    require_binary("influxd", "influxdb")
    scenario = load_scenario("influxdb-outage")
    runner = ScenarioRunner(scenario, RunOptions(speed=scenario.max_speed, broker="mosquitto", workdir=tmp_path))
    report = runner.run()
    assert report.ok, [c for c in report.checks if not c.ok]
    assert report.store == "influxdb-v1"
    assert report.stored_points is not None and report.stored_points >= 60
    assert report.missing_points == 0
    assert runner.probes.store_not_ok > 0  # the hub's /healthz saw its store down (spool non-empty)
    assert runner.store_server.starts == 2  # killed once, started again
    assert "series store (influxd) killed (SIGKILL) for 20s" in " ".join(report.steps)

    # The check is not vacuous: bring the same influxd data back and delete one device's older points.
    runner.store_server.start()
    try:
        cutoff_ms = min(runner._delivered("smoke-001-01")) + 5000
        runner.store_server.query(f'DELETE FROM "sensor" WHERE "device" = \'smoke-001-01\' AND time < {cutoff_ms}ms')
        check = runner._check(Expectation.model_validate({"series_missing": {"count": 0}}), "after")
        other = runner._check(
            Expectation.model_validate({"series_missing": {"device": "smoke-001-02", "count": 0}}), "after"
        )
    finally:
        runner.store_server.stop()
    assert not check.ok and " 0 missing" not in check.detail and "smoke-001-01 seq" in check.detail, check
    assert other.ok, other


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_scenario_holds(name: str, tmp_path: Path) -> None:
    """Every shipped scenario at its largest allowed speed; its assertions hold."""
    require_binary("mosquitto", "mosquitto")
    scenario = load_scenario(name)
    if scenario.store == "influxdb-v1":
        require_binary("influxd", "influxdb")
    report = ScenarioRunner(scenario, RunOptions(speed=scenario.max_speed, broker="mosquitto", workdir=tmp_path)).run()
    assert report.ok, [c for c in report.checks if not c.ok]
