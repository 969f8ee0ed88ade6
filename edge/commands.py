"""Hub -> device commands: decode, refuse expired and repeated ones, run, and answer with an ack.

:class:`CommandProcessor` is the thin, testable core: it takes the raw ``cmd``
payload and returns the :class:`~edge.wire.CommandAck` fields; the agent puts
the ack through the outbox like any other message. What each op does lives
behind the small :class:`CommandTarget` protocol the agent implements, so the
processor can be tested by feeding payloads straight in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from edge import wire

logger = logging.getLogger(__name__)


class CommandError(Exception):
    """A command that cannot be carried out; the message goes into the error ack."""


class CommandTarget(Protocol):
    """What commands act on (the agent)."""

    def ping(self) -> dict[str, Any]:
        """Liveness data: epoch, backlog, uptime."""
        ...

    def set_interval(self, driver: int | None, seconds: float) -> list[float]:
        """Set one driver's poll interval (all when ``driver`` is None); return all intervals."""
        ...

    def resend(self, first: int, last: int) -> int:
        """Republish sent items ``first..last`` from the replay window; return how many."""
        ...

    def snapshot(self, driver: int | None, command_id: str) -> dict[str, Any]:
        """Ask a driver that supports it for a snapshot and publish it."""
        ...

    def reload_config(self) -> dict[str, Any]:
        """Re-read the config file and apply what can change at run time."""
        ...

    def get_config(self) -> dict[str, Any]:
        """The running config with secrets redacted."""
        ...


@dataclass(frozen=True, slots=True)
class AckSpec:
    """The answer to a command, before the outbox gives it a seq."""

    id: str
    result: wire.AckResult
    detail: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def message(self, seq: int, ts: int) -> wire.CommandAck:
        """The wire ack with its seq and time."""
        return wire.CommandAck(seq=seq, ts=ts, id=self.id, result=self.result, detail=self.detail, data=self.data)


def _int_arg(args: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = args.get(key, default)
    if type(value) is not int or value < 0:
        raise CommandError(f"argument {key!r} must be a non-negative integer")
    return value


def _opt_driver(args: Mapping[str, Any]) -> int | None:
    value = args.get("driver", "all")
    if value in ("all", None):
        return None
    if type(value) is not int or value < 0:
        raise CommandError("argument 'driver' must be a driver index or 'all'")
    return value


class CommandProcessor:
    """Runs each command id at most once, refuses expired ones, answers every decodable command."""

    def __init__(self, target: CommandTarget, remember: Callable[[str, int], bool]) -> None:
        self.target = target
        self.remember = remember

    def handle(self, payload: bytes, now_ms: int, received_ms: int | None = None) -> AckSpec | None:
        """Process one ``cmd`` payload; None when it is too broken to answer (no usable id).

        ``received_ms`` is when this device received the payload, on the same clock as ``now_ms``
        (default: now); a command's ``ttl_ms`` counts from there.
        """
        try:
            message = wire.decode(wire.Channel.CMD, payload)
        except wire.PayloadError as exc:
            cmd_id = _salvage_id(payload)
            logger.warning("bad command %s: %s", cmd_id, exc)
            if cmd_id is None:
                return None
            return AckSpec(cmd_id, wire.AckResult.ERROR, f"bad command: {exc.reason}: {exc.detail}")
        assert isinstance(message, wire.Command)
        if not self.remember(message.id, now_ms):
            logger.info("command %s (%s) already handled", message.id, message.op)
            return AckSpec(message.id, wire.AckResult.DUPLICATE, "command id already handled")
        if message.expires is not None and now_ms > message.expires:
            logger.info("command %s (%s) expired at %d, not run", message.id, message.op, message.expires)
            return AckSpec(message.id, wire.AckResult.EXPIRED, f"expired at {message.expires}")
        waited = now_ms - (now_ms if received_ms is None else received_ms)
        if message.ttl_ms is not None and waited > message.ttl_ms:
            logger.info(
                "command %s (%s) waited %d ms > ttl %d ms, not run", message.id, message.op, waited, message.ttl_ms
            )
            return AckSpec(message.id, wire.AckResult.EXPIRED, f"waited {waited} ms, ttl {message.ttl_ms} ms")
        try:
            return self._run(message)
        except CommandError as exc:
            logger.warning("command %s (%s) failed: %s", message.id, message.op, exc)
            return AckSpec(message.id, wire.AckResult.ERROR, str(exc))

    def _run(self, cmd: wire.Command) -> AckSpec:
        args = cmd.args
        logger.info("running command %s: %s %s", cmd.id, cmd.op, dict(args))
        if cmd.op == wire.CommandOp.PING:
            return AckSpec(cmd.id, wire.AckResult.OK, "pong", self.target.ping())
        if cmd.op == wire.CommandOp.SET_INTERVAL:
            seconds = args.get("seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds <= 86_400:
                raise CommandError("argument 'seconds' must be a number in (0, 86400]")
            intervals = self.target.set_interval(_opt_driver(args), float(seconds))
            return AckSpec(cmd.id, wire.AckResult.OK, f"interval set to {seconds}s", {"intervals": intervals})
        if cmd.op == wire.CommandOp.RESEND:
            first, last = _int_arg(args, "first"), _int_arg(args, "last")
            if last < first:
                raise CommandError(f"last={last} is before first={first}")
            count = self.target.resend(first, last)
            return AckSpec(cmd.id, wire.AckResult.OK, f"resent {count} messages", {"count": count})
        if cmd.op == wire.CommandOp.SNAPSHOT:
            return AckSpec(cmd.id, wire.AckResult.OK, "snapshot sent", self.target.snapshot(_opt_driver(args), cmd.id))
        if cmd.op == wire.CommandOp.RELOAD_CONFIG:
            return AckSpec(cmd.id, wire.AckResult.OK, "config reloaded", self.target.reload_config())
        if cmd.op == wire.CommandOp.GET_CONFIG:
            return AckSpec(cmd.id, wire.AckResult.OK, "config (secrets redacted)", {"config": self.target.get_config()})
        raise CommandError(f"unknown op {cmd.op!r}; known: {', '.join(wire.CommandOp)}")


def _salvage_id(payload: bytes) -> str | None:
    try:
        obj = wire.load_json(payload)
    except wire.PayloadError:
        return None
    cmd_id = obj.get("id")
    return cmd_id if isinstance(cmd_id, str) and wire.is_valid_id(cmd_id) else None
