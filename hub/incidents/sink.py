"""The incidents :class:`~hub.ingest.sinks.MessageSink`: feeds the rule engine on the ingest thread.

Engine evaluation is pure and fast, so it runs inline under one lock; the DB work
for the few candidates it yields goes to a worker thread (:meth:`IncidentSink.run`)
that wakes at once, so ingest never waits on the state DB. The same worker ticks
time-driven rules, saves the engine state for restarts and picks up rule changes
made by other replicas.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from edge.wire import Event, EventState, Status, Telemetry
from hub.incidents.rulestore import EngineStateStore, RuleStore
from hub.incidents.service import IncidentService
from hub.ingest.outage import OutageLog, describe
from hub.ingest.sinks import DeviceRef
from hub.rules.engine import RuleEngine
from hub.rules.state import Candidate

logger = logging.getLogger(__name__)

TICK_S = 1.0
SAVE_STATE_S = 10.0
RULE_POLL_S = 15.0
_MAX_QUEUE = 100_000
#: Failures in a row, for a reason other than the DB being away, after which a candidate is set aside.
SET_ASIDE_AFTER = 3
#: How long a historical open waits, at most, for its own clear in the same replay before it is
#: dispatched. It is released sooner, as soon as the device sends anything live: the buffer replays
#: in order, so once a live message arrives the replay is over and no clear of the outage will come.
HIST_SETTLE_S = 30.0


def _is_outage(exc: Exception) -> bool:
    """The state DB is away or busy (retry everything later), not something about one candidate."""
    return isinstance(exc, (OperationalError, InterfaceError, OSError)) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


class CandidateFailed(Exception):
    """One candidate failed for a reason other than the DB being away; it is tried again, and set
    aside after :data:`SET_ASIDE_AFTER` failures in a row (not an outage: logged as what it is)."""

    def __init__(self, cand: Candidate, failures: int, cause: Exception) -> None:
        super().__init__(
            f"incident candidate {cand.action} {cand.rule_id}/{cand.subject} failed ({describe(cause)}); "
            f"failure {failures} of {SET_ASIDE_AFTER} before it is set aside"
        )


class IncidentSink:
    """Rule engine in front of the incident service."""

    def __init__(
        self,
        engine: RuleEngine,
        service: IncidentService,
        *,
        state_store: EngineStateStore | None = None,
        rule_store: RuleStore | None = None,
        clock: Callable[[], float] = time.time,
        hist_settle_s: float = HIST_SETTLE_S,
    ) -> None:
        self.engine = engine
        self.service = service
        self.state_store = state_store
        self.rule_store = rule_store
        self._clock = clock
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._queue: deque[Candidate] = deque()
        #: Historical opens waiting for their clear, per (rule, subject): release time (hub clock) and
        #: the key's candidates since, in order. Guarded by ``_cond``.
        self._held: dict[tuple[str, str], tuple[float, list[Candidate]]] = {}
        self.hist_settle_s = hist_settle_s
        self.dropped = 0
        #: Candidates that kept failing for a reason other than the DB being away, set aside.
        self.set_aside = 0
        #: Told of each one (candidate, reason); the plug-in puts it in the dead letter.
        self.on_set_aside: Callable[[Candidate, str], None] | None = None
        self._head_failures: tuple[Candidate, int] | None = None
        self._rules_version: tuple[int, int] | None = None
        service.on_manual_close.append(self.forget)

    # ------------------------------------------------------------ sink API

    def on_status(self, device: DeviceRef, status: Status, received_ms: int) -> None:
        """Status is handled through health changes (the registry decides online/offline)."""

    def on_telemetry(self, device: DeviceRef, msg: Telemetry, received_ms: int) -> None:
        """Evaluate every point of the message."""
        if self._held and not msg.hist:
            self._replay_over(device.device_id)
        if self.engine.ignores_readings(device):  # most devices, most messages: no lock taken
            return
        with self._lock:
            out = self.engine.on_points(device, msg.points, received_ms, msg.hist)
        if out:
            self._enqueue(out)

    def on_event(self, device: DeviceRef, msg: Event, received_ms: int) -> None:
        """Map a device event."""
        if self._held and not msg.hist:
            self._replay_over(device.device_id)
        detail: dict[str, Any] = {"device_severity": msg.severity.value}
        if msg.message:
            detail["message"] = msg.message
        if msg.zone:
            detail["zone"] = msg.zone
        if msg.snapshot is not None:
            detail["snapshot"] = {
                "event_id": msg.event_id,
                "sha256": msg.snapshot.sha256,
                "status": msg.snapshot.status,
            }
        with self._lock:
            out = self.engine.on_event(
                device,
                msg.ts,
                msg.type,
                msg.state is EventState.ACTIVE,
                received_ms,
                hist=msg.hist,
                event_id=msg.event_id,
                value=msg.value,
                detail=detail,
            )
        self._enqueue(out)

    def on_health(self, device: DeviceRef, old: str, new: str, at_ms: int) -> None:
        """Device health changed."""
        with self._lock:
            out = self.engine.on_health(device, new, at_ms)
        self._enqueue(out)

    def on_data_loss(self, data: Mapping[str, Any]) -> None:
        """A data-loss record from ingest (bus kind ``data_loss``)."""
        device_id, site = str(data["device_id"]), str(data.get("site", ""))
        with self._lock:
            device = self.engine.device(device_id) or DeviceRef(device_id, site, None, None)
            out = self.engine.on_data_loss(
                device,
                int(data.get("first", 0)),
                int(data.get("last", 0)),
                int(data.get("count", 0)),
                int(data.get("recorded_ms") or self._now_ms()),
            )
        self._enqueue(out)

    def forget(self, rule_id: str, subject: str) -> None:
        """An operator closed the incident: let the next raise open a new one."""
        with self._lock:
            self.engine.forget(rule_id, subject)

    # --------------------------------------------------------------- worker

    def _enqueue(self, cands: list[Candidate]) -> None:
        if not cands:
            return
        with self._cond:
            if len(self._queue) + len(cands) > _MAX_QUEUE:
                self.dropped += len(cands)
                logger.error("incident queue full: dropped %d candidates", len(cands))
                return
            ready = [c for c in cands if not self._hold(c)]
            self._queue.extend(ready)
            if ready:
                self._cond.notify()

    def _hold(self, cand: Candidate) -> bool:
        """Hold a historical open back until the device's replay is over (its first live message) or
        :attr:`hist_settle_s` passed, with what follows it for its key.

        The device's buffer replays in order, so an alarm that was raised and cleared inside the outage
        arrives as an open followed, in the same replay, by its clear: the pair becomes one ``record``
        candidate, stored closed, that pages nobody. An open whose clear does not follow is released as
        it came (the alarm is still on: dispatched like any other). Called under ``_cond``.
        """
        key = (cand.rule_id, cand.subject)
        held = self._held.get(key)
        if held is None:
            if cand.action == "open" and cand.hist and self.hist_settle_s > 0:
                self._held[key] = (self._clock() + self.hist_settle_s, [cand])
                return True
            return False
        if cand.action == "clear" and cand.hist and all(c.action != "clear" for c in held[1]):
            del self._held[key]
            self._queue.append(_recorded(held[1][0], cand))
            return True
        held[1].append(cand)
        return True

    def _replay_over(self, device_id: str) -> int:
        """The device sent something live, so its buffer's replay is over: what it held is released now
        (an open whose clear did not come in the replay is an alarm still on)."""
        with self._cond:
            done = [k for k, (_, cands) in self._held.items() if cands[0].device_id == device_id]
            for key in done:
                self._queue.extend(self._held.pop(key)[1])
            if done:
                self._cond.notify()
        return len(done)

    def release_held(self, *, everything: bool = False) -> int:
        """Queue the held historical opens whose settle time is over (all of them on shutdown)."""
        now = self._clock()
        with self._cond:
            due = [k for k, (until, _) in self._held.items() if everything or until <= now]
            for key in due:
                self._queue.extend(self._held.pop(key)[1])
            if due:
                self._cond.notify()
        return len(due)

    def pending(self) -> int:
        """Candidates waiting for the DB (held historical ones included)."""
        with self._cond:
            return len(self._queue) + sum(len(c) for _, c in self._held.values())

    def drain(self, wait_s: float = 0.0) -> int:
        """Store queued candidates (waiting up to ``wait_s`` for the first); returns how many."""
        with self._cond:
            if not self._queue and wait_s > 0:
                self._cond.wait(wait_s)
            batch = list(self._queue)
            self._queue.clear()
        for i, cand in enumerate(batch):
            try:
                self.service.apply([cand])
            except Exception as exc:
                # Nothing of a failed candidate was committed. The DB away (an outage): put it and the
                # rest back, in order, and let the caller retry. Anything else failing for the same
                # candidate SET_ASIDE_AFTER times is about that candidate: set it aside, go on.
                failures = 0 if _is_outage(exc) else self._failed_again(cand)
                if failures >= SET_ASIDE_AFTER:
                    self._set_aside(cand, exc)
                    with self._cond:
                        self._queue.extendleft(reversed(batch[i + 1 :]))
                    return i
                with self._cond:
                    self._queue.extendleft(reversed(batch[i:]))
                if failures:
                    raise CandidateFailed(cand, failures, exc) from exc
                raise
        self._head_failures = None
        return len(batch)

    def _failed_again(self, cand: Candidate) -> int:
        """How many times in a row this candidate (the queue's head) has failed."""
        if self._head_failures is not None and self._head_failures[0] is cand:
            self._head_failures = (cand, self._head_failures[1] + 1)
        else:
            self._head_failures = (cand, 1)
        return self._head_failures[1]

    def _set_aside(self, cand: Candidate, exc: Exception) -> None:
        self._head_failures = None
        self.set_aside += 1
        reason = describe(exc)
        logger.error(
            "incident candidate %s %s/%s set aside after %d failures (%s); the ones behind it go on",
            cand.action,
            cand.rule_id,
            cand.subject,
            SET_ASIDE_AFTER,
            reason,
        )
        if self.on_set_aside is not None:
            try:
                self.on_set_aside(cand, reason)
            except Exception:  # a listener bug must not stop the worker
                logger.exception("incident sink: on_set_aside failed")

    def tick(self) -> int:
        """Advance time-driven rules to now and queue what they raise."""
        with self._lock:
            out = self.engine.tick(self._now_ms())
        self._enqueue(out)
        return len(out)

    def save_state(self) -> None:
        """Persist the engine state."""
        if self.state_store is None:
            return
        with self._lock:
            state = self.engine.dump_state()
        self.state_store.save(state, self._now_ms())

    def load_state(self) -> bool:
        """Resume from the saved engine state; False if there was none."""
        if self.state_store is None:
            return False
        state = self.state_store.load()
        if state is None:
            return False
        with self._lock:
            self.engine.load_state(state)
        return True

    def rebuild_open(self, open_incidents: list[dict[str, Any]]) -> int:
        """Mark keys of incidents open in the state DB as raised (covers state saved before they opened)."""
        n = 0
        with self._lock:
            for inc in open_incidents:
                device = None
                if inc.get("device_id"):
                    device = DeviceRef(inc["device_id"], inc["site"], None, inc.get("grid"))
                n += self.engine.assume_open(inc["rule_id"], inc["subject"], device, int(inc["opened_ms"]))
        return n

    def reload_rules(self, force: bool = False) -> bool:
        """Load rules from the store if they changed (here or on another replica)."""
        if self.rule_store is None:
            return False
        version = self.rule_store.version()
        if not force and version == self._rules_version:
            return False
        rules = self.rule_store.all()
        with self._lock:
            self.engine.set_rules(rules)
        self._rules_version = version
        return True

    def run(self, stop: threading.Event) -> None:
        """Worker loop: store candidates as they come, tick, save state; returns once ``stop`` is set."""
        next_tick = next_save = next_rules = time.monotonic()
        outage = OutageLog(
            logger,
            "incident store",
            "incident candidates wait in memory, in order (one that keeps failing for another reason than "
            "the DB being away is set aside into the dead letter)",
        )
        while not stop.is_set():
            try:
                self.release_held()
                self.drain(wait_s=0.2)
                now = time.monotonic()
                if now >= next_tick:
                    self.tick()
                    next_tick = now + TICK_S
                if now >= next_rules:
                    self.reload_rules()
                    next_rules = now + RULE_POLL_S
                if now >= next_save:
                    self.save_state()
                    next_save = now + SAVE_STATE_S
                outage.ok()
            except CandidateFailed as exc:  # about one candidate, not the DB: tried again, then set aside
                logger.warning("%s", exc)
                stop.wait(1.0)
            except Exception as exc:  # loop boundary: the DB may be unavailable; candidates stay queued
                outage.failed(exc)
                stop.wait(1.0)
        try:
            self.release_held(everything=True)
            self.drain()
            self.save_state()
        except Exception:  # shutdown boundary
            logger.exception("final incident drain failed")

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


def _recorded(opened: Candidate, cleared: Candidate) -> Candidate:
    """A historical alarm that was raised and cleared while its device was cut off, as one candidate."""
    return replace(
        opened,
        action="record",
        detail={**opened.detail, "cleared_ms": cleared.ts_ms, "clear_received_ms": cleared.detail.get("received_ms")},
    )
