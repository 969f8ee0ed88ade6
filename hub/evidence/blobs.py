"""Where snapshot bytes live: a small seam (put, get, has, delete, list) with the local files behind it.

:class:`hub.evidence.snapshots.SnapshotStore` keeps each snapshot as two blobs named
``<device>/<event_id>.jpg`` (the verified JPEG) and ``<device>/<event_id>.json`` (its side file).
A single hub keeps them as files under ``data_dir/snapshots`` (:class:`FileSnapshotBlobs`); hub
replicas of a cluster share the JetStream object store (:mod:`hub.cluster.objects`), so a snapshot
one replica received is readable on every replica.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from edge.wire import check_id

#: Suffix of the snapshot image and of its side file.
IMAGE_SUFFIX = ".jpg"
META_SUFFIX = ".json"


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """A stored blob as listed: its name and when it was last written (ms since the epoch)."""

    name: str
    modified_ms: int


class SnapshotBlobs(Protocol):
    """Named byte blobs; every method is safe to call from any thread except an event loop it uses itself."""

    def put(self, name: str, data: bytes) -> None:
        """Store ``data`` under ``name`` durably (replacing what was there)."""

    def get(self, name: str) -> bytes | None:
        """The bytes under ``name``, or None."""

    def has(self, name: str) -> bool:
        """True when ``name`` is stored (without reading it)."""

    def delete(self, name: str) -> None:
        """Remove ``name``; nothing happens when it is not stored."""

    def list(self) -> list[BlobInfo]:
        """Every stored blob (for the retention sweep)."""


def blob_names(device_id: str, event_id: str) -> tuple[str, str]:
    """The names of one event's image and side file; refuses ids that are not wire ids (no path tricks)."""
    check_id(device_id, "device_id")
    check_id(event_id, "event_id")
    base = f"{device_id}/{event_id}"
    return base + IMAGE_SUFFIX, base + META_SUFFIX


def image_of(meta_name: str) -> str:
    """The image blob beside a side file."""
    return meta_name.removesuffix(META_SUFFIX) + IMAGE_SUFFIX


class FileSnapshotBlobs:
    """Blobs as files under ``root`` (``root/<device>/<event_id>.jpg``), written atomically with fsync."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        device, sep, leaf = name.partition("/")
        if not sep or "/" in leaf or device in ("", ".", "..") or leaf in ("", ".", ".."):
            raise ValueError(f"bad snapshot blob name {name!r}")
        return self.root / device / leaf

    def put(self, name: str, data: bytes) -> None:
        """Write to a temporary file, fsync, rename over ``name``."""
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def get(self, name: str) -> bytes | None:
        """The file's bytes, or None."""
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            return None

    def has(self, name: str) -> bool:
        """True when the file exists."""
        return self._path(name).exists()

    def delete(self, name: str) -> None:
        """Unlink the file if it is there."""
        self._path(name).unlink(missing_ok=True)

    def list(self) -> list[BlobInfo]:
        """Every stored file (temporary files of a write in progress are not blobs)."""
        out = []
        for path in self.root.glob("*/*"):
            if path.suffix == ".tmp":
                continue
            try:
                modified_ms = int(path.stat().st_mtime * 1000)
            except FileNotFoundError:  # removed since the listing
                continue
            out.append(BlobInfo(f"{path.parent.name}/{path.name}", modified_ms))
        return out
