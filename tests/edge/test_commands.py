"""Command processing fed straight in, no broker: at-most-once, expiry, unknown ops, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edge import wire
from edge.commands import CommandError, CommandProcessor
from edge.outbox import MemoryOutbox

NOW = 1_763_900_080_000


class FakeTarget:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def ping(self) -> dict[str, Any]:
        self.calls.append(("ping", None))
        return {"epoch": 3}

    def set_interval(self, driver: int | None, seconds: float) -> list[float]:
        self.calls.append(("set_interval", (driver, seconds)))
        return [seconds]

    def resend(self, first: int, last: int) -> int:
        self.calls.append(("resend", (first, last)))
        return last - first + 1

    def snapshot(self, driver: int | None, command_id: str) -> dict[str, Any]:
        raise CommandError("no driver here supports snapshots")

    def reload_config(self) -> dict[str, Any]:
        return {"drivers": 1}

    def get_config(self) -> dict[str, Any]:
        return {"mqtt": {"password": "***"}}


def cmd(op: str, cmd_id: str = "c-1", expires: int | None = None, **args: Any) -> bytes:
    return wire.encode(wire.Command(id=cmd_id, op=op, ts=NOW - 1000, expires=expires, args=args))


def make() -> tuple[CommandProcessor, FakeTarget]:
    target = FakeTarget()
    return CommandProcessor(target, MemoryOutbox().remember_command), target


def test_ping_and_ack_encodes() -> None:
    proc, _target = make()
    ack = proc.handle(cmd("ping"), NOW)
    assert ack is not None and ack.result is wire.AckResult.OK and ack.data == {"epoch": 3}
    decoded = wire.decode(wire.Channel.CMD_ACK, wire.encode(ack.message(7, NOW)))
    assert isinstance(decoded, wire.CommandAck) and decoded.seq == 7 and decoded.id == "c-1"


def test_each_id_runs_at_most_once() -> None:
    proc, target = make()
    first = proc.handle(cmd("resend", first=1, last=5), NOW)
    again = proc.handle(cmd("resend", first=1, last=5), NOW + 10)
    assert first is not None and first.result is wire.AckResult.OK and first.data == {"count": 5}
    assert again is not None and again.result is wire.AckResult.DUPLICATE
    assert target.calls == [("resend", (1, 5))]


def test_expired_is_not_run() -> None:
    proc, target = make()
    ack = proc.handle(cmd("ping", expires=NOW - 1), NOW)
    assert ack is not None and ack.result is wire.AckResult.EXPIRED
    assert target.calls == []


def test_unknown_op_and_bad_args_are_error_acks() -> None:
    proc, target = make()
    unknown = proc.handle(cmd("selfdestruct", "c-2"), NOW)
    assert unknown is not None and unknown.result is wire.AckResult.ERROR and "unknown op" in (unknown.detail or "")
    bad = proc.handle(cmd("set_interval", "c-3", seconds=-1), NOW)
    assert bad is not None and bad.result is wire.AckResult.ERROR
    backwards = proc.handle(cmd("resend", "c-4", first=9, last=2), NOW)
    assert backwards is not None and backwards.result is wire.AckResult.ERROR
    snap = proc.handle(cmd("snapshot", "c-5"), NOW)
    assert snap is not None and snap.result is wire.AckResult.ERROR and "snapshots" in (snap.detail or "")
    assert target.calls == []
    ok = proc.handle(cmd("set_interval", "c-6", seconds=2, driver=0), NOW)
    assert ok is not None and ok.result is wire.AckResult.OK and target.calls == [("set_interval", (0, 2.0))]


def test_broken_payloads() -> None:
    proc, _ = make()
    assert proc.handle(b"not json", NOW) is None
    salvaged = proc.handle(json.dumps({"v": 1, "id": "c-9", "op": "ping"}).encode(), NOW)  # no ts
    assert salvaged is not None and salvaged.id == "c-9" and salvaged.result is wire.AckResult.ERROR


def test_get_config_is_redacted_data() -> None:
    proc, _ = make()
    ack = proc.handle(cmd("get_config"), NOW)
    assert ack is not None and ack.data == {"config": {"mqtt": {"password": "***"}}}


def test_ttl_counts_from_receipt_on_the_device_clock() -> None:
    proc, target = make()
    ttl = wire.encode(wire.Command(id="c-ttl", op=wire.CommandOp.PING, ts=0 + wire.MIN_TS_MS, ttl_ms=1000))
    # the command's ts (hub clock, decades off here) plays no part: only the wait since receipt counts
    fresh = proc.handle(ttl, NOW, received_ms=NOW - 999)
    assert fresh is not None and fresh.result is wire.AckResult.OK
    late = wire.encode(wire.Command(id="c-late", op=wire.CommandOp.PING, ts=NOW, ttl_ms=1000))
    stale = proc.handle(late, NOW, received_ms=NOW - 1001)
    assert stale is not None and stale.result is wire.AckResult.EXPIRED
    assert target.calls == [("ping", None)]


def test_every_kind_offers_only_known_ops_and_ttl_round_trips() -> None:
    for ops in wire.KIND_OPS.values():
        assert set(ops) <= set(wire.CommandOp) and wire.CommandOp.RESEND not in ops
    assert wire.ops_for("no-such-kind") == wire.UNKNOWN_KIND_OPS
    msg = wire.Command(id="c-1", op=wire.CommandOp.PING, ts=NOW, ttl_ms=30_000)
    assert wire.decode(wire.Channel.CMD, wire.encode(msg)) == msg
    with pytest.raises(wire.PayloadError):
        wire.decode(
            wire.Channel.CMD, wire.encode(wire.Command(id="c-2", op="ping", ts=NOW, ttl_ms=wire.MAX_TTL_MS + 1))
        )
