"""The embedded series store: one SQLite file (WAL), so a first run needs no InfluxDB.

Schema: ``series_key`` interns (measurement, device, field) to an integer and
remembers the series' site/grid tags; ``sample`` holds (key, ts, value) in a
``WITHOUT ROWID`` table whose primary key makes a re-write of the same device
timestamp an idempotent ``INSERT OR REPLACE``. Writes go through one connection
in ``executemany`` batches; reads use a second connection so charts never wait
behind a long write.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from hub.series.base import SeriesPoint, SeriesRow, StoreError
from hub.series.lineproto import LineProtocolError, parse_line

logger = logging.getLogger(__name__)

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS series_key (
    id INTEGER PRIMARY KEY,
    measurement TEXT NOT NULL,
    device TEXT NOT NULL,
    field TEXT NOT NULL,
    site TEXT NOT NULL DEFAULT '',
    grid TEXT NOT NULL DEFAULT '',
    UNIQUE (measurement, device, field)
);
CREATE INDEX IF NOT EXISTS series_key_device ON series_key (device, field);
CREATE TABLE IF NOT EXISTS sample (
    key INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    value NOT NULL,
    PRIMARY KEY (key, ts)
) WITHOUT ROWID;
"""

_KeyId = tuple[str, str, str]


class EmbeddedStore:
    """SQLite-backed :class:`~hub.series.base.SeriesStore` (idempotent on measurement, device, field, ts)."""

    name = "embedded"
    prefers_lines = False

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._conn = self._connect()
        self._conn.executescript(SCHEMA)
        self._reader = self._connect()
        self._keys: dict[_KeyId, int] = {}
        self._key_tags: dict[int, tuple[str, str]] = {}
        for key_id, measurement, device, field, site, grid in self._conn.execute(
            "SELECT id, measurement, device, field, site, grid FROM series_key"
        ):
            self._keys[(measurement, device, field)] = key_id
            self._key_tags[key_id] = (site, grid)
        logger.info("embedded series store at %s (%d series)", self.path, len(self._keys))

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash; only an OS crash can lose the last commits,
        # and the writer's spool plus idempotent re-writes cover that window.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-32000")
        return conn

    def _key(self, measurement: str, device: str, field: str, site: str, grid: str) -> int:
        """Integer id of a series; inserts it (inside the caller's transaction) when new."""
        key_id = self._conn.execute(
            "INSERT INTO series_key (measurement, device, field, site, grid) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (measurement, device, field) DO UPDATE SET site = excluded.site, grid = excluded.grid"
            " RETURNING id",
            (measurement, device, field, site, grid),
        ).fetchone()[0]
        self._keys[(measurement, device, field)] = key_id
        self._key_tags[key_id] = (site, grid)
        return int(key_id)

    def write(self, points: Sequence[SeriesPoint]) -> None:
        """Insert-or-replace every field of every point in one transaction."""
        bad: list[int] = []
        reasons: list[str] = []
        for index, point in enumerate(points):
            for name, value in point.fields.items():
                kind = type(value)
                if (kind is float and not math.isfinite(value)) or kind not in (float, int, bool):
                    bad.append(index)
                    reasons.append(f"not_finite: field {name!r}={value!r} of point {index}")
                    break
            if not point.fields:
                bad.append(index)
                reasons.append(f"no_fields: point {index} has no fields")
        if bad:
            raise StoreError("; ".join(reasons[:5]), retryable=False, status=400, bad_lines=bad)
        keys = self._keys
        key_tags = self._key_tags
        try:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    rows: list[tuple[int, int, float | int]] = []
                    append = rows.append
                    for point in points:
                        tags = point.tags
                        device = tags.get("device", "")
                        site = tags.get("site", "")
                        grid = tags.get("grid", "")
                        measurement = point.measurement
                        ts = point.ts_ms
                        for name, value in point.fields.items():
                            key_id = keys.get((measurement, device, name))
                            if key_id is None or key_tags[key_id] != (site, grid):
                                key_id = self._key(measurement, device, name, site, grid)
                            append((key_id, ts, value))
                    rows.sort()  # B-tree locality: each (key, ts) leaf page is touched once per batch
                    self._conn.executemany("INSERT OR REPLACE INTO sample (key, ts, value) VALUES (?, ?, ?)", rows)
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    self._reload_keys()
                    raise
        except sqlite3.OperationalError as exc:
            # "database is locked" / disk I/O: worth retrying, the writer spools meanwhile.
            raise StoreError(f"sqlite: {exc}", retryable=True) from exc
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"sqlite: {exc}", retryable=False, status=500) from exc

    def _reload_keys(self) -> None:
        self._keys.clear()
        self._key_tags.clear()
        for key_id, measurement, device, field, site, grid in self._conn.execute(
            "SELECT id, measurement, device, field, site, grid FROM series_key"
        ):
            self._keys[(measurement, device, field)] = key_id
            self._key_tags[key_id] = (site, grid)

    def write_lines(self, lines: Sequence[str]) -> None:
        """Parse line-protocol lines (as spooled by the writer) and store them."""
        points: list[SeriesPoint] = []
        for index, line in enumerate(lines):
            try:
                measurement, tags, fields, ts_ms = parse_line(line)
            except LineProtocolError as exc:
                raise StoreError(f"line {index}: {exc}", retryable=False, status=400, bad_lines=[index]) from exc
            if any(type(v) is str for v in fields.values()):
                raise StoreError(
                    f"line {index}: string fields are not stored", retryable=False, status=400, bad_lines=[index]
                )
            points.append(SeriesPoint(measurement, tags, fields, ts_ms))  # type: ignore[arg-type]
        self.write(points)

    def query(
        self, *, device: str, metric: str, start_ms: int, end_ms: int, every_s: int, measurement: str | None = None
    ) -> list[SeriesRow]:
        """Mean of ``metric`` per ``every_s`` bucket (aligned to the epoch, like InfluxQL) in [start, end)."""
        if every_s <= 0:
            raise ValueError(f"every_s must be positive, got {every_s}")
        every_ms = int(every_s) * 1000
        sql = (
            "SELECT s.ts - (s.ts % :every) AS bucket, avg(s.value) FROM sample s"
            " JOIN series_key k ON k.id = s.key"
            " WHERE k.device = :device AND k.field = :field AND s.ts >= :start AND s.ts < :end"
        )
        params: dict[str, object] = {
            "every": every_ms,
            "device": device,
            "field": metric,
            "start": start_ms,
            "end": end_ms,
        }
        if measurement is not None:
            sql += " AND k.measurement = :measurement"
            params["measurement"] = measurement
        sql += " GROUP BY bucket ORDER BY bucket"
        with self._read_lock:
            rows = self._reader.execute(sql, params).fetchall()
        return [SeriesRow(int(ts), None if value is None else float(value)) for ts, value in rows]

    def count(self, measurement: str, *, device: str | None = None, site: str | None = None) -> int:
        """Distinct (device, timestamp) points stored for ``measurement``."""
        sql = (
            "SELECT count(*) FROM (SELECT DISTINCT k.device, s.ts FROM sample s JOIN series_key k ON k.id = s.key"
            " WHERE k.measurement = ?"
        )
        params: list[object] = [measurement]
        if device is not None:
            sql += " AND k.device = ?"
            params.append(device)
        if site is not None:
            sql += " AND k.site = ?"
            params.append(site)
        with self._read_lock:
            return int(self._reader.execute(sql + ")", params).fetchone()[0])

    def close(self) -> None:
        """Checkpoint the WAL and close both connections."""
        with self._lock, self._read_lock:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                logger.warning("embedded store: WAL checkpoint failed at close", exc_info=True)
            self._reader.close()
            self._conn.close()
