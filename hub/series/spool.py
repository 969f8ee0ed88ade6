"""A durable, bounded disk spool of line-protocol batches: append-only segment files with fsync.

Each record is one batch: a 12-byte header (payload length, line count, CRC32)
and the lines joined by ``\\n`` (line protocol never contains a raw newline).
``append`` fsyncs before it returns, so a batch it accepted survives kill -9 and
power loss. Batches are read back in order with :meth:`DiskSpool.peek` and
released with :meth:`DiskSpool.commit`; the read cursor is saved (without fsync:
after a crash a batch may be written twice, which timestamps make idempotent).
A torn record at the end of a segment (crash mid-append, never acknowledged) is
cut off at open. Over the byte bound, whole oldest segments are dropped and
reported to the caller -- never silently. When the disk itself is full, ``append``
cuts the partial record back off and raises :class:`SpoolWriteError`: the batch was
not kept, and the caller must keep it (the writer holds it in memory).
"""

from __future__ import annotations

import errno
import logging
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

logger = logging.getLogger(__name__)

HEADER: Final = struct.Struct("<III")
SUFFIX: Final = ".seg"
CURSOR_FILE: Final = "cursor"
DEFAULT_SEGMENT_BYTES: Final = 8 * 1024 * 1024


@dataclass
class Segment:
    """One segment file and its totals (records and lines include the consumed part)."""

    seg_id: int
    path: Path
    size: int = 0
    records: int = 0
    lines: int = 0


@dataclass(frozen=True, slots=True)
class Dropped:
    """What :meth:`DiskSpool.append` had to throw away to stay within its bound."""

    batches: int
    lines: int
    bytes: int


class SpoolWriteError(OSError):
    """A batch could not be written to the spool (disk full, I/O error); nothing of it was kept.
    ``dropped``: older batches the byte bound had already thrown away to make room for it."""

    dropped: Dropped | None = None


class DiskSpool:
    """Append-only segment files under ``directory``, bounded by ``max_bytes``."""

    def __init__(self, directory: Path, max_bytes: int, segment_bytes: int | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or max(64 * 1024, min(DEFAULT_SEGMENT_BYTES, max_bytes // 8))
        self._segments: list[Segment] = []
        self._tail: BinaryIO | None = None
        self._head_offset = 0
        self._head_records = 0
        self._head_lines = 0
        self._reader: BinaryIO | None = None
        self._reader_id = -1
        self._pending_record: tuple[int, int] | None = None  # (next offset, lines) of the peeked record
        self._cursor_failing = False  # logged once until a save works again
        self._last_id = 0  # segment ids are never reused, so a stale cursor can never point into a new file
        self._open()

    def _open(self) -> None:
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            try:
                seg_id = int(path.stem)
            except ValueError:
                logger.warning("spool: ignoring stray file %s", path)
                continue
            self._segments.append(self._scan(Segment(seg_id, path)))
            self._last_id = max(self._last_id, seg_id)
        cursor = self.directory / CURSOR_FILE
        if cursor.exists():
            try:
                seg_id_text, offset_text = cursor.read_text().split()
                seg_id, offset = int(seg_id_text), int(offset_text)
            except ValueError:
                logger.warning("spool: unreadable cursor file, replaying from the start")
                seg_id, offset = -1, 0
            self._last_id = max(self._last_id, seg_id)
            for seg in list(self._segments):
                if seg.seg_id < seg_id:
                    self._remove(seg)
            if self._segments and self._segments[0].seg_id == seg_id:
                self._skip_to(offset)
        if self._segments:
            logger.warning(
                "spool %s: %d batches (%d bytes) waiting from a previous run",
                self.directory,
                self.pending_batches,
                self.pending_bytes,
            )

    def _scan(self, seg: Segment) -> Segment:
        """Count the valid records of a segment; cut off a torn tail left by a crash."""
        with seg.path.open("rb") as fh:
            data = fh.read()
        offset = 0
        while offset + HEADER.size <= len(data):
            length, lines, crc = HEADER.unpack_from(data, offset)
            end = offset + HEADER.size + length
            if end > len(data) or zlib.crc32(data[offset + HEADER.size : end]) != crc:
                break
            seg.records += 1
            seg.lines += lines
            offset = end
        if offset != len(data):
            logger.warning(
                "spool: %s has a torn record at byte %d (%d bytes cut)", seg.path, offset, len(data) - offset
            )
            with seg.path.open("r+b") as fh:
                fh.truncate(offset)
                os.fsync(fh.fileno())
        seg.size = offset
        return seg

    def _skip_to(self, offset: int) -> None:
        """Advance the head past the records before ``offset`` (restoring a saved cursor)."""
        head = self._segments[0]
        with head.path.open("rb") as fh:
            while self._head_offset < min(offset, head.size):
                header = fh.read(HEADER.size)
                length, lines, _ = HEADER.unpack(header)
                fh.seek(length, os.SEEK_CUR)
                self._head_offset += HEADER.size + length
                self._head_records += 1
                self._head_lines += lines

    @property
    def pending_bytes(self) -> int:
        """Bytes of batches not yet committed."""
        return sum(seg.size for seg in self._segments) - self._head_offset

    @property
    def pending_batches(self) -> int:
        """Batches not yet committed."""
        return sum(seg.records for seg in self._segments) - self._head_records

    @property
    def pending_lines(self) -> int:
        """Lines not yet committed."""
        return sum(seg.lines for seg in self._segments) - self._head_lines

    def append(self, lines: list[str]) -> Dropped | None:
        """Durably append one batch (fsync); return what was dropped to make room, if anything."""
        payload = "\n".join(lines).encode("utf-8")
        record = HEADER.pack(len(payload), len(lines), zlib.crc32(payload)) + payload
        if len(record) > self.max_bytes:
            logger.error(
                "spool: one batch of %d lines (%d bytes) exceeds the whole spool bound %d: DROPPED",
                len(lines),
                len(record),
                self.max_bytes,
            )
            return Dropped(1, len(lines), len(record))
        dropped = self._make_room(len(record))
        try:
            if not self._segments or self._segments[-1].size >= self.segment_bytes:
                self._new_segment()
            tail = self._segments[-1]
            fh = self._tail_file()
            view = memoryview(record)
            while view:  # unbuffered: a short write (disk filling up) leaves nothing behind in a buffer
                written = fh.write(view)
                if not written:
                    raise OSError(errno.ENOSPC, "the write took no bytes")
                view = view[written:]
            os.fsync(fh.fileno())
        except OSError as exc:
            self._undo_append()
            error = SpoolWriteError(
                f"spool {self.directory}: could not write a batch of {len(lines)} lines ({len(record)} bytes): {exc}"
            )
            error.dropped = dropped
            raise error from exc
        tail.size += len(record)
        tail.records += 1
        tail.lines += len(lines)
        return dropped

    def _make_room(self, size: int) -> Dropped | None:
        batches = lines = freed = 0
        while self._segments and self.pending_bytes + size > self.max_bytes:
            if len(self._segments) == 1:
                self._new_segment()  # never drop into the middle of a file: close the tail first
            head = self._segments[0]
            batches += head.records - self._head_records
            lines += head.lines - self._head_lines
            freed += head.size - self._head_offset
            self._remove(head)
        if not batches:
            return None
        self._save_cursor()
        logger.error(
            "spool full (%d bytes max): DROPPED the %d oldest batches (%d lines, %d bytes)",
            self.max_bytes,
            batches,
            lines,
            freed,
        )
        return Dropped(batches, lines, freed)

    def _undo_append(self) -> None:
        """Cut the tail segment back to its last whole record after a failed append (shrinking needs no
        space), so the next append does not land behind a torn one."""
        if not self._segments or self._tail is None:
            return
        tail = self._segments[-1]
        try:
            os.ftruncate(self._tail.fileno(), tail.size)
        except OSError:
            logger.exception(
                "spool: could not cut %s back to %d bytes; reopening it cuts the torn record", tail.path, tail.size
            )
            self._tail.close()
            self._tail = None
            self._segments[-1] = self._scan(Segment(tail.seg_id, tail.path))

    def _new_segment(self) -> None:
        if self._tail is not None:
            self._tail.close()
            self._tail = None
        self._last_id += 1
        seg_id = self._last_id
        path = self.directory / f"{seg_id:012d}{SUFFIX}"
        self._tail = path.open("ab", buffering=0)  # created before it is listed: a failure lists nothing
        self._segments.append(Segment(seg_id, path))
        self._fsync_dir()

    def _tail_file(self) -> BinaryIO:
        if self._tail is None:
            self._tail = self._segments[-1].path.open("ab", buffering=0)
        return self._tail

    def _fsync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _remove(self, seg: Segment) -> None:
        """Delete a segment (the head) and reset the head cursor."""
        if self._reader is not None and self._reader_id == seg.seg_id:
            self._reader.close()
            self._reader = None
        if self._segments and self._segments[-1] is seg and self._tail is not None:
            self._tail.close()
            self._tail = None
        self._segments.remove(seg)
        seg.path.unlink(missing_ok=True)
        self._head_offset = self._head_records = self._head_lines = 0
        self._pending_record = None

    def peek(self) -> list[str] | None:
        """The oldest uncommitted batch, or None when the spool is empty."""
        while self._segments and self._head_offset >= self._segments[0].size:
            if len(self._segments) == 1:
                return None
            self._remove(self._segments[0])
            self._save_cursor()
        if not self._segments:
            return None
        head = self._segments[0]
        if self._reader is None or self._reader_id != head.seg_id:
            if self._reader is not None:
                self._reader.close()
            self._reader = head.path.open("rb")
            self._reader_id = head.seg_id
        self._reader.seek(self._head_offset)
        length, lines, _ = HEADER.unpack(self._reader.read(HEADER.size))
        payload = self._reader.read(length)
        self._pending_record = (self._head_offset + HEADER.size + length, lines)
        return payload.decode("utf-8").split("\n") if length else []

    def commit(self) -> None:
        """Release the batch returned by the last :meth:`peek` (a no-op if the bound dropped it meanwhile)."""
        if self._pending_record is None:
            return
        self._head_offset, lines = self._pending_record
        self._head_records += 1
        self._head_lines += lines
        self._pending_record = None
        if self._head_offset >= self._segments[0].size and len(self._segments) == 1:
            # Everything replayed: start the next append in a fresh file.
            self._remove(self._segments[0])
        self._save_cursor()

    def _save_cursor(self) -> None:
        seg_id = self._segments[0].seg_id if self._segments else self._last_id
        tmp = self.directory / (CURSOR_FILE + ".tmp")
        try:
            tmp.write_text(f"{seg_id} {self._head_offset}\n")
            os.replace(tmp, self.directory / CURSOR_FILE)
        except OSError as exc:  # only costs a second replay of these batches after a restart (idempotent)
            if not self._cursor_failing:
                self._cursor_failing = True
                logger.warning(
                    "spool: could not save the read cursor (%s); a restart would replay written batches", exc
                )
            return
        if self._cursor_failing:
            self._cursor_failing = False
            logger.info("spool: the read cursor is saved again")

    def close(self) -> None:
        """Close open files (appended data is already on disk)."""
        for fh in (self._tail, self._reader):
            if fh is not None:
                fh.close()
        self._tail = self._reader = None
