"""VideoCaptureSource on a real video file: frames, end-of-file loop, reconnect and health."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.camera.sources import Frame, VideoCaptureSource
from simulators.camera import SCENES, SceneRenderer


@pytest.fixture
def video(tmp_path: Path) -> Path:
    """A 12-frame MJPEG AVI of a synthetic scene (no camera image ever touches the disk)."""
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 50.0, (640, 480))
    renderer = SceneRenderer(SCENES["busy"], seed=3)
    for i in range(12):
        frame = renderer.render(i / 10.0)
        assert frame is not None
        writer.write(frame)
    writer.release()
    return path


def test_file_source_reads_frames_loops_and_counts(video: Path) -> None:
    source = VideoCaptureSource(str(video))
    try:
        images: list[Frame] = []
        misses = 0
        deadline = time.monotonic() + 10
        while len(images) < 15 and time.monotonic() < deadline:
            frame = source.read()
            if frame.image is None:
                misses += 1
            else:
                images.append(frame)
        assert len(images) == 15  # 12 frames, end of file, then the file plays again
        assert misses == 1
        assert images[0].image is not None and images[0].image.shape == (480, 640, 3)
        assert images[12].image is not None and np.array_equal(images[0].image, images[12].image)
        assert all(b.ts_ms >= a.ts_ms for a, b in itertools.pairwise(images))
        health = source.health()
        assert health.connected and health.frames == 15 and health.reconnects == 1
        assert health.last_error is None
    finally:
        source.close()


def test_unreachable_source_reports_misses_with_backoff(tmp_path: Path) -> None:
    source = VideoCaptureSource(str(tmp_path / "missing.avi"), reconnect_max_s=1.0)
    try:
        started = time.monotonic()
        frames = [source.read() for _ in range(6)]
        elapsed = time.monotonic() - started
        assert all(f.image is None for f in frames)
        health = source.health()
        assert not health.connected and health.frames == 0
        assert health.failures >= 2 and health.last_error == "cannot open stream"
        assert elapsed < 5.0  # each read returns within the idle wait, so misses keep flowing
    finally:
        source.close()
    assert source.read().image is None  # closed: no blocking, no frames
