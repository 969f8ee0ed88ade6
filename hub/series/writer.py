"""The durable batching writer between ingest and a series store.

``submit`` only queues (no I/O; over ``max_pending_points`` it waits briefly, then
spills to the spool); one writer thread batches by size and time. Retryable
failures (429 + Retry-After, 5xx, connection errors) send the batch and every
later one, in order, to the durable disk spool while the thread backs off; the
spool is replayed when the store answers. 400/422 batches are bisected: bad lines
go to ``on_bad_line(line, reason)``, the rest is written. Nothing is dropped
without an error log and an ``on_alert`` call. When the spool cannot be written
(disk full), the batch stays in memory and unacknowledged, the writer takes no new
batch and ``submit`` waits instead of spilling, until the store or the disk takes it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Final, TypeVar, cast

from hub.series.base import CONFIG_STATUSES, SeriesPoint, SeriesStore, StoreError
from hub.series.delivery import Backoff, WriterStats, log_alert, log_bad_line, render_point, write_bisecting
from hub.series.lineproto import LineProtocolError, describe_point, encode_points
from hub.series.spool import DiskSpool, Dropped

logger = logging.getLogger(__name__)

T = TypeVar("T")
#: What the queue holds: points, or (only when the store takes lines) lines ingest encoded itself.
Queued = SeriesPoint | str

DEFAULT_SPOOL_MAX_BYTES: Final = 512 * 1024 * 1024
SPOOL_HIGH_RATIO: Final = 0.8
SPOOL_REARM_RATIO: Final = 0.5
LATENCY_SAMPLES: Final = 2048
#: A replay pass yields after this long so fresh points keep moving to the spool.
REPLAY_SLICE_S: Final = 0.5
#: Batches the spool could not take (disk full) are offered to the store or the spool again this often.
UNSPOOLED_RETRY_S: Final = 1.0


class SeriesWriter:
    """Batches points for a :class:`SeriesStore` on its own thread, spooling to disk while it is down."""

    def __init__(
        self,
        store: SeriesStore,
        spool_dir: Path,
        *,
        batch_points: int = 5000,
        flush_interval_s: float = 0.2,
        spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
        on_bad_line: Callable[[str, str], None] = log_bad_line,
        on_alert: Callable[[str, str], None] = log_alert,
        on_latency: Callable[[float], None] | None = None,
        base_backoff_s: float = 0.2,
        max_backoff_s: float = 10.0,
        max_pending_points: int | None = None,
        spill_after_s: float = 0.5,
        ints_as_floats: bool = True,
    ) -> None:
        self.store = store
        self.batch_points = batch_points
        self.flush_interval_s = flush_interval_s
        self.on_bad_line = on_bad_line
        self.on_alert = on_alert
        self.on_latency = on_latency
        #: Over this many queued points submit waits (backpressure) up to ``spill_after_s`` for the writer,
        #: then spills straight to the spool: memory stays bounded and ingest is never held for long.
        self.max_pending_points = max_pending_points or max(100_000, 20 * batch_points)
        self.spill_after_s = spill_after_s
        #: JSON gives 20 and 20.5 different types; writing every non-bool number as a float keeps a field's
        #: type stable in InfluxDB (a later int would be a 400 "field type conflict").
        self.ints_as_floats = ints_as_floats
        self._spool = DiskSpool(Path(spool_dir), spool_max_bytes)
        self._spool_lock = threading.Lock()  # innermost lock: never take self._cond while holding it
        self._spill_warned = 0.0
        self._spill_mode = False  # set by a spill, cleared when the writer drains the queue below half the cap
        self._lines_mode = bool(getattr(store, "prefers_lines", False))
        self._cond = threading.Condition()
        self._chunks: deque[Sequence[Queued]] = deque()
        self._tickets: deque[int] = deque()  # submit ticket of each queued chunk
        self._last_ticket = 0
        self._inflight_ticket = 0  # first ticket of the batch being written (0: none)
        self._spilling: set[int] = set()
        self._pending = 0
        self._oldest = 0.0
        self._inflight = False
        self._flush_requests = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._backoff = Backoff(base_backoff_s, max_backoff_s)
        self._down_since: float | None = None
        self._spool_alerted = False
        #: Batches neither written nor spooled (the spool's disk is full), with the ticket each one pins:
        #: held in memory, unacknowledged, and offered to the store or the spool every UNSPOOLED_RETRY_S.
        self._unspooled: deque[tuple[int, list[str]]] = deque()
        self._unspooled_retry_at = 0.0
        self._spool_failing = False  # set when the spool refused a batch, cleared when none is held
        self._spool_failed_logged = 0.0
        self._latency: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self._stats = WriterStats()
        self._update_gauges()
        #: Called (on the writer's thread, or the submitter's after a spill) when ``durable_through`` may
        #: have advanced; ingest uses it to send the acknowledgements it holds. Must be quick.
        self.on_durable: Callable[[], None] | None = None

    # -- ingest side --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (spooled batches from a previous run are replayed first)."""
        if self._thread is not None:
            raise RuntimeError("SeriesWriter already started")
        self._thread = threading.Thread(target=self._run, name=f"series-writer-{self.store.name}", daemon=True)
        self._thread.start()

    @property
    def takes_lines(self) -> bool:
        """True when :meth:`submit` also takes lines already encoded (the store writes line protocol)."""
        return self._lines_mode

    def submit(self, points: Sequence[Queued]) -> int:
        """Queue points (thread-safe, no I/O; do not mutate them afterwards); return a ticket for
        :meth:`durable_through`. Items may be lines of line protocol already encoded (``str``,
        checked by the encoder) only when :attr:`takes_lines` is true."""
        with self._cond:
            if self._stopping:
                raise RuntimeError("SeriesWriter is stopped")
            if not points:
                return self._last_ticket
            over = self._pending + len(points) > self.max_pending_points and self._pending
            if over and not self._spill_mode:  # once the writer is known stuck, spill without waiting
                deadline = time.monotonic() + self.spill_after_s
                while self._pending + len(points) > self.max_pending_points and self._pending:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            while self._spool_failing and self._pending + len(points) > self.max_pending_points and self._pending:
                # No disk to spill to: hold the caller, and so the source, until the writer catches up.
                if self._stopping:
                    raise RuntimeError("SeriesWriter is stopped")
                self._cond.wait(1.0)
            spill = self._pending + len(points) > self.max_pending_points and self._pending > 0
            self._last_ticket += 1
            ticket = self._last_ticket
            if not spill:
                first = not self._pending
                if first:
                    self._oldest = time.monotonic()
                self._chunks.append(points)
                self._tickets.append(ticket)
                self._pending += len(points)
                if first or self._pending >= self.batch_points:
                    self._cond.notify_all()  # first point: the writer re-arms its flush_interval timer
                return ticket
            self._spilling.add(ticket)
            self._spill_mode = True
        # The writer thread is stuck on a slow store: keep memory bounded, make the points durable now.
        now = time.monotonic()
        if now - self._spill_warned > 10.0:
            self._spill_warned = now
            logger.warning(
                "series store %s is slow: %d points queued; spilling to the spool", self.store.name, self._pending
            )
        self._spool_or_hold(ticket, self._encode(points))
        with self._cond:
            self._spilling.discard(ticket)
            self._cond.notify_all()
        self._durable()
        return ticket

    def _durable(self) -> None:
        callback = self.on_durable
        if callback is not None:
            try:
                callback()
            except Exception:  # a listener bug must not stop the writer
                logger.exception("series writer: on_durable callback failed")

    def durable_through(self) -> int:
        """The highest ticket N such that every submit with a ticket <= N is written, spooled (fsynced) or
        reported; ingest may acknowledge its source up to there (a hub kill -9 loses nothing older)."""
        with self._cond:
            waiting = list(self._spilling)
            if self._tickets:
                waiting.append(self._tickets[0])
            if self._inflight_ticket:
                waiting.append(self._inflight_ticket)
            waiting.extend(ticket for ticket, _ in self._unspooled)
            return min(waiting) - 1 if waiting else self._last_ticket

    def flush(self, timeout: float = 10.0) -> bool:
        """Write everything queued and spooled; False if the store did not take it all within ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flush_requests += 1
            self._cond.notify_all()
            try:
                while self._pending or self._inflight or self._stats.spooled_batches or self._unspooled:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._thread is None or not self._thread.is_alive():
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._flush_requests -= 1

    def stop(self, flush_timeout: float = 5.0) -> None:
        """Flush (best effort), spool whatever the store did not take, and stop the thread."""
        if self._thread is not None and self._thread.is_alive():
            self.flush(flush_timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        self._spool.close()

    @property
    def stats(self) -> WriterStats:
        """A consistent snapshot of the counters."""
        with self._cond:
            snap = replace(self._stats, pending_points=self._pending)
        snap.write_latency_ms = list(self._latency)
        return snap

    # -- writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        logger.info("series writer started (store %s, batch %d)", self.store.name, self.batch_points)
        while True:
            batch: list[Queued] = []
            with self._cond:
                while True:
                    now = time.monotonic()
                    flushing = self._flush_requests > 0 or self._stopping
                    # While batches wait in memory for the disk, take no more (submit holds its callers).
                    if (
                        self._pending
                        and (not self._unspooled or self._stopping)
                        and (
                            self._pending >= self.batch_points
                            or flushing
                            or now - self._oldest >= self.flush_interval_s
                        )
                    ):
                        batch = self._take()
                        break
                    replay_due = self._stats.spooled_batches > 0 and now >= self._backoff.retry_at
                    unspooled_due = bool(self._unspooled) and now >= self._unspooled_retry_at
                    if self._stopping or replay_due or unspooled_due:
                        break
                    wait = 1.0
                    if self._pending and not self._unspooled:
                        wait = min(wait, self.flush_interval_s - (now - self._oldest))
                    if self._stats.spooled_batches:
                        wait = min(wait, self._backoff.retry_at - now)
                    if self._unspooled:
                        wait = min(wait, self._unspooled_retry_at - now)
                    self._cond.wait(max(wait, 0.001))
                self._inflight = True
            try:
                if self._unspooled and time.monotonic() >= self._unspooled_retry_at:
                    self._retry_unspooled()
                if batch:
                    self._handle(batch)
                if not self._stopping and self._stats.spooled_batches and not self._backoff.waiting():
                    self._replay()
            except Exception:  # loop boundary: never let the writer thread die
                logger.exception("series writer: unexpected error; the batch is kept in memory, unacknowledged")
                with self._cond:
                    self._stats.errors += 1
                if batch:  # (rewriting what was already written is idempotent)
                    self._keep_after_error(batch)
            with self._cond:
                self._inflight = False
                self._inflight_ticket = 0
                self._update_gauges()
                self._cond.notify_all()
                stop = self._stopping and not self._pending
            self._durable()
            if stop:
                break
        if self._unspooled:
            logger.error(
                "series writer stopped with %d lines neither written nor spooled (the spool's disk is full); "
                "they were not acknowledged, so a persistent-session broker delivers them again",
                sum(len(lines) for _, lines in self._unspooled),
            )
        logger.info("series writer stopped (%d batches left in the spool)", self._stats.spooled_batches)

    def _take(self) -> list[Queued]:
        """Pop up to ``batch_points`` points from the queue (caller holds the lock)."""
        batch: list[Queued] = []
        self._inflight_ticket = self._tickets[0] if self._tickets else 0
        while self._chunks and len(batch) < self.batch_points:
            chunk = self._chunks.popleft()
            ticket = self._tickets.popleft()
            room = self.batch_points - len(batch)
            if len(chunk) > room:
                batch.extend(chunk[:room])
                self._chunks.appendleft(chunk[room:])
                self._tickets.appendleft(ticket)
            else:
                batch.extend(chunk)
        self._pending -= len(batch)
        if self._pending < self.max_pending_points // 2:
            self._spill_mode = False
        # Points left behind keep the old timestamp: they have waited at least that long already.
        self._cond.notify_all()  # submitters waiting on backpressure
        return batch

    def _encode(self, points: Sequence[Queued]) -> list[str]:
        def bad(point: SeriesPoint, exc: LineProtocolError) -> None:
            self._dead(describe_point(point), exc.reason + ": " + exc.message)

        return encode_points(points, bad, ints_as_floats=self.ints_as_floats)

    def _handle(self, points: list[Queued]) -> None:
        """Write one fresh batch, or spool it behind older batches while the store is down."""
        lines = self._encode(points) if self._lines_mode else None
        backoff = self._backoff
        ticket = self._inflight_ticket
        if self._stats.spooled_batches or backoff.waiting() or (self._stopping and backoff.failures):
            self._spool_or_hold(ticket, lines if lines is not None else self._encode(points))
            return
        if lines is not None:
            leftover_lines, error = self._write(lines, self.store.write_lines, str)
            if error is not None:
                self._spool_or_hold(ticket, leftover_lines)
                self._failed(error)
            return
        leftover, error = self._write(cast(list[SeriesPoint], points), self.store.write, render_point)
        if error is not None:
            self._spool_or_hold(ticket, self._encode(leftover))
            self._failed(error)

    def _replay(self) -> None:
        """Write spooled batches in order until the spool is empty, the store fails or the slice ends."""
        started = time.monotonic()
        replayed = 0
        while time.monotonic() - started < REPLAY_SLICE_S:
            with self._spool_lock:
                lines = self._spool.peek()
            if lines is None:
                break
            _, error = self._write(lines, self.store.write_lines, str)
            if error is not None:
                self._failed(error)  # the batch stays at the head; good lines already written are idempotent
                break
            with self._spool_lock:
                self._spool.commit()
            replayed += 1
            with self._cond:
                self._update_gauges()
        if replayed:
            logger.info("series spool: replayed %d batches, %d left", replayed, self._stats.spooled_batches)

    def _write(
        self, items: list[T], write: Callable[[list[T]], None], render: Callable[[T], str]
    ) -> tuple[list[T], StoreError | None]:
        """Write with bad-line bisection; return (unwritten items, error) on a retryable failure."""

        def dead(item: T, reason: str) -> None:
            self._dead(render(item), reason)

        def error(exc: StoreError) -> None:
            with self._cond:
                self._stats.errors += 1

        return write_bisecting(items, write, dead, self._written, error)

    def _written(self, count: int, elapsed_ms: float) -> None:
        self._latency.append(elapsed_ms)
        if self.on_latency is not None:
            self.on_latency(elapsed_ms / 1000.0)
        with self._cond:
            self._stats.written_points += count
            self._stats.batches += 1
            self._stats.last_write_ms = int(time.time() * 1000)
        if self._down_since is not None:
            logger.warning(
                "series store %s is back after %.1fs; %d spooled batches to replay",
                self.store.name,
                time.monotonic() - self._down_since,
                self._stats.spooled_batches,
            )
            self._down_since = None
        self._backoff.succeeded()

    def _failed(self, error: StoreError) -> None:
        """Schedule the next attempt: Retry-After when given, else exponential backoff with full jitter."""
        with self._cond:
            self._stats.retries += 1
        delay = self._backoff.failed(error.retry_after_s)
        if self._down_since is None:
            self._down_since = time.monotonic()
            logger.warning("series store %s unavailable (%s); spooling to disk", self.store.name, error)
            self._alert("store_down", f"{self.store.name}: {error}")
        if error.status in CONFIG_STATUSES:
            logger.error(
                "series store %s refuses writes (HTTP %s: %s); check url/db/credentials",
                self.store.name,
                error.status,
                error,
            )
            self._alert("store_rejected", f"{self.store.name}: HTTP {error.status}: {error}")
        logger.debug("series store retry in %.2fs (failure %d)", delay, self._backoff.failures)

    def _spool_or_hold(self, ticket: int, lines: list[str]) -> None:
        """Spool a batch; if the spool cannot take it, keep it in memory pinning ``ticket``."""
        if lines and not self._to_spool(lines):
            self._hold(ticket, lines)

    def _hold(self, ticket: int, lines: list[str]) -> None:
        """Keep a batch in memory, pinning ``ticket``, and try it again in UNSPOOLED_RETRY_S."""
        with self._cond:
            self._unspooled.append((ticket, lines))
            self._unspooled_retry_at = time.monotonic() + UNSPOOLED_RETRY_S
            self._update_gauges()

    def _keep_after_error(self, batch: list[Queued]) -> None:
        try:
            lines = self._encode(batch)
        except Exception:
            logger.exception("series writer: %d points LOST (could not be encoded after the error)", len(batch))
            return
        self._hold(self._inflight_ticket, lines)

    def _retry_unspooled(self) -> None:
        """Offer the batches held in memory to the store (when it is not backing off) or to the spool."""
        while True:
            with self._cond:
                if not self._unspooled:
                    break
                ticket, lines = self._unspooled[0]
            if not self._stats.spooled_batches and not self._backoff.waiting():
                lines, error = self._write(lines, self.store.write_lines, str)
                if error is not None:
                    self._failed(error)
            if lines and not self._to_spool(lines, held=True):
                with self._cond:
                    self._unspooled[0] = (ticket, lines)
                    self._unspooled_retry_at = time.monotonic() + UNSPOOLED_RETRY_S
                return
            with self._cond:
                self._unspooled.popleft()
                self._update_gauges()
                self._cond.notify_all()
        with self._cond:
            recovered, self._spool_failing = self._spool_failing, False
            self._cond.notify_all()
        if recovered:
            logger.warning("series writer: the batches held in memory are written or spooled; the spool works again")

    def _to_spool(self, lines: list[str], *, held: bool = False) -> bool:
        """Append a batch to the spool; False (logged and alerted) when the spool cannot be written.
        ``held``: the batch is already among the ones held in memory (a retry)."""
        if not lines:
            return True
        try:
            with self._spool_lock:
                dropped = self._spool.append(lines)
                pending_bytes, pending_batches = self._spool.pending_bytes, self._spool.pending_batches
        except OSError as exc:  # SpoolWriteError, or making room failed (a segment that cannot be removed)
            dropped = getattr(exc, "dropped", None)
            if dropped is not None:  # the bound made room before the write failed: still reported
                self._report_drop(dropped)
            self._spool_failed(exc, 0 if held else len(lines))
            return False
        if dropped is not None:
            self._report_drop(dropped)
        ratio = pending_bytes / self._spool.max_bytes
        if ratio >= SPOOL_HIGH_RATIO and not self._spool_alerted:
            self._spool_alerted = True
            message = f"spool at {ratio:.0%} of {self._spool.max_bytes} bytes ({pending_batches} batches)"
            logger.error("series %s; the store %s has been down too long", message, self.store.name)
            self._alert("spool_high", message)
        elif ratio < SPOOL_REARM_RATIO:
            self._spool_alerted = False
        with self._cond:
            self._update_gauges()
        return True

    def _spool_failed(self, exc: OSError, new_lines: int) -> None:
        now = time.monotonic()
        with self._cond:
            first, self._spool_failing = not self._spool_failing, True
            held = new_lines + self._stats.unspooled_lines
        if first or now - self._spool_failed_logged >= 10.0:
            self._spool_failed_logged = now
            logger.error(
                "%s; holding %d lines in memory, unacknowledged, until the store or the disk takes them "
                "(no new batches meanwhile: ingest waits, the broker keeps the rest)",
                exc,
                held,
            )
        if first:
            self._alert("spool_failed", str(exc))

    def _report_drop(self, dropped: Dropped) -> None:
        message = f"spool full: dropped {dropped.batches} batches, {dropped.lines} lines, {dropped.bytes} bytes"
        with self._cond:
            self._stats.dropped_lines += dropped.lines
        self._alert("spool_dropped", message)

    def _alert(self, kind: str, message: str) -> None:
        try:
            self.on_alert(kind, message)
        except Exception:  # a callback must not kill the writer
            logger.exception("series writer: on_alert callback failed")

    def _dead(self, line: str, reason: str) -> None:
        with self._cond:
            self._stats.dead_lines += 1
        try:
            self.on_bad_line(line, reason)
        except Exception:  # a callback must not kill the writer
            logger.exception("series writer: on_bad_line callback failed")

    def _update_gauges(self) -> None:
        """Copy the spool's gauges into the stats (caller holds the lock)."""
        self._stats.unspooled_lines = sum(len(lines) for _, lines in self._unspooled)
        with self._spool_lock:
            self._stats.spooled_bytes = self._spool.pending_bytes
            self._stats.spooled_batches = self._spool.pending_batches
            self._stats.spooled_lines = self._spool.pending_lines
