"""Replay a real clip through the camera pipeline and score it against the hand annotations.

Measured per clip: people-count MAE and bias on the annotated frames, precision and recall
of a crowd zone's condition (people in the zone >= its threshold) against the same
condition on the reference counts, pipeline fps and the CPU share of one core the
pipeline needs at the clip's own frame rate. Decoding and resizing are outside the timed
part: a camera box decodes in its capture thread whatever the analytics cost.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2

from edge.camera.config import CameraConfigBase
from edge.camera.pipeline import CameraPipeline
from edge.camera.privacy import HaarFaceDetector, count_distinct
from simulators.footage import Clip

#: The evaluation zone covers the whole frame, so its count is the frame's count.
EVAL_ZONE = "all"


@dataclass(slots=True)
class Accuracy:
    """What one replay of one clip measured."""

    clip: str
    role: str
    resolution: str
    min_person_px: int
    frames: int
    annotated: int
    mae: float
    bias: float
    crowd_min_people: int
    precision: float | None
    recall: float | None
    fps: float
    cpu_share: float
    stream_fps: float
    counts: dict[int, tuple[int, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (per-frame counts as [reference, pipeline])."""
        out = {k: getattr(self, k) for k in self.__slots__ if k != "counts"}
        out["counts"] = {str(k): list(v) for k, v in self.counts.items()}
        return out


def frames(path: Path, size: tuple[int, int] | None = None) -> Iterator[Any]:
    """Decoded BGR frames of a video, resized to ``size`` (w, h) when given."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise OSError(f"cannot decode {path}")
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield frame if size is None else cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
    finally:
        cap.release()


def eval_config(
    crowd_min_people: int, min_person_px: int | None = None, zones: list[dict[str, Any]] | None = None
) -> Any:
    """The default camera config plus a whole-frame crowd zone (and ``min_person_px`` if given)."""
    zone = {"name": EVAL_ZONE, "polygon": [(0, 0), (1, 0), (1, 1), (0, 1)], "crowd_min_people": crowd_min_people}
    data: dict[str, Any] = {"zones": [zone, *(zones or [])]}
    if min_person_px is not None:
        data["analytics"] = {"min_person_px": min_person_px}
    return CameraConfigBase.model_validate(data)


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else round(num / den, 3)


def evaluate(
    clip: Clip,
    path: Path,
    *,
    crowd_min_people: int,
    min_person_px: int | None = None,
    size: tuple[int, int] | None = None,
) -> Accuracy:
    """Replay ``path`` once at the clip's frame rate and score it (``size`` rescales the frames)."""

    cv2.setNumThreads(1)
    config = eval_config(crowd_min_people, min_person_px)
    pipeline = CameraPipeline(config)
    # min_person_px is given at the clip's native resolution; a rescaled replay rescales it too.
    factor = 1.0 if size is None else size[1] / clip.height
    if min_person_px is not None and size is not None:
        pipeline = CameraPipeline(eval_config(crowd_min_people, round(min_person_px * factor)))
    step_ms = 1000.0 / clip.fps
    counts: dict[int, tuple[int, int]] = {}
    wall = cpu = 0.0
    n = 0
    for i, frame in enumerate(frames(path, size)):
        w0, c0 = time.perf_counter(), time.process_time()
        result = pipeline.process(frame, 1_700_000_000_000 + round(i * step_ms))
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
        n += 1
        if i in clip.counts:
            counts[i] = (clip.counts[i], int(result.metrics[f"people_{EVAL_ZONE}"]))
    errors = [got - ref for ref, got in counts.values()]
    tp = sum(1 for ref, got in counts.values() if ref >= crowd_min_people and got >= crowd_min_people)
    fp = sum(1 for ref, got in counts.values() if ref < crowd_min_people <= got)
    fn = sum(1 for ref, got in counts.values() if got < crowd_min_people <= ref)
    width, height = size or (clip.width, clip.height)
    return Accuracy(
        clip=clip.name,
        role=clip.role,
        resolution=f"{width}x{height}",
        min_person_px=pipeline.scales.camera_min_px,
        frames=n,
        annotated=len(counts),
        mae=round(sum(abs(e) for e in errors) / max(1, len(errors)), 3),
        bias=round(sum(errors) / max(1, len(errors)), 3),
        crowd_min_people=crowd_min_people,
        precision=_ratio(tp, tp + fp),
        recall=_ratio(tp, tp + fn),
        fps=round(n / wall, 1) if wall else 0.0,
        cpu_share=round(cpu / (n / clip.fps), 4) if n else 0.0,
        stream_fps=round(clip.fps, 2),
        counts=counts,
    )


def face_recall(clip: Clip, path: Path) -> tuple[int, int] | None:
    """(faces the Haar filter finds, faces annotated) over the clip's face-annotated frames.

    Counted per frame and capped at the reference, so a false face never makes up for a
    missed one. Small faces the cascades miss are still covered on snapshots by the head
    regions of tracked people; this measures the face detector alone.
    """
    if not clip.faces:
        return None

    detector = HaarFaceDetector()
    found = 0
    for i, frame in enumerate(frames(path)):
        if i in clip.faces:
            found += min(clip.faces[i], count_distinct(detector(frame)))
        if i >= max(clip.faces):
            break
    return found, sum(clip.faces.values())
