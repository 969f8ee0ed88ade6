"""Per-device seq watermark: the seqs the hub has made safe, and so may acknowledge to the broker.

Ingest acknowledges a chunk of messages only once the series writer holds its points durably
(:meth:`hub.series.writer.SeriesWriter.durable_through`); after a ``kill -9`` the broker delivers
every message not acknowledged again to the persistent session. The hub's seq state (dedup and
gaps) must then resume exactly where the acknowledgements stopped:

- never ahead of them: a redelivered message would look like a duplicate and be dropped -- lost;
- not behind them either: the seqs in between would look like a gap, and a device that cannot
  resend would be declared lost although its points are stored.

The same holds for the open gaps. A message that fills a gap but is not yet durable must leave
the gap open after a restart (the broker delivers it again, and it must not look like a
duplicate); a fill made durable must not come back as a gap (the device would be asked to resend,
and one that cannot would get a false data-loss record). So the journal also holds each device's
*safe gaps*: the open gaps at or below its safe seq, plus the seqs of fills not yet durable.

So the seqs a chunk advanced become *safe* together with the chunk's points (the writer's
ticket). :meth:`SeqWatermark.release` records them in the device records (``safe_seq``, what the
registry writes to the state DB as ``last_seq``) and in a small journal file, replaced atomically,
before the link sends the PUBACKs. At start the journal's seqs take precedence over the DB's
(the DB is written about once a second). The journal is not fsynced: it protects against the
process dying; after a power cut a torn journal is ignored (logged) and the DB's older seqs
only open gaps the devices are asked to fill -- the seqs used are never ahead of what is stored.

Everything but :meth:`load` and :meth:`rewrite` runs on the link's I/O thread (with ingest's
processing); the state is read and changed under ``lock`` (the registry's, which the gap manager
holds while it changes the gaps), so the sweep thread can rewrite the journal when gaps expire.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from hub.devices.registry import DeviceRecord
from hub.ingest.dedup import Gap

_dumps: Callable[[Any], bytes]
try:  # the journal is rewritten after every durable batch: orjson writes it ~10x faster than json
    from orjson import dumps as _dumps
except ImportError:  # pragma: no cover - orjson is a hub dependency; the journal works without it

    def _dumps(doc: Any) -> bytes:
        return json.dumps(doc, separators=(",", ":")).encode()


if TYPE_CHECKING:
    from hub.devices.registry import DeviceRegistry
    from hub.ingest.gaps import GapManager

logger = logging.getLogger(__name__)

#: Version 2 added the safe gaps; a version 1 journal (seqs only) is still read, its gaps then come
#: from the state DB's open-gap table (hub.ingest.gaps.GapManager.load_open).
JOURNAL_VERSION: Final = 2
_READABLE_VERSIONS: Final = (1, 2)

#: Where the live open gaps come from: (device id, its gaps) for devices with any (the gap manager).
OpenGaps = Callable[[], Iterable[tuple[str, Sequence[Gap]]]]


class SeqWatermark:
    """Seqs of received chunks, made safe ticket by ticket, journalled before they are acknowledged."""

    def __init__(self, path: Path, lock: threading.RLock | None = None, open_gaps: OpenGaps | None = None) -> None:
        self.path = path
        self._tmp = path.with_name(path.name + ".tmp")
        self.lock = lock if lock is not None else threading.RLock()
        #: The live open gaps (None: gaps are not journalled, version 1 behaviour).
        self.open_gaps = open_gaps
        #: device id -> safe seq; None: the device started its seqs over (the DB's value is stale).
        self.safe: dict[str, int | None] = {}
        #: The safe gaps of the last run (device id -> gaps), from a version 2 journal; None without one.
        self.loaded_gaps: dict[str, list[Gap]] | None = None
        self._chunk: dict[str, DeviceRecord] = {}  # records whose seq advanced since the last seal
        self._chunk_fills: list[tuple[DeviceRecord, int, Gap]] = []  # (record, seq_gen, seq as a gap)
        self._sealed: deque[tuple[int, list[tuple[DeviceRecord, int, int]]]] = deque()
        self._fills: deque[tuple[int, list[tuple[DeviceRecord, int, Gap]]]] = deque()  # sealed, not durable
        self.journal_writes = 0

    # ------------------------------------------------------------------ start

    def load(self, devices: dict[str, DeviceRecord]) -> int:
        """Apply the journal of the last run to the records loaded from the DB; return devices changed.

        A missing journal is normal (first start, or a replica's first run); an unreadable one is
        logged and ignored. Every record's ``safe_seq`` starts as its (possibly corrected) ``last_seq``.
        """
        seqs, gaps = self._read()
        self.loaded_gaps = gaps
        changed = 0
        for device_id, seq in seqs.items():
            rec = devices.get(device_id)
            if rec is None:
                continue
            if seq is None or rec.last_seq is None or seq > rec.last_seq:
                if rec.last_seq != seq:
                    changed += 1
                rec.last_seq = seq
        for rec in devices.values():
            rec.safe_seq = rec.last_seq
            if rec.last_seq is not None or rec.id in seqs:
                self.safe[rec.id] = rec.last_seq
        return changed

    def _read(self) -> tuple[dict[str, int | None], dict[str, list[Gap]] | None]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}, None
        except OSError as exc:
            logger.warning("seq journal %s unreadable (%s): using the state DB's seqs", self.path, exc)
            return {}, None
        try:
            doc: Any = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("v") not in _READABLE_VERSIONS:
                raise ValueError(f"not a seq journal of version {' or '.join(map(str, _READABLE_VERSIONS))}")
            if not isinstance(doc.get("seqs"), dict):
                raise ValueError("no seqs")
            seqs: dict[str, int | None] = {}
            for key, value in doc["seqs"].items():
                if value is not None and (type(value) is not int or value < 0):
                    raise ValueError(f"seq of {key!r} is {value!r}")
                seqs[str(key)] = value
            gaps = _read_gaps(doc["gaps"]) if doc["v"] >= 2 else None
        except (ValueError, KeyError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
            logger.warning("seq journal %s is damaged (%s): using the state DB's seqs", self.path, exc)
            return {}, None
        return seqs, gaps

    # ------------------------------------------------------------------ link thread

    def note(self, rec: DeviceRecord) -> None:
        """``rec``'s seq advanced in the chunk being received (called with ``lock`` held)."""
        self._chunk[rec.id] = rec

    def note_fill(self, rec: DeviceRecord, fill: Gap) -> None:
        """A message of the chunk being received filled seq ``fill.first`` of an open gap (``fill``
        carries that gap's times); until the chunk is durable the seq stays a safe gap (``lock`` held)."""
        self._chunk_fills.append((rec, rec.seq_gen, fill))

    def seal(self, ticket: int | None) -> None:
        """The chunk's points were submitted under ``ticket`` (None: it had none; its seqs are safe
        once everything submitted before them is)."""
        with self.lock:
            chunk, self._chunk = self._chunk, {}
            fills, self._chunk_fills = self._chunk_fills, []
            if not chunk and not fills:
                return
            if ticket is None:
                ticket = self._sealed[-1][0] if self._sealed else 0
            if fills:
                self._fills.append((ticket, fills))
            snapshot = [(rec, rec.last_seq, rec.seq_gen) for rec in chunk.values() if rec.last_seq is not None]
            self._sealed.append((ticket, snapshot))

    def release(self, through: int) -> None:
        """Tickets up to ``through`` are durable: their seqs become safe and are journalled.

        Raises OSError when the journal cannot be written (disk full): the caller then acknowledges
        nothing, and the broker delivers those messages again.
        """
        sealed, fills = self._sealed, self._fills
        if not (sealed and sealed[0][0] <= through) and not (fills and fills[0][0] <= through):
            return
        with self.lock:
            changed = False
            while sealed and sealed[0][0] <= through:
                _, snapshot = sealed.popleft()
                for rec, seq, gen in snapshot:
                    if gen == rec.seq_gen and (rec.safe_seq is None or seq > rec.safe_seq):
                        rec.safe_seq = seq
                        self.safe[rec.id] = seq
                        changed = True
            while fills and fills[0][0] <= through:
                fills.popleft()
                changed = True  # filled seqs leave the safe gaps
            if changed:
                self._write()

    def forget(self, rec: DeviceRecord) -> None:
        """The device started its seqs over: seqs sealed before are void, and so is the DB's value."""
        with self.lock:
            rec.seq_gen += 1
            rec.safe_seq = None
            self._chunk.pop(rec.id, None)
            self.safe[rec.id] = None
            self._write()

    def rewrite(self) -> None:
        """The live gaps changed outside a chunk (the sweep expired some into data-loss records):
        write them now, so a restart does not wait for them again. Raises OSError like :meth:`release`."""
        if self.open_gaps is not None:
            with self.lock:
                self._write()

    def safe_gaps(self) -> dict[str, list[Gap]]:
        """Per device: the live open gaps at or below its safe seq, and the seqs filled by messages
        not yet durable (as one-seq gaps with the times of the gap they filled). Needs ``lock``."""
        out: dict[str, list[Gap]] = {}
        if self.open_gaps is None:
            return out
        safe = self.safe
        for device_id, gaps in self.open_gaps():
            seq = safe.get(device_id)
            if seq is not None:
                kept = [g for g in gaps if g.last <= seq]  # a gap lies wholly above or below a safe seq
                if kept:
                    out[device_id] = kept
        for batch in (*(f for _, f in self._fills), self._chunk_fills):
            for rec, gen, fill in batch:
                seq = safe.get(rec.id)
                if gen == rec.seq_gen and seq is not None and fill.first <= seq:
                    out.setdefault(rec.id, []).append(fill)
        for gaps in out.values():
            gaps.sort(key=attrgetter("first"))
        return out

    def _write(self) -> None:
        doc: dict[str, Any] = {"v": 1, "seqs": self.safe}  # without gaps: what version 1 held
        if self.open_gaps is not None:
            safe_gaps = self.safe_gaps().items()
            gaps = {dev: [[g.first, g.last, g.opened_ms, g.resend_ms] for g in gs] for dev, gs in safe_gaps}
            doc = {"v": JOURNAL_VERSION, "seqs": self.safe, "gaps": gaps}
        self._tmp.write_bytes(_dumps(doc))
        os.replace(self._tmp, self.path)
        self.journal_writes += 1


def resume_with_journal(path: Path, registry: DeviceRegistry, gaps: GapManager) -> tuple[SeqWatermark, int, int]:
    """The hub's wiring when ingest acknowledges durable points only: a watermark journalling the safe
    seqs and gaps of ``registry``'s devices and ``gaps``' trackers at ``path``; the last run's journal
    applied (seqs, then the gaps to wait for). Returns (watermark, devices whose seq the journal
    corrected, gaps resumed). Call after ``registry.load()``, before ingest starts."""
    watermark = SeqWatermark(path, lock=registry.lock, open_gaps=gaps.gaps_by_device)
    gaps.on_fill = watermark.note_fill
    gaps.on_expired = watermark.rewrite
    registry.durable_seqs = True  # the DB gets safe seqs only
    corrected = watermark.load(registry.devices)
    resumed = gaps.load_open(registry.devices, safe_seqs=True, journalled=watermark.loaded_gaps)
    return watermark, corrected, resumed


def _read_gaps(raw: Any) -> dict[str, list[Gap]]:
    """The ``gaps`` of a version 2 journal; ValueError when it is not what :meth:`SeqWatermark._write` writes."""
    if not isinstance(raw, dict):
        raise ValueError("gaps is not an object")
    out: dict[str, list[Gap]] = {}
    for device_id, rows in raw.items():
        gaps = []
        for row in rows:
            first, last, opened_ms, resend_ms = row
            if not (type(first) is int and type(last) is int and 0 <= first <= last and type(opened_ms) is int):
                raise ValueError(f"gap {row!r} of {device_id!r}")
            if resend_ms is not None and type(resend_ms) is not int:
                raise ValueError(f"gap {row!r} of {device_id!r}")
            gaps.append(Gap(first, last, opened_ms, resend_ms))
        out[str(device_id)] = gaps
    return out
