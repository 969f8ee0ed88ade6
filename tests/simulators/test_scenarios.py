"""Scenario files: schema errors name the key; the short CI set runs against real mosquitto; same seed, same run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from simulators import cli
from simulators.runner import RunOptions, ScenarioRunner
from simulators.scenario import ScenarioError, load_scenario, parse_scenario, parse_seconds, shipped
from tests.servers import require_binary

SHIPPED = (
    "camera-tampering-spree",
    "fire-in-a-building",
    "hub-crash-during-a-storm",
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
    import argparse

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


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.skipif(os.environ.get("GS_SOAK") != "1", reason="on-demand soak: set GS_SOAK=1 (about 6 minutes)")
@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_scenario_holds(name: str, tmp_path: Path) -> None:
    """Every shipped scenario at its largest allowed speed; its assertions hold."""
    require_binary("mosquitto", "mosquitto")
    scenario = load_scenario(name)
    report = ScenarioRunner(scenario, RunOptions(speed=scenario.max_speed, broker="mosquitto", workdir=tmp_path)).run()
    assert report.ok, [c for c in report.checks if not c.ok]
