"""The command service on each state backend, with a fake sender and clock (no broker)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from edge import wire
from hub.commands.service import (
    CommandService,
    CommandState,
    IdempotencyConflictError,
    NewCommand,
    ack_deadline,
    state_after_ack,
)
from hub.ingest.sinks import DeviceRef
from hub.rules.state import Candidate
from hub.security.authz import Principal, may_command_device

KIOSK = DeviceRef("kiosk-1", "site-a", wire.DeviceKind.KIOSK, "330106001001001")
SENSOR = DeviceRef("sensor-1", "site-a", wire.DeviceKind.SENSOR, "330106001001001")


class Harness:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.now = 1_764_900_000.0
        self.sent: list[tuple[str, wire.Command]] = []
        self.connected = True
        self.audit: list[tuple[str, str, str]] = []
        self.incidents: list[Candidate] = []
        self.service = CommandService(
            sessions,
            lambda: self.send,
            audit=lambda: self,
            incidents=lambda: self.incidents.extend,
            clock=lambda: self.now,
            ack_margin_s=2.0,
        )

    def send(self, device: DeviceRef, cmd: wire.Command) -> None:
        if not self.connected:
            raise ConnectionError("no broker")
        self.sent.append((device.device_id, cmd))

    def record_event(self, person_id: str, roles: str, action: str, device_id: str, event_id: str, **kw: Any) -> None:
        self.audit.append((person_id, action, kw["outcome"]))

    def ack(self, device: DeviceRef, cid: str, result: wire.AckResult = wire.AckResult.OK) -> None:
        ack = wire.CommandAck(1, int(self.now * 1000), cid, result, "pong")
        self.service.on_ack(device, ack, int(self.now * 1000))

    def sweep(self) -> int:
        return self.service.sweep(int(self.now * 1000), {d.device_id: d for d in (KIOSK, SENSOR)}.get)


def ping(ttl_ms: int = 5000, key: str | None = None) -> NewCommand:
    return NewCommand(wire.CommandOp.PING, {}, ttl_ms, "operator-01", "operator", key)


def test_pure_rules() -> None:
    assert state_after_ack(wire.AckResult.OK) is CommandState.ACKED
    assert state_after_ack(wire.AckResult.ERROR) is CommandState.FAILED
    assert state_after_ack(wire.AckResult.EXPIRED) is CommandState.EXPIRED
    assert state_after_ack(wire.AckResult.DUPLICATE) is None
    assert ack_deadline(1000, 5000, 2000) == 8000


def test_sent_then_acked_and_audited(state_sessions: sessionmaker[Session]) -> None:
    h = Harness(state_sessions)
    view, created = h.service.create(KIOSK, ping())
    assert created and view["state"] == "sent" and view["deadline_ms"] == view["sent_ms"] + 7000
    ((device, cmd),) = h.sent
    assert device == "kiosk-1" and cmd.ttl_ms == 5000 and cmd.expires is None and cmd.op == "ping"
    h.ack(SENSOR, cmd.id)  # another device's ack never settles it
    assert h.service.get(cmd.id)["state"] == "sent"  # type: ignore[index]
    h.ack(KIOSK, cmd.id)
    done = h.service.get(cmd.id)
    assert done is not None and done["state"] == "acked" and done["ack"]["detail"] == "pong"
    assert h.audit == [("operator-01", "command:ping", "queued"), ("kiosk-1", "ack:ping", "ok")]


def test_timeout_raises_a_fault_for_kiosks_only_and_late_ack_keeps_the_state(
    state_sessions: sessionmaker[Session],
) -> None:
    h = Harness(state_sessions)
    kiosk_cmd = h.service.create(KIOSK, ping())[0]["id"]
    sensor_cmd = h.service.create(SENSOR, ping())[0]["id"]
    h.now += 6.9  # ttl 5 s + margin 2 s not yet over
    assert h.sweep() == 0
    h.now += 0.2
    assert h.sweep() == 2
    assert h.service.get(kiosk_cmd)["state"] == h.service.get(sensor_cmd)["state"] == "timed_out"  # type: ignore[index]
    assert [(c.action, c.device_id, c.category) for c in h.incidents] == [("open", "kiosk-1", "device_fault")]
    h.ack(KIOSK, kiosk_cmd)
    late = h.service.get(kiosk_cmd)
    assert late is not None and late["state"] == "timed_out" and late["ack"]["result"] == "ok"
    assert ("hub", "command:ping", "timed_out") in h.audit


def test_queued_while_disconnected_then_sent_or_expired(state_sessions: sessionmaker[Session]) -> None:
    h = Harness(state_sessions)
    h.connected = False
    first = h.service.create(KIOSK, ping())[0]
    assert first["state"] == "queued" and first["deadline_ms"] == first["created_ms"] + 5000
    h.connected = True
    h.sweep()
    assert h.service.get(first["id"])["state"] == "sent"  # type: ignore[index]
    h.connected = False
    second = h.service.create(KIOSK, ping(1000))[0]
    h.now += 1.1
    h.sweep()
    assert h.service.get(second["id"])["state"] == "expired"  # type: ignore[index]


def test_idempotency_key(state_sessions: sessionmaker[Session]) -> None:
    h = Harness(state_sessions)
    first, created = h.service.create(KIOSK, ping(key="k"))
    again, created_again = h.service.create(KIOSK, ping(key="k"))
    assert created and not created_again and again["id"] == first["id"] and len(h.sent) == 1
    with pytest.raises(IdempotencyConflictError):
        h.service.create(KIOSK, ping(ttl_ms=9000, key="k"))
    other_device, created_other = h.service.create(SENSOR, ping(key="k"))
    assert created_other and other_device["id"] != first["id"]


def test_who_may_command_which_device() -> None:
    device = {"id": "kiosk-1", "grid": "330106001001001"}
    admin = Principal("a", frozenset({"admin"}), ("330106001002",))
    centre = Principal("o", frozenset({"operator"}))
    near = Principal("o1", frozenset({"operator"}), ("330106001001",))
    far = Principal("o2", frozenset({"operator"}), ("330106001002",))
    supervisor = Principal("s", frozenset({"supervisor"}), ("330106001001",))
    assert may_command_device(admin, device) and may_command_device(centre, device)
    assert may_command_device(near, device) and not may_command_device(far, device)
    assert not may_command_device(supervisor, device)
    assert not may_command_device(near, {"id": "x", "grid": None})
