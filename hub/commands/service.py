"""Operator commands on the state DB: create (idempotently), publish, correlate acks, time out.

A command's life, all on the hub's clock except the device's own ``ttl_ms`` check::

    queued --publish--> sent --ack ok--> acked
      |                   |--ack error--> failed
      |                   |--ack expired--> expired      (the device refused it as too old)
      |                   '--no ack by sent + ttl + margin--> timed_out
      '--not published by created + ttl--> expired       (the hub never reached the broker)

Every write is a conditional UPDATE on the waiting states, so an ack that races the
``queued -> sent`` step (or the sweep) wins or loses cleanly, never both. A late ack
(after ``timed_out``) is stored beside the final state, which it does not change.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Final, Literal, Protocol, cast

from sqlalchemy import CursorResult, Update, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from edge import wire
from edge.vocabulary import Category
from hub.bus import EventBus
from hub.commands.models import CommandRow
from hub.ingest.sinks import DeviceRef
from hub.rules.state import Candidate
from hub.texts.catalogue import msg

logger = logging.getLogger(__name__)

#: Seconds an ack may take beyond the command's ttl (outbox, broker, ingest) before it is timed out.
DEFAULT_ACK_MARGIN_S: Final = 10.0
#: Time-to-live when the request names none.
DEFAULT_TTL_S: Final = 60
#: Rule id and category of the device-fault incident an unanswered command raises.
TIMEOUT_RULE_ID: Final = "command_timeout"
TIMEOUT_CATEGORY: Final = Category.DEVICE_FAULT.value


class CommandState(StrEnum):
    """Where a command stands."""

    QUEUED = "queued"
    SENT = "sent"
    ACKED = "acked"
    FAILED = "failed"
    EXPIRED = "expired"
    TIMED_OUT = "timed_out"


WAITING: Final = (CommandState.QUEUED.value, CommandState.SENT.value)


def state_after_ack(result: wire.AckResult) -> CommandState | None:
    """The final state an ack puts a waiting command in; None for a ``duplicate`` ack (the first one counts)."""
    return {
        wire.AckResult.OK: CommandState.ACKED,
        wire.AckResult.ERROR: CommandState.FAILED,
        wire.AckResult.EXPIRED: CommandState.EXPIRED,
    }.get(result)


def ack_deadline(sent_ms: int, ttl_ms: int, margin_ms: int) -> int:
    """When a sent command without an ack times out (hub clock): its ttl plus the delivery margin."""
    return sent_ms + ttl_ms + margin_ms


class IdempotencyConflictError(ValueError):
    """The Idempotency-Key already names a different command on this device."""

    def __init__(self, key: str, existing: dict[str, Any]) -> None:
        super().__init__(f"Idempotency-Key {key!r} was used for command {existing['id']} ({existing['op']})")
        self.key = key
        self.existing = existing


class AuditLog(Protocol):
    """Where commands and acks are recorded (the access audit, :class:`hub.evidence.access_log.AccessLog`)."""

    def record_event(
        self, person_id: str, roles: str, action: str, device_id: str, event_id: str, *, outcome: str
    ) -> None:
        """Append one record."""
        ...


Sender = Callable[[DeviceRef, wire.Command], None]
Incidents = Callable[[list[Candidate]], object]


def _updated(s: Session, stmt: Update) -> int:
    """Rows an UPDATE changed (the conditional updates below decide races by it)."""
    return int(cast("CursorResult[Any]", s.execute(stmt)).rowcount)


def public(row: CommandRow) -> dict[str, Any]:
    """The API's view of a command."""
    ack = None
    if row.ack_result is not None:
        ack = {
            "result": row.ack_result,
            "detail": row.ack_detail,
            "data": row.ack_data or {},
            "received_ms": row.ack_ms,
            "device_ts": row.ack_device_ts,
        }
    return {
        "id": row.id,
        "device_id": row.device_id,
        "op": row.op,
        "args": row.args,
        "ttl_s": row.ttl_ms / 1000,
        "state": row.state,
        "requested_by": row.requested_by,
        "idempotency_key": row.idempotency_key,
        "created_ms": row.created_ms,
        "sent_ms": row.sent_ms,
        "deadline_ms": row.deadline_ms,
        "finished_ms": row.finished_ms,
        "ack": ack,
    }


@dataclass(frozen=True, slots=True)
class NewCommand:
    """What an operator asked for."""

    op: wire.CommandOp
    args: Mapping[str, Any]
    ttl_ms: int
    requested_by: str
    roles: str = ""
    idempotency_key: str | None = None


class CommandService:
    """Commands in table ``device_commands``; thread-safe (every step is its own transaction)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        send: Callable[[], Sender],
        *,
        bus: EventBus | None = None,
        audit: Callable[[], AuditLog | None] = lambda: None,
        incidents: Callable[[], Incidents | None] = lambda: None,
        clock: Callable[[], float] = time.time,
        ack_margin_s: float = DEFAULT_ACK_MARGIN_S,
    ) -> None:
        self.sessions = sessions
        self._send = send  # looked up per call: ingest replaces the context's sender once connected
        self.bus = bus
        self._audit = audit
        self._incidents = incidents
        self.clock = clock
        self.margin_ms = int(ack_margin_s * 1000)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ---------------------------------------------------------------- create

    def create(self, device: DeviceRef, new: NewCommand) -> tuple[dict[str, Any], bool]:
        """Store and publish a command; (its view, True) or, for a known Idempotency-Key, (the first one, False)."""
        if new.idempotency_key is not None:
            existing = self._by_key(device.device_id, new.idempotency_key)
            if existing is not None:
                return self._replay(existing, new), False
        now = self._now_ms()
        row = CommandRow(
            id=f"c-{uuid.uuid4().hex[:20]}",
            device_id=device.device_id,
            site=device.site,
            op=new.op.value,
            args=dict(new.args),
            ttl_ms=new.ttl_ms,
            state=CommandState.QUEUED.value,
            requested_by=new.requested_by[:64],
            idempotency_key=new.idempotency_key,
            created_ms=now,
            deadline_ms=now + new.ttl_ms,
        )
        try:
            with self.sessions() as s, s.begin():
                s.add(row)
        except IntegrityError:
            # another request with the same key won the race: answer with its command
            existing = None if new.idempotency_key is None else self._by_key(device.device_id, new.idempotency_key)
            if existing is None:
                raise
            return self._replay(existing, new), False
        self._record(new.requested_by, new.roles, f"command:{row.op}", row, "queued")
        self._publish(device, row)
        return self.get(row.id) or public(row), True

    def _replay(self, existing: CommandRow, new: NewCommand) -> dict[str, Any]:
        if existing.op != new.op.value or existing.args != dict(new.args) or existing.ttl_ms != new.ttl_ms:
            raise IdempotencyConflictError(str(new.idempotency_key), public(existing))
        return public(existing)

    def _by_key(self, device_id: str, key: str) -> CommandRow | None:
        stmt = select(CommandRow).where(CommandRow.device_id == device_id, CommandRow.idempotency_key == key)
        with self.sessions() as s:
            return s.scalars(stmt).first()

    def _publish(self, device: DeviceRef, row: CommandRow) -> bool:
        """Hand a queued command to the broker (QoS 1); it stays queued when the hub has no connection."""
        cmd = wire.Command(id=row.id, op=row.op, ts=self._now_ms(), args=row.args, ttl_ms=row.ttl_ms)
        try:
            self._send()(device, cmd)
        except Exception as exc:  # no MQTT connection: the sweep tries again until the ttl runs out
            logger.warning("command %s (%s) to %s stays queued: %s", row.id, row.op, row.device_id, exc)
            return False
        sent = self._now_ms()
        with self.sessions() as s, s.begin():
            done = _updated(
                s,
                update(CommandRow)
                .where(CommandRow.id == row.id, CommandRow.state == CommandState.QUEUED.value)
                .values(
                    state=CommandState.SENT.value,
                    sent_ms=sent,
                    deadline_ms=ack_deadline(sent, row.ttl_ms, self.margin_ms),
                ),
            )
        if done:
            logger.info("command %s (%s) sent to %s, ttl %d ms", row.id, row.op, row.device_id, row.ttl_ms)
            self._changed(row.id)
        return True

    # ------------------------------------------------------------------ acks

    def on_ack(self, device: DeviceRef, ack: wire.CommandAck, received_ms: int) -> None:
        """Ingest sink: store a device's ack with its command (acks of other devices' or unknown ids are ignored)."""
        with self.sessions() as s:
            row = s.get(CommandRow, ack.id)
        if row is None or row.device_id != device.device_id:
            logger.debug("ack %s from %s matches no operator command", ack.id, device.device_id)
            return
        final = state_after_ack(ack.result)
        self._record(device.device_id, "device", f"ack:{row.op}", row, ack.result.value)
        if final is None:
            return
        values: dict[str, Any] = {
            "ack_result": ack.result.value,
            "ack_detail": ack.detail,
            "ack_data": dict(ack.data),
            "ack_ms": received_ms,
            "ack_device_ts": ack.ts,
        }
        with self.sessions() as s, s.begin():
            done = _updated(
                s,
                update(CommandRow)
                .where(CommandRow.id == row.id, CommandRow.state.in_(WAITING))
                .values(state=final.value, finished_ms=received_ms, **values),
            )
            if not done:  # a late ack: keep the final state, keep what the device said
                s.execute(
                    update(CommandRow).where(CommandRow.id == row.id, CommandRow.ack_result.is_(None)).values(**values)
                )
        if done:
            logger.info("command %s (%s) on %s: %s", row.id, row.op, row.device_id, final.value)
            if final is CommandState.ACKED:
                self._clear_fault(device, received_ms)
        else:
            logger.warning("late ack %s for command %s (%s), already %s", ack.result.value, row.id, row.op, row.state)
        self._changed(row.id)

    # ----------------------------------------------------------------- sweep

    def sweep(self, now_ms: int, devices: Callable[[str], DeviceRef | None]) -> int:
        """Publish queued commands, expire unsent ones, time out unanswered ones; how many changed state."""
        stmt = select(CommandRow).where(CommandRow.state.in_(WAITING)).order_by(CommandRow.created_ms)
        with self.sessions() as s:
            rows = list(s.scalars(stmt))
        changed = 0
        for row in rows:
            if row.state == CommandState.QUEUED.value:
                device = devices(row.device_id)
                if now_ms > row.deadline_ms:
                    changed += self._finish(row, CommandState.EXPIRED, now_ms, "never reached the broker")
                elif device is not None and self._publish(device, row):
                    changed += 1
            elif now_ms > row.deadline_ms and self._finish(row, CommandState.TIMED_OUT, now_ms, "no ack in time"):
                changed += 1
                self._raise_fault(devices(row.device_id), row, now_ms)
        return changed

    def _finish(self, row: CommandRow, state: CommandState, now_ms: int, why: str) -> int:
        with self.sessions() as s, s.begin():
            done = _updated(
                s,
                update(CommandRow)
                .where(CommandRow.id == row.id, CommandRow.state == row.state)
                .values(state=state.value, finished_ms=now_ms),
            )
        if done:
            logger.warning("command %s (%s) to %s %s: %s", row.id, row.op, row.device_id, state.value, why)
            self._record("hub", "", f"command:{row.op}", row, state.value)
            self._changed(row.id)
        return int(done)

    # ------------------------------------------------------------- incidents

    def _raise_fault(self, device: DeviceRef | None, row: CommandRow, now_ms: int) -> None:
        apply = self._incidents()
        if apply is None or device is None or device.kind not in wire.KINDS_FAULT_ON_TIMEOUT:
            return
        detail = {"command_id": row.id, "op": row.op, "ttl_ms": row.ttl_ms}
        cand = _fault("open", device, f"Device did not answer the {row.op} command", now_ms, detail)
        cand = replace(cand, title_msg=msg("incident.command_timeout", op=row.op))
        try:
            apply([cand])
        except Exception:  # the state and the log already say it; the incident store may be away
            logger.exception("device-fault incident for command %s not raised", row.id)

    def _clear_fault(self, device: DeviceRef, now_ms: int) -> None:
        apply = self._incidents()
        if apply is None or device.kind not in wire.KINDS_FAULT_ON_TIMEOUT:
            return
        cand = _fault("clear", device, "Device answers commands again", now_ms)
        try:
            apply([cand])
        except Exception:  # loop boundary of the ingest thread: never let an incident write break ingest
            logger.exception("device-fault incident of %s not cleared", device.device_id)

    # ----------------------------------------------------------------- reads

    def get(self, command_id: str) -> dict[str, Any] | None:
        """One command, or None."""
        with self.sessions() as s:
            row = s.get(CommandRow, command_id)
            return None if row is None else public(row)

    def list(self, device_id: str, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """A device's commands, newest first."""
        stmt = (
            select(CommandRow)
            .where(CommandRow.device_id == device_id)
            .order_by(CommandRow.created_ms.desc(), CommandRow.id)
            .limit(limit)
            .offset(offset)
        )
        with self.sessions() as s:
            return [public(r) for r in s.scalars(stmt)]

    # -------------------------------------------------------------- plumbing

    def _changed(self, command_id: str) -> None:
        if self.bus is not None:
            view = self.get(command_id)
            if view is not None:
                self.bus.publish("command", view)

    def _record(self, person_id: str, roles: str, action: str, row: CommandRow, outcome: str) -> None:
        audit = self._audit()
        if audit is None:
            logger.warning("no audit log: %s %s %s by %s not recorded", action, row.id, outcome, person_id)
            return
        audit.record_event(person_id, roles, action, row.device_id, row.id, outcome=outcome)


def _fault(
    action: Literal["open", "clear"], device: DeviceRef, title: str, now_ms: int, detail: dict[str, Any] | None = None
) -> Candidate:
    """The command-timeout incident's candidate for ``device`` (one per device)."""
    return Candidate(
        action=action,
        rule_id=TIMEOUT_RULE_ID,
        rule_kind="command",
        subject=device.device_id,
        device_id=device.device_id,
        site=device.site,
        grid=device.grid,
        category=TIMEOUT_CATEGORY,
        severity=wire.Severity.MINOR.value,
        title=title,
        ts_ms=now_ms,
        detail=detail or {},
    )
