"""The edge agent: polls drivers, runs local rules, queues everything in the outbox, publishes.

Threads per agent: one poller per driver and one publisher (which also runs
commands), so 60 agents fit in one process. Polling, rules and enqueueing never
wait for the network: while the broker is away readings and alarms pile up in
the outbox and are delivered, marked historical, when it comes back.
"""

from __future__ import annotations

import logging
import math
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge import wire
from edge.commands import CommandError, CommandProcessor
from edge.config import AgentConfig, ConfigError, load_config, redacted
from edge.drivers import Driver, DriverConfigBase, DriverError, DriverEvent, Sample, get_driver_spec
from edge.outbox import Outbox, open_outbox
from edge.outbox.base import MessageFactory
from edge.publisher import Publisher
from edge.rules import RuleEngine, RuleTransition

logger = logging.getLogger(__name__)

_METRIC_RE = re.compile(wire.METRIC_PATTERN)
_HIST = frozenset({wire.Channel.TELEMETRY, wire.Channel.EVENT})
DRIVER_ERROR_LOG_EVERY = 60


@dataclass(eq=False)
class DriverSlot:
    """One configured driver and its poller thread."""

    index: int
    config: DriverConfigBase
    driver: Driver
    interval_s: float
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    errors: int = 0
    open_events: dict[tuple[str, str | None], str] = field(default_factory=dict)


class Agent:
    """One device's agent. ``start()``/``stop()``, or ``run()`` to block until SIGINT/SIGTERM."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        clock: Callable[[], float] = time.time,
        config_path: str | Path | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.config_path = Path(config_path) if config_path is not None else None
        self.outbox = outbox if outbox is not None else open_outbox(config.outbox)
        self.epoch = 0
        self.slots: list[DriverSlot] = []
        self.rules = RuleEngine([r.to_rule() for r in config.rules])
        self._rules_lock = threading.Lock()
        self._slots_lock = threading.Lock()
        self.commands = CommandProcessor(self, self.outbox.remember_command)
        self.publisher: Publisher | None = None
        self._started_at = 0.0
        self._stopped = threading.Event()

    # --------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Open a new session (epoch), start the publisher and one poller per driver."""
        self.epoch = self.outbox.begin_session()
        self._started_at = time.monotonic()
        self.slots = self._build_slots(self.config)
        intervals = [s.interval_s for s in self.slots]
        self.publisher = Publisher(
            self.config.device,
            self.config.mqtt,
            self.outbox,
            epoch=self.epoch,
            hist_after_s=self.config.outbox.hist_after_s,
            on_command=self._on_command,
            interval_s=min(intervals) if intervals else None,
            clock=self.clock,
        )
        stats = self.outbox.stats()
        logger.info(
            "agent %s/%s starting: epoch %d, %d driver(s), %d rule(s), backlog %d messages, last seq %d",
            self.config.device.site,
            self.config.device.id,
            self.epoch,
            len(self.slots),
            len(self.rules.rules),
            stats.pending,
            stats.last_seq,
        )
        self.publisher.start()
        self._start_pollers(self.slots)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop pollers, publish offline (shutdown), close drivers and the outbox."""
        self._stopped.set()
        self._stop_pollers(self.slots, timeout)
        if self.publisher is not None:
            self.publisher.stop(timeout)
        self.outbox.close()
        logger.info("agent %s stopped", self.config.device.id)

    def healthy(self) -> bool:
        """True while the publisher and every poller thread are alive (for the systemd watchdog)."""
        if self.publisher is None or not self.publisher.alive():
            return False
        return all(s.thread is not None and s.thread.is_alive() for s in self.slots if not s.stop.is_set())

    def run(self, notify: Callable[[str], object] | None = None, watchdog_s: float | None = None) -> int:
        """Start, block until SIGINT/SIGTERM (or :meth:`stop`), stop cleanly; ``notify`` gets sd_notify lines."""
        stop = threading.Event()

        def _signal(signum: int, _frame: object) -> None:
            logger.info("received %s, stopping", signal.Signals(signum).name)
            stop.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _signal)
            signal.signal(signal.SIGINT, _signal)
        self.start()
        if notify is not None:
            notify("READY=1")
        tick = min(1.0, watchdog_s / 2) if watchdog_s else 1.0
        while not stop.wait(tick) and not self._stopped.is_set():
            if notify is not None and watchdog_s and self.healthy():
                notify("WATCHDOG=1")
        if notify is not None:
            notify("STOPPING=1")
        if not self._stopped.is_set():
            self.stop()
        return 0

    # ----------------------------------------------------------------- drivers

    def _build_slots(self, config: AgentConfig) -> list[DriverSlot]:
        slots = []
        for index, driver_config in enumerate(config.drivers):
            spec = get_driver_spec(str(getattr(driver_config, "type", "")))
            slots.append(DriverSlot(index, driver_config, spec.factory(driver_config), driver_config.interval_s))
        return slots

    def _start_pollers(self, slots: list[DriverSlot]) -> None:
        for slot in slots:
            name = f"poll-{self.config.device.id}-{slot.index}"
            slot.thread = threading.Thread(target=self._poll_loop, args=(slot,), name=name, daemon=True)
            slot.thread.start()

    def _stop_pollers(self, slots: list[DriverSlot], timeout: float) -> None:
        for slot in slots:
            slot.stop.set()
        for slot in slots:
            if slot.thread is not None:
                slot.thread.join(timeout)
            try:
                slot.driver.close()
            except Exception:
                logger.exception("closing driver %d failed", slot.index)

    def _poll_loop(self, slot: DriverSlot) -> None:
        last_at: float | None = None  # when the previous poll was due
        while not slot.stop.is_set():
            now = time.monotonic()
            # the interval is read every time round, so set_interval applies within a second
            due = now if last_at is None else last_at + slot.interval_s
            if due > now:
                slot.stop.wait(min(due - now, 1.0))
                continue
            try:
                self.poll_once(slot)
            except Exception:
                logger.exception("poll of driver %d failed", slot.index)
            # fell behind (slow device, suspend): carry on from now, no burst of catch-up polls
            last_at = due if now - due < slot.interval_s else now

    def poll_once(self, slot: DriverSlot) -> list[int]:
        """Poll one driver now, run rules, enqueue the results; return the seqs stored."""
        now_ms = int(self.clock() * 1000)
        try:
            sample = slot.driver.poll(now_ms)
        except DriverError as exc:
            slot.errors += 1
            if slot.errors == 1 or slot.errors % DRIVER_ERROR_LOG_EVERY == 0:
                logger.warning("driver %d (%s) failed %d time(s): %s", slot.index, slot.config, slot.errors, exc)
            if not exc.retryable:
                logger.error("driver %d gave a permanent error; it is stopped", slot.index)
                slot.stop.set()
            return []
        if slot.errors:
            logger.info("driver %d recovered after %d error(s)", slot.index, slot.errors)
            slot.errors = 0
        return self.ingest(slot, sample, now_ms)

    def ingest(self, slot: DriverSlot, sample: Sample, now_ms: int) -> list[int]:
        """Turn one sample into telemetry, rule events and driver events in the outbox."""
        metrics = _clean_metrics(slot.config.prefix, sample.metrics)
        factories: list[MessageFactory] = []
        if metrics:
            point = (wire.Point(now_ms, metrics),)
            factories.append(lambda seq: wire.Telemetry(seq=seq, ts=now_ms, points=point))
            with self._rules_lock:
                transitions = self.rules.evaluate(metrics, now_ms)
            factories.extend(_rule_event(t) for t in transitions)
        for event in sample.events:
            factory = self._driver_event(slot, event, now_ms)
            if factory is not None:
                factories.append(factory)
        if not factories:
            return []
        seqs = self.outbox.enqueue(factories, now_ms)
        if self.publisher is not None:
            self.publisher.wake()
        return seqs

    def _driver_event(self, slot: DriverSlot, event: DriverEvent, now_ms: int) -> MessageFactory | None:
        if _METRIC_RE.fullmatch(event.type) is None:
            logger.warning("driver %d raised an event with a bad type %r; dropped", slot.index, event.type)
            return None
        key = (event.type, event.zone)
        if event.state is wire.EventState.ACTIVE or key not in slot.open_events:
            slot.open_events[key] = f"{event.type[:40]}-d{slot.index}-{now_ms:x}"
        event_id = slot.open_events[key]
        if event.state is wire.EventState.CLEARED:
            slot.open_events.pop(key, None)
        ref = self._publish_snapshot(event, event_id)
        attrs = dict(event.attrs)
        return lambda seq: wire.Event(
            seq=seq,
            ts=now_ms,
            event_id=event_id,
            type=event.type,
            state=event.state,
            severity=event.severity,
            message=event.message,
            value=event.value,
            zone=event.zone,
            snapshot=ref,
            attrs=attrs,
        )

    def _publish_snapshot(self, event: DriverEvent, event_id: str) -> wire.SnapshotRef | None:
        if event.snapshot is None:
            if event.snapshot_status == "withheld":
                return wire.SnapshotRef(None, 0, "withheld", event.snapshot_note)
            return None
        try:
            sha = wire.check_snapshot(event.snapshot)
        except wire.PayloadError as exc:
            logger.warning("snapshot for %s not sent: %s", event_id, exc)
            return wire.SnapshotRef(None, 0, "withheld", exc.reason)
        if self.publisher is not None:
            self.publisher.send_direct(self.publisher.topic_for(wire.Channel.SNAPSHOT, event_id), event.snapshot)
        return wire.SnapshotRef(sha, len(event.snapshot), event.snapshot_status or "sent", event.snapshot_note)

    # ---------------------------------------------------------------- commands

    def _on_command(self, payload: bytes) -> None:
        now_ms = int(self.clock() * 1000)
        ack = self.commands.handle(payload, now_ms)
        if ack is not None:
            self.outbox.enqueue([lambda seq: ack.message(seq, now_ms)], now_ms)
            if self.publisher is not None:
                self.publisher.wake()

    def ping(self) -> dict[str, Any]:
        """Liveness data for the ping command."""
        stats = self.outbox.stats()
        return {
            "epoch": self.epoch,
            "pending": stats.pending,
            "last_seq": stats.last_seq,
            "uptime_s": round(time.monotonic() - self._started_at, 1),
        }

    def set_interval(self, driver: int | None, seconds: float) -> list[float]:
        """Change poll intervals at run time."""
        with self._slots_lock:
            if driver is not None and not 0 <= driver < len(self.slots):
                raise CommandError(f"no driver {driver}; this agent has {len(self.slots)}")
            for slot in self.slots:
                if driver is None or slot.index == driver:
                    slot.interval_s = seconds
            return [s.interval_s for s in self.slots]

    def resend(self, first: int, last: int) -> int:
        """Republish sent items from the replay window, marked historical."""
        if self.publisher is None:
            raise CommandError("publisher not running")
        items = self.outbox.replay(first, last)
        for item in items:
            payload = wire.mark_historical(item.payload) if item.channel in _HIST else item.payload
            self.publisher.send_direct(self.publisher.topic_for(item.channel), payload)
        logger.info("resend %d..%d: %d message(s) from the replay window", first, last, len(items))
        return len(items)

    def snapshot(self, driver: int | None, command_id: str) -> dict[str, Any]:
        """Take a snapshot with the first driver (or the given one) that has a ``snapshot()`` method."""
        slots = [s for s in self.slots if driver is None or s.index == driver]
        capable = [s for s in slots if callable(getattr(s.driver, "snapshot", None))]
        if not capable:
            raise CommandError("no driver here supports snapshots")
        slot = capable[0]
        result = slot.driver.snapshot()  # type: ignore[attr-defined]
        now_ms = int(self.clock() * 1000)
        if isinstance(result, DriverEvent):
            self.ingest(slot, Sample({}, (result,)), now_ms)
            return {"driver": slot.index, "event_type": result.type}
        if not isinstance(result, bytes | bytearray):
            raise CommandError(f"driver {slot.index} returned no image")
        ref = self._publish_snapshot(
            DriverEvent("snapshot", wire.EventState.ACTIVE, snapshot=bytes(result)), command_id
        )
        assert ref is not None
        if ref.sha256 is None:
            raise CommandError(f"snapshot withheld: {ref.note}")
        return {"driver": slot.index, "event_id": command_id, "sha256": ref.sha256, "size": ref.size}

    def reload_config(self) -> dict[str, Any]:
        """Re-read the config file; apply drivers and rules now, report sections that need a restart."""
        if self.config_path is None:
            raise CommandError("agent was not started from a config file")
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            raise CommandError(str(exc)) from exc
        restart = [name for name in ("device", "mqtt", "outbox") if getattr(new, name) != getattr(self.config, name)]
        try:
            slots = self._build_slots(new)
        except Exception as exc:
            raise CommandError(f"cannot start drivers: {exc}") from exc
        with self._slots_lock:
            self._stop_pollers(self.slots, 5.0)
            with self._rules_lock:
                self.rules = RuleEngine([r.to_rule() for r in new.rules])
            self.slots = slots
            self.config = new.model_copy(update={name: getattr(self.config, name) for name in restart})
            self._start_pollers(slots)
        logger.info(
            "config reloaded: %d driver(s), %d rule(s); restart needed for %s", len(slots), len(new.rules), restart
        )
        return {"drivers": len(slots), "rules": len(new.rules), "restart_needed": restart}

    def get_config(self) -> dict[str, Any]:
        """The running config with secrets redacted."""
        return redacted(self.config)


def _clean_metrics(prefix: str, raw: Any) -> dict[str, wire.MetricValue]:
    """Prefix metric names and drop what the wire contract would refuse (bad names, NaN)."""
    out: dict[str, wire.MetricValue] = {}
    for name, value in raw.items():
        full = prefix + name
        if _METRIC_RE.fullmatch(full) is None or (isinstance(value, float) and not math.isfinite(value)):
            logger.debug("dropping metric %r=%r", full, value)
            continue
        out[full] = value
    return out


def _rule_event(t: RuleTransition) -> MessageFactory:
    return lambda seq: wire.Event(
        seq=seq,
        ts=t.ts,
        event_id=t.event_id,
        type=t.rule.type,
        state=t.state,
        severity=t.rule.severity,
        message=t.rule.message,
        value=t.value,
        attrs={"metric": t.rule.metric, "rule": "threshold"},
    )
