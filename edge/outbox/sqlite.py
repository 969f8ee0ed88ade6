"""SqliteOutbox: the durable outbox, one SQLite file (WAL) per device.

Durability: a batch holding any event-class message commits with
``synchronous=FULL`` (fsync of the WAL on commit, survives power loss); a
telemetry-only batch and acks commit with ``synchronous=NORMAL`` (survives a
``kill -9`` of the agent; a power cut may lose the last telemetry or replay an
acked message, which the hub deduplicates by seq). ``next_seq`` and the session
``epoch`` live in the same file and are written in the same transactions, so a
seq is never reused, even after eviction or deletion.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from edge import wire
from edge.outbox.base import (
    DEFAULT_COMMAND_MEMORY_MS,
    MAX_REPLAY_ITEMS,
    EvictionLog,
    GapRuns,
    MessageFactory,
    OutboxError,
    OutboxItem,
    OutboxStats,
    gap_payload,
    is_event_class,
    seq_runs,
)

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    is_event INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    size INTEGER NOT NULL,
    sent_ms INTEGER,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS items_sent ON items (sent_ms, seq) WHERE sent_ms IS NOT NULL;
CREATE INDEX IF NOT EXISTS items_evictable ON items (seq) WHERE sent_ms IS NULL AND is_event = 0;
CREATE TABLE IF NOT EXISTS commands (id TEXT PRIMARY KEY, ts INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS gaps (first INTEGER PRIMARY KEY, last INTEGER NOT NULL, ts INTEGER NOT NULL);
"""

_COLS = "seq, channel, payload, created_ms, is_event"


def _item(row: tuple[int, str, bytes, int, int]) -> OutboxItem:
    return OutboxItem(row[0], wire.Channel(row[1]), bytes(row[2]), row[3], bool(row[4]))


class SqliteOutbox:
    """A durable :class:`~edge.outbox.base.Outbox` in one SQLite file."""

    def __init__(
        self,
        path: str | Path,
        max_bytes: int = 64 * 1024 * 1024,
        replay_hours: float = 24.0,
        replay_max_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.replay_ms = int(replay_hours * 3600 * 1000)
        self.replay_max_bytes = replay_max_bytes
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot open outbox {self.path}: {exc}") from exc
        self._sync = "FULL"
        self._meta = dict(self._db.execute("SELECT key, value FROM meta"))
        self._next_seq = int(self._meta.get("next_seq", 1))
        self._epoch = int(self._meta.get("epoch", 0))
        self._evicted = int(self._meta.get("evicted_total", 0))
        row = self._db.execute("SELECT count(*), coalesce(sum(size), 0) FROM items WHERE sent_ms IS NULL").fetchone()
        self._pending_count, self._pending_bytes = int(row[0]), int(row[1])
        row = self._db.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM items WHERE sent_ms IS NOT NULL"
        ).fetchone()
        self._sent_count, self._sent_bytes = int(row[0]), int(row[1])
        self._inflight: dict[int, int] = {}  # seq -> size
        self._cursor = 0
        self._eviction_log = EvictionLog()
        self._gaps = GapRuns(self._db.execute("SELECT first, last, ts FROM gaps ORDER BY first").fetchall())

    # ------------------------------------------------------------ transactions

    def _begin(self, sync: str) -> None:
        if sync != self._sync:
            self._db.execute(f"PRAGMA synchronous={sync}")
            self._sync = sync
        self._db.execute("BEGIN IMMEDIATE")

    def _set_meta(self, **values: int) -> None:
        self._db.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            list(values.items()),
        )

    def begin_session(self) -> int:
        """Increment and persist the session epoch."""
        with self._lock:
            self._begin("FULL")
            self._epoch += 1
            self._set_meta(epoch=self._epoch)
            self._db.execute("COMMIT")
            return self._epoch

    @property
    def epoch(self) -> int:
        """The current session epoch."""
        return self._epoch

    def enqueue(self, factories: Sequence[MessageFactory], now_ms: int) -> list[int]:
        """Store messages with fresh seqs in one transaction, evicting oldest telemetry when full."""
        with self._lock:
            built = []
            seq = self._next_seq
            for factory in factories:
                message = factory(seq)
                built.append((seq, wire.channel_of(message).value, is_event_class(message), wire.encode(message)))
                seq += 1
            saved = (self._next_seq, self._pending_bytes, self._pending_count, self._evicted, list(self._gaps.ranges))
            try:
                self._begin("FULL" if any(b[2] for b in built) else "NORMAL")
                try:
                    lost, refused = self._store(built, now_ms)
                    if lost:
                        self._record_gaps(lost, now_ms, refused)
                    self._set_meta(next_seq=self._next_seq, evicted_total=self._evicted)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    # the transaction is undone: undo the counters too (seqs are simply not used)
                    self._next_seq, self._pending_bytes, self._pending_count, self._evicted, ranges = saved
                    self._gaps.ranges = ranges
                    raise
            except sqlite3.Error as exc:
                raise OutboxError(f"outbox write failed: {exc}") from exc
            return [b[0] for b in built]

    def _store(self, built: list[tuple[int, str, bool, bytes]], now_ms: int) -> tuple[list[int], bool]:
        lost: list[int] = []
        refused = False
        rows: list[tuple[int, str, int, int, int, bytes]] = []
        for seq, channel, is_event, payload in built:
            self._next_seq = seq + 1
            size = len(payload)
            if not is_event and self._pending_bytes + size > self.max_bytes:
                if rows:  # flush so eviction sees this batch too
                    self._db.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, NULL, ?)", rows)
                    rows = []
                lost.extend(self._evict(self._pending_bytes + size - self.max_bytes))
                if self._pending_bytes + size > self.max_bytes:
                    lost.append(seq)
                    refused = True
                    continue
            rows.append((seq, channel, int(is_event), now_ms, size, payload))
            self._pending_bytes += size
            self._pending_count += 1
        self._db.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, NULL, ?)", rows)
        return lost, refused

    def _evict(self, need: int) -> list[int]:
        victims: list[int] = []
        freed = 0
        limit = len(self._inflight) + 64
        after = 0
        while freed < need:
            rows = self._db.execute(
                "SELECT seq, size FROM items WHERE sent_ms IS NULL AND is_event = 0 AND seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
            if not rows:
                break
            for seq, size in rows:
                after = seq
                if seq in self._inflight:
                    continue
                victims.append(seq)
                freed += size
                if freed >= need:
                    break
        self._db.executemany("DELETE FROM items WHERE seq = ?", [(s,) for s in victims])
        self._pending_bytes -= freed
        self._pending_count -= len(victims)
        return victims

    def _record_gaps(self, lost: list[int], now_ms: int, refused: bool) -> None:
        runs = seq_runs(lost)
        self._eviction_log.note(runs, refused)
        self._evicted += len(lost)
        self._gaps.add(runs, now_ms)
        self._db.execute("DELETE FROM gaps")
        self._db.executemany("INSERT INTO gaps (first, last, ts) VALUES (?, ?, ?)", self._gaps.ranges)

    def _materialize_gaps(self) -> None:
        """Turn open evicted ranges into gap notice items (event class, durable)."""
        self._begin("FULL")
        try:
            for first, last, ts in self._gaps.ranges:
                seq = self._next_seq
                payload = gap_payload(seq, ts, first, last)
                self._db.execute(
                    "INSERT INTO items VALUES (?, ?, 1, ?, ?, NULL, ?)",
                    (seq, wire.Channel.GAP.value, ts, len(payload), payload),
                )
                self._next_seq += 1
                self._pending_bytes += len(payload)
                self._pending_count += 1
            self._db.execute("DELETE FROM gaps")
            self._set_meta(next_seq=self._next_seq)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._gaps.take()

    # ---------------------------------------------------------------- delivery

    def reserve(self, limit: int) -> list[OutboxItem]:
        """Mark up to ``limit`` pending items in flight, oldest first."""
        with self._lock:
            items = self._next_pending(limit)
            if self._gaps.due(len(items) < limit):
                self._materialize_gaps()
                items = self._next_pending(limit)
            if items:
                self._cursor = items[-1].seq
                self._inflight.update((i.seq, i.size) for i in items)
            return items

    def _next_pending(self, limit: int) -> list[OutboxItem]:
        rows = self._db.execute(
            f"SELECT {_COLS} FROM items WHERE sent_ms IS NULL AND seq > ? ORDER BY seq LIMIT ?",
            (self._cursor, limit),
        ).fetchall()
        return [_item(r) for r in rows]

    def ack(self, seqs: Iterable[int], now_ms: int) -> None:
        """Move acknowledged items to the replay window (and trim it to its byte bound)."""
        with self._lock:
            done = [(s, self._inflight.pop(s)) for s in seqs if s in self._inflight]
            if not done:
                return
            try:
                self._begin("NORMAL")
                self._db.executemany(
                    "UPDATE items SET sent_ms = ? WHERE seq = ? AND sent_ms IS NULL", [(now_ms, s) for s, _ in done]
                )
                size = sum(n for _, n in done)
                self._pending_count -= len(done)
                self._pending_bytes -= size
                self._sent_count += len(done)
                self._sent_bytes += size
                self._trim_sent(None)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise OutboxError(f"outbox ack failed: {exc}") from exc

    def release(self) -> None:
        """Return in-flight items to pending."""
        with self._lock:
            self._inflight.clear()
            self._cursor = 0

    def replay(self, first: int, last: int) -> list[OutboxItem]:
        """Sent items in ``first..last`` still kept."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLS} FROM items WHERE seq BETWEEN ? AND ? AND sent_ms IS NOT NULL ORDER BY seq LIMIT ?",
                (first, last, MAX_REPLAY_ITEMS),
            ).fetchall()
            return [_item(r) for r in rows]

    def _trim_sent(self, now_ms: int | None) -> int:
        dropped = 0
        if now_ms is not None:
            cur = self._db.execute(
                "DELETE FROM items WHERE sent_ms IS NOT NULL AND sent_ms < ? RETURNING size", (now_ms - self.replay_ms,)
            )
            sizes = [r[0] for r in cur.fetchall()]
            dropped += len(sizes)
            self._sent_count -= len(sizes)
            self._sent_bytes -= sum(sizes)
        while self._sent_bytes > self.replay_max_bytes and self._sent_count > 0:
            rows = self._db.execute(
                "SELECT seq, size FROM items WHERE sent_ms IS NOT NULL ORDER BY sent_ms, seq LIMIT 512"
            ).fetchall()
            victims = []
            for seq, size in rows:
                if self._sent_bytes <= self.replay_max_bytes:
                    break
                victims.append((seq,))
                self._sent_bytes -= size
                self._sent_count -= 1
            self._db.executemany("DELETE FROM items WHERE seq = ?", victims)
            dropped += len(victims)
        return dropped

    def prune(self, now_ms: int) -> int:
        """Drop sent items outside the replay window."""
        with self._lock:
            self._begin("NORMAL")
            dropped = self._trim_sent(now_ms)
            self._db.execute("COMMIT")
            return dropped

    def remember_command(self, command_id: str, now_ms: int) -> bool:
        """Record ``command_id`` durably; False if it was seen within the last day."""
        with self._lock:
            self._begin("FULL")
            self._db.execute("DELETE FROM commands WHERE ts < ?", (now_ms - DEFAULT_COMMAND_MEMORY_MS,))
            cur = self._db.execute("INSERT OR IGNORE INTO commands (id, ts) VALUES (?, ?)", (command_id, now_ms))
            self._db.execute("COMMIT")
            return cur.rowcount == 1

    def stats(self) -> OutboxStats:
        """Current counters."""
        with self._lock:
            return OutboxStats(
                pending=self._pending_count,
                pending_bytes=self._pending_bytes,
                inflight=len(self._inflight),
                sent=self._sent_count,
                sent_bytes=self._sent_bytes,
                evicted_total=self._evicted,
                last_seq=self._next_seq - 1,
                epoch=self._epoch,
            )

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()


def read_stats(path: str | Path) -> OutboxStats:
    """Counters of an outbox file, read without changing it (for ``gridsentinel edge status``)."""
    try:
        db = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
        try:
            meta = dict(db.execute("SELECT key, value FROM meta"))
            pend = db.execute("SELECT count(*), coalesce(sum(size), 0) FROM items WHERE sent_ms IS NULL").fetchone()
            sent = db.execute("SELECT count(*), coalesce(sum(size), 0) FROM items WHERE sent_ms IS NOT NULL").fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise OutboxError(f"cannot read outbox {path}: {exc}") from exc
    return OutboxStats(
        pending=int(pend[0]),
        pending_bytes=int(pend[1]),
        inflight=0,
        sent=int(sent[0]),
        sent_bytes=int(sent[1]),
        evicted_total=int(meta.get("evicted_total", 0)),
        last_seq=int(meta.get("next_seq", 1)) - 1,
        epoch=int(meta.get("epoch", 0)),
    )
