"""Per-device seq watermark: the seqs the hub has made safe, and so may acknowledge to the broker.

Ingest acknowledges a chunk of messages only once the series writer holds its points durably
(:meth:`hub.series.writer.SeriesWriter.durable_through`); after a ``kill -9`` the broker delivers
every message not acknowledged again to the persistent session. The hub's seq state (dedup and
gaps) must then resume exactly where the acknowledgements stopped:

- never ahead of them: a redelivered message would look like a duplicate and be dropped -- lost;
- not behind them either: the seqs in between would look like a gap, and a device that cannot
  resend would be declared lost although its points are stored.

So the seqs a chunk advanced become *safe* together with the chunk's points (the writer's
ticket). :meth:`SeqWatermark.release` records them in the device records (``safe_seq``, what the
registry writes to the state DB as ``last_seq``) and in a small journal file, replaced atomically,
before the link sends the PUBACKs. At start the journal's seqs take precedence over the DB's
(the DB is written about once a second). The journal is not fsynced: it protects against the
process dying; after a power cut a torn journal is ignored (logged) and the DB's older seqs
only open gaps the devices are asked to fill -- the seqs used are never ahead of what is stored.

Everything but :meth:`load` runs on the link's I/O thread (with ingest's processing).
"""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from pathlib import Path
from typing import Any, Final

from hub.registry import DeviceRecord

logger = logging.getLogger(__name__)

JOURNAL_VERSION: Final = 1


class SeqWatermark:
    """Seqs of received chunks, made safe ticket by ticket, journalled before they are acknowledged."""

    def __init__(self, path: Path) -> None:
        self.path = path
        #: device id -> safe seq; None: the device started its seqs over (the DB's value is stale).
        self.safe: dict[str, int | None] = {}
        self._chunk: dict[str, DeviceRecord] = {}  # records whose seq advanced since the last seal
        self._sealed: deque[tuple[int, list[tuple[DeviceRecord, int, int]]]] = deque()
        self.journal_writes = 0

    # ------------------------------------------------------------------ start

    def load(self, devices: dict[str, DeviceRecord]) -> int:
        """Apply the journal of the last run to the records loaded from the DB; return devices changed.

        A missing journal is normal (first start, or a replica's first run); an unreadable one is
        logged and ignored. Every record's ``safe_seq`` starts as its (possibly corrected) ``last_seq``.
        """
        seqs = self._read()
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

    def _read(self) -> dict[str, int | None]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            logger.warning("seq journal %s unreadable (%s): using the state DB's seqs", self.path, exc)
            return {}
        try:
            doc: Any = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("v") != JOURNAL_VERSION or not isinstance(doc.get("seqs"), dict):
                raise ValueError(f"not a version {JOURNAL_VERSION} seq journal")
            seqs: dict[str, int | None] = {}
            for key, value in doc["seqs"].items():
                if value is not None and (type(value) is not int or value < 0):
                    raise ValueError(f"seq of {key!r} is {value!r}")
                seqs[str(key)] = value
        except ValueError as exc:  # json.JSONDecodeError is one
            logger.warning("seq journal %s is damaged (%s): using the state DB's seqs", self.path, exc)
            return {}
        return seqs

    # ------------------------------------------------------------------ link thread

    def note(self, rec: DeviceRecord) -> None:
        """``rec``'s seq advanced in the chunk being received."""
        self._chunk[rec.id] = rec

    def seal(self, ticket: int | None) -> None:
        """The chunk's points were submitted under ``ticket`` (None: it had none; its seqs are safe
        once everything submitted before them is)."""
        chunk, self._chunk = self._chunk, {}
        if not chunk:
            return
        if ticket is None:
            ticket = self._sealed[-1][0] if self._sealed else 0
        snapshot = [(rec, rec.last_seq, rec.seq_gen) for rec in chunk.values() if rec.last_seq is not None]
        self._sealed.append((ticket, snapshot))

    def release(self, through: int) -> None:
        """Tickets up to ``through`` are durable: their seqs become safe and are journalled.

        Raises OSError when the journal cannot be written (disk full): the caller then acknowledges
        nothing, and the broker delivers those messages again.
        """
        sealed = self._sealed
        advanced = False
        while sealed and sealed[0][0] <= through:
            _, snapshot = sealed.popleft()
            for rec, seq, gen in snapshot:
                if gen == rec.seq_gen and (rec.safe_seq is None or seq > rec.safe_seq):
                    rec.safe_seq = seq
                    self.safe[rec.id] = seq
                    advanced = True
        if advanced:
            self._write()

    def forget(self, rec: DeviceRecord) -> None:
        """The device started its seqs over: seqs sealed before are void, and so is the DB's value."""
        rec.seq_gen += 1
        rec.safe_seq = None
        self._chunk.pop(rec.id, None)
        self.safe[rec.id] = None
        self._write()

    def _write(self) -> None:
        data = json.dumps({"v": JOURNAL_VERSION, "seqs": self.safe}, separators=(",", ":")).encode()
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, self.path)
        self.journal_writes += 1
