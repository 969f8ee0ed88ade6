"""The agent without a broker: polling into the outbox, metric cleaning, rules, reload, driver errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import tests.edge.fake_driver  # noqa: F401  (registers test_counter)
from edge import wire
from edge.agent import Agent
from edge.commands import CommandError
from edge.config import parse_config
from edge.drivers import DriverError, Sample
from simulators.servers import free_port, wait_until
from tests.edge.agent_helpers import agent_raw, write_toml

NOW = 1_763_900_000_000


def offline_agent(tmp_path: Path, **kwargs: object) -> tuple[Agent, Path]:
    raw = agent_raw(f"mqtt://127.0.0.1:{free_port()}", tmp_path / "o.db", interval_s=3600, **kwargs)  # type: ignore[arg-type]
    path = write_toml(tmp_path / "a.toml", raw)
    return Agent(parse_config(raw), config_path=path), path


def messages(agent: Agent) -> list[wire.Message]:
    agent.outbox.release()
    return [wire.decode(i.channel, i.payload) for i in agent.outbox.reserve(10_000)]


def test_poll_prefix_cleaning_and_rules(tmp_path: Path) -> None:
    rule = {"metric": "box_temp", "type": "overheat", "above": 60, "clear_below": 50}
    agent, _ = offline_agent(tmp_path, rules=[rule])
    agent.start()
    try:
        wait_until(lambda: agent.outbox.stats().last_seq >= 1, 5, what="the poller's first poll")  # starts at once
        baseline = agent.outbox.stats().last_seq
        slot = agent.slots[0]
        object.__setattr__(slot.config, "prefix", "box_")  # as if configured with prefix = "box_"
        agent.ingest(slot, Sample({"temp": 70.0, "Bad-Name": 1, "nan": math.nan}), NOW)
        agent.ingest(slot, Sample({"temp": 40.0}), NOW + 1000)
        agent.ingest(slot, Sample({"Only-Bad": 1}), NOW + 2000)  # nothing valid: nothing stored
        got = [m for m in messages(agent) if getattr(m, "seq", 0) > baseline]
    finally:
        agent.stop()
    kinds = [type(m).__name__ for m in got]
    assert kinds == ["Telemetry", "Event", "Telemetry", "Event"]
    first = got[0]
    assert isinstance(first, wire.Telemetry) and dict(first.points[0].metrics) == {"box_temp": 70.0}
    active, cleared = got[1], got[3]
    assert isinstance(active, wire.Event) and isinstance(cleared, wire.Event)
    assert (active.state, cleared.state) == (wire.EventState.ACTIVE, wire.EventState.CLEARED)
    assert active.event_id == cleared.event_id and active.value == 70.0


def test_set_interval_and_reload_config(tmp_path: Path) -> None:
    agent, path = offline_agent(tmp_path)
    agent.start()
    try:
        assert agent.set_interval(None, 2.0) == [2.0]
        with pytest.raises(CommandError):
            agent.set_interval(5, 1.0)
        raw = agent_raw(
            "mqtt://127.0.0.1:1",
            tmp_path / "o.db",
            interval_s=7,
            rules=[{"metric": "value", "type": "low", "below": 0, "declared": True}],
        )
        raw["drivers"].append({"type": "test_counter", "interval_s": 9})
        write_toml(path, raw)
        result = agent.reload_config()
        assert result == {"drivers": 2, "rules": 1, "restart_needed": ["mqtt"]}
        assert [s.interval_s for s in agent.slots] == [7, 9]
        assert all(s.thread is not None and s.thread.is_alive() for s in agent.slots)
        assert agent.config.mqtt.url != "mqtt://127.0.0.1:1"  # mqtt changes wait for a restart
        path.write_text(path.read_text().replace("interval_s = 9", "intervall = 9"))
        with pytest.raises(CommandError, match=r"drivers\[1\]\.intervall: unknown key"):
            agent.reload_config()
        assert agent.healthy()
    finally:
        agent.stop()


class BrokenDriver:
    def __init__(self, retryable: bool) -> None:
        self.retryable = retryable
        self.polls = 0

    def poll(self, now_ms: int) -> Sample:
        self.polls += 1
        raise DriverError("device gone", retryable=self.retryable)

    def close(self) -> None:
        pass


def test_permanent_driver_error_stops_only_that_driver(tmp_path: Path) -> None:
    agent, _ = offline_agent(tmp_path)
    agent.start()
    try:
        slot = agent.slots[0]
        broken = BrokenDriver(retryable=True)
        slot.driver = broken
        assert agent.poll_once(slot) == [] and slot.errors == 1 and not slot.stop.is_set()
        broken.retryable = False
        agent.poll_once(slot)
        assert slot.stop.is_set()
        wait_until(lambda: slot.thread is not None and not slot.thread.is_alive(), 5, what="poller stopped")
        assert agent.healthy()  # a stopped driver is not a hung agent
    finally:
        agent.stop()
