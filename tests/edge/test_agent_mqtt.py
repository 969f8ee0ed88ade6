"""The agent against a real mosquitto: birth/LWT, nothing lost across kill -9 and outages, commands."""

from __future__ import annotations

import collections
import hashlib
import time
from pathlib import Path

import pytest

import tests.edge.fake_driver  # noqa: F401  (registers test_counter in this process)
from edge import wire
from edge.agent import Agent
from edge.config import parse_config
from edge.drivers import DriverEvent, Sample
from edge.outbox import read_stats
from simulators.servers import Mosquitto, wait_until
from tests.edge.agent_helpers import agent_raw, last_seq, pending_seqs, start_agent, terminate, write_toml
from tests.edge.mqtt_probe import Probe

pytestmark = pytest.mark.integration

DEVICE_FILTER = wire.subscription(site="site-a", device_id="dev-1")


def statuses(probe: Probe) -> list[wire.Status]:
    out = []
    for m in probe.on(wire.Channel.STATUS):
        msg = m.message()
        assert isinstance(msg, wire.Status)
        out.append(msg)
    return out


def gaps(probe: Probe) -> list[wire.GapNotice]:
    out = []
    for m in probe.on(wire.Channel.GAP):
        msg = m.message()
        assert isinstance(msg, wire.GapNotice)
        out.append(msg)
    return out


def test_birth_telemetry_and_lwt_on_kill(mosquitto: Mosquitto, tmp_path: Path) -> None:
    probe = Probe(mosquitto.url, DEVICE_FILTER)
    proc = start_agent(write_toml(tmp_path / "a.toml", agent_raw(mosquitto.url, tmp_path / "o.db", interval_s=0.05)))
    try:
        wait_until(lambda: len(probe.on(wire.Channel.TELEMETRY)) >= 5, 15, what="telemetry")
        birth = statuses(probe)[0]
        assert (birth.state, birth.epoch, birth.kind, birth.grid) == (
            wire.DeviceState.ONLINE,
            1,
            wire.DeviceKind.SENSOR,
            "110105001002003",
        )
        seqs = probe.seqs()
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) and seqs[0] == 1
        proc.kill()
        proc.wait()
        wait_until(lambda: statuses(probe)[-1].state is wire.DeviceState.OFFLINE, 10, what="LWT")
        lwt = statuses(probe)[-1]
        assert (lwt.reason, lwt.epoch) == ("lwt", 1)
        late = Probe(mosquitto.url, wire.topic("site-a", "dev-1", wire.Channel.STATUS), client_id="late")
        wait_until(late.snapshot, 5, what="retained status")
        held = late.snapshot()[0]
        assert held.retain and wire.decode(wire.Channel.STATUS, held.payload) == lwt
        late.close()
        # restart: the new session has a higher epoch, so the hub can ignore the old LWT
        proc = start_agent(tmp_path / "a.toml")
        wait_until(lambda: statuses(probe)[-1].state is wire.DeviceState.ONLINE, 15, what="second birth")
        assert statuses(probe)[-1].epoch == 2
    finally:
        terminate(proc)
        probe.close()
    assert statuses(probe)[-1].reason == "shutdown"


def test_kill9_while_broker_down_loses_nothing(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Broker down; the agent buffers >= 10,000 messages across a kill -9; all arrive exactly once, in order."""
    probe = Probe(mosquitto.url, DEVICE_FILTER, client_id="probe-10k", persistent=True)
    mosquitto.stop()
    db = tmp_path / "o.db"
    config = write_toml(tmp_path / "a.toml", agent_raw(mosquitto.url, db, interval_s=0.0001, event_every=100))
    proc = start_agent(config)
    try:
        wait_until(lambda: last_seq(db) >= 5_000, 60, 0.05, "first 5,000 buffered")
        proc.kill()  # mid-burst
        proc.wait()
        proc = start_agent(config)
        wait_until(lambda: read_stats(db).last_seq >= 10_000, 60, 0.05, "10,000 buffered")
        mosquitto.start()
        wait_until(lambda: read_stats(db).pending < 100, 90, 0.1, "backlog drained")
    finally:
        terminate(proc)
    stats = read_stats(db)
    expected = set(range(1, stats.last_seq + 1)) - pending_seqs(db)
    assert stats.last_seq >= 10_000 and stats.epoch == 2
    wait_until(lambda: len(probe.seqs()) >= len(expected), 30, 0.1, "probe received everything")
    received = probe.seqs()
    probe.close()
    counts = collections.Counter(received)
    assert [s for s, n in counts.items() if n > 1] == [], "a (device, seq) arrived twice"
    assert set(received) == expected
    assert received == sorted(received), "out of order"


def test_outbox_full_evicts_telemetry_and_reports_gap(mosquitto: Mosquitto, tmp_path: Path) -> None:
    probe = Probe(mosquitto.url, DEVICE_FILTER, client_id="probe-gap", persistent=True)
    mosquitto.stop()
    db = tmp_path / "o.db"
    rule = {"metric": "value", "type": "low_value", "below": 5.0, "severity": "major", "declared": True}
    raw = agent_raw(
        mosquitto.url, db, interval_s=0.001, event_every=25, max_bytes=20_000, hist_after_s=0.5, rules=[rule]
    )
    agent = Agent(parse_config(raw))
    agent.start()
    try:
        wait_until(lambda: agent.outbox.stats().evicted_total >= 1_000, 60, 0.05, "evictions")
        mosquitto.start()
        wait_until(lambda: gaps(probe), 30, 0.05, "gap notice at the broker")
    finally:
        agent.stop()
    stats = read_stats(db)
    pending = pending_seqs(db)
    wait_until(lambda: len(probe.seqs()) >= stats.last_seq - len(pending) - stats.evicted_total, 30, 0.1, "all")
    lost: set[int] = set()
    for gap in gaps(probe):
        assert gap.reason == "evicted"
        lost.update(range(gap.first, gap.last + 1))
    events = {m.message().seq for m in probe.on(wire.Channel.EVENT)}  # type: ignore[union-attr]
    received = set(probe.seqs())
    probe.close()
    assert len(lost) == stats.evicted_total >= 1_000
    assert lost.isdisjoint(received)
    assert received | lost | pending == set(range(1, stats.last_seq + 1)), "a seq vanished without a gap notice"
    assert len(events) >= 40
    evicted_telemetry_only = min(lost) < min(events)  # the oldest telemetry went first, events were kept
    assert evicted_telemetry_only
    first_event = probe.on(wire.Channel.EVENT)[0].message()
    assert isinstance(first_event, wire.Event) and first_event.hist  # raised > 1 s before delivery: historical
    # the local rule fired on the first poll while the broker was down; delivered later, marked historical
    assert (first_event.type, first_event.state, first_event.severity) == (
        "low_value",
        wire.EventState.ACTIVE,
        wire.Severity.MAJOR,
    )


def test_broker_restart_reconnects_within_backoff(mosquitto: Mosquitto, tmp_path: Path) -> None:
    probe = Probe(mosquitto.url, DEVICE_FILTER, client_id="probe-restart", persistent=True)
    agent = Agent(parse_config(agent_raw(mosquitto.url, tmp_path / "o.db", interval_s=0.005)))
    agent.start()
    pub = agent.publisher
    assert pub is not None
    try:
        wait_until(lambda: len(probe.seqs()) >= 50, 15, what="telemetry before restart")
        mosquitto.stop()
        wait_until(lambda: not pub.connected, 10, what="disconnect noticed")
        mosquitto.start()
        started = time.monotonic()
        wait_until(lambda: pub.connects >= 2, 10, 0.01, "reconnect")
        reconnect_s = time.monotonic() - started
        before = len(probe.seqs())
        wait_until(lambda: len(probe.seqs()) >= before + 50, 15, what="telemetry after restart")
    finally:
        agent.stop()
    assert reconnect_s <= 0.5 + 1.0, f"reconnect took {reconnect_s:.2f}s, backoff_max_s is 0.5"
    stats = read_stats(tmp_path / "o.db")
    expected = set(range(1, stats.last_seq + 1)) - pending_seqs(tmp_path / "o.db")
    wait_until(lambda: set(probe.seqs()) >= expected, 15, what="everything acked is received")
    fresh = probe.seqs(include_dup=False)
    probe.close()
    assert [s for s, n in collections.Counter(fresh).items() if n > 1] == [], "the agent published a seq twice"


def test_commands_over_mqtt(mosquitto: Mosquitto, tmp_path: Path) -> None:
    raw = agent_raw(
        mosquitto.url,
        tmp_path / "o.db",
        interval_s=0.02,
        backend="memory",
        mqtt={"username": "dev-1", "password": "pw-secret"},
    )
    agent = Agent(parse_config(raw))
    probe = Probe(mosquitto.url, DEVICE_FILTER, client_id="hub")
    cmd_topic = wire.topic("site-a", "dev-1", wire.Channel.CMD)
    agent.start()

    def acks() -> dict[str, wire.CommandAck]:
        out = {}
        for m in probe.on(wire.Channel.CMD_ACK):
            ack = m.message()
            assert isinstance(ack, wire.CommandAck)
            out[ack.id] = ack
        return out

    def send(cmd_id: str, op: str, expires: int | None = None, **args: object) -> None:
        now = int(time.time() * 1000)
        probe.publish(cmd_topic, wire.encode(wire.Command(id=cmd_id, op=op, ts=now, expires=expires, args=args)))

    try:
        wait_until(lambda: agent.outbox.stats().sent >= 20, 15, what="20 messages acked")
        send("c-resend", "resend", first=3, last=7)
        send("c-expired", "ping", expires=int(time.time() * 1000) - 60_000)
        send("c-unknown", "format_disk")
        send("c-snap", "snapshot")
        send("c-config", "get_config")
        send("c-interval", "set_interval", seconds=0.05, driver=0)
        wait_until(lambda: len(acks()) >= 6, 15, what="six acks")
        send("c-resend", "resend", first=3, last=7)
        wait_until(lambda: sum(1 for m in probe.on(wire.Channel.CMD_ACK) if b"c-resend" in m.payload) >= 2, 10)
    finally:
        agent.stop()
    got = acks()
    assert got["c-resend"].result is wire.AckResult.DUPLICATE  # the second one; the first was ok
    first_resend = next(m.message() for m in probe.on(wire.Channel.CMD_ACK) if b"c-resend" in m.payload)
    assert isinstance(first_resend, wire.CommandAck) and first_resend.result is wire.AckResult.OK
    assert first_resend.data == {"count": 5}
    assert got["c-expired"].result is wire.AckResult.EXPIRED
    assert got["c-unknown"].result is wire.AckResult.ERROR
    assert got["c-interval"].result is wire.AckResult.OK and got["c-interval"].data == {"intervals": [0.05]}
    config = got["c-config"].data["config"]
    assert config["mqtt"]["password"] == "***" and "pw-secret" not in str(got["c-config"])
    # resent telemetry: the same seqs again, marked historical
    telemetry = [m.message() for m in probe.on(wire.Channel.TELEMETRY)]
    replayed = [t for t in telemetry if isinstance(t, wire.Telemetry) and t.hist]
    assert [t.seq for t in replayed] == [3, 4, 5, 6, 7]
    originals = {t.seq: t for t in telemetry if isinstance(t, wire.Telemetry) and not t.hist}
    assert all(t.points == originals[t.seq].points for t in replayed)
    # snapshot: JPEG on snapshot/{command id}, hash in the ack
    snaps = probe.on(wire.Channel.SNAPSHOT)
    assert [wire.parse_topic(s.topic).event_id for s in snaps] == ["c-snap"]
    assert got["c-snap"].data["sha256"] == hashlib.sha256(snaps[0].payload).hexdigest()
    probe.close()


def test_driver_event_with_snapshot(mosquitto: Mosquitto, tmp_path: Path) -> None:
    agent = Agent(parse_config(agent_raw(mosquitto.url, tmp_path / "o.db", interval_s=60, backend="memory")))
    probe = Probe(mosquitto.url, DEVICE_FILTER)
    agent.start()
    jpeg = b"\xff\xd8" + bytes(range(256)) * 4 + b"\xff\xd9"
    try:
        wait_until(lambda: agent.publisher is not None and agent.publisher.connected, 10, what="connected")
        raised = DriverEvent(
            "crowd", wire.EventState.ACTIVE, wire.Severity.MAJOR, zone="square", snapshot=jpeg, snapshot_status="sent"
        )
        agent.ingest(agent.slots[0], Sample({}, (raised,)), int(time.time() * 1000))
        agent.ingest(
            agent.slots[0],
            Sample({}, (DriverEvent("crowd", wire.EventState.CLEARED, zone="square"),)),
            int(time.time() * 1000),
        )
        wait_until(lambda: len(probe.on(wire.Channel.EVENT)) >= 2 and probe.on(wire.Channel.SNAPSHOT), 10)
    finally:
        agent.stop()
    active, cleared = (m.message() for m in probe.on(wire.Channel.EVENT))
    assert isinstance(active, wire.Event) and isinstance(cleared, wire.Event)
    assert active.event_id == cleared.event_id and cleared.state is wire.EventState.CLEARED
    assert active.snapshot is not None and active.snapshot.sha256 == hashlib.sha256(jpeg).hexdigest()
    snap = probe.on(wire.Channel.SNAPSHOT)[0]
    assert wire.parse_topic(snap.topic).event_id == active.event_id and snap.payload == jpeg
    probe.close()
