"""A simulated camera raises each of its event types on demand, through the real pipeline, and nothing else."""

from __future__ import annotations

import pytest

from edge.camera.config import CameraConfigBase
from edge.vocabulary import event_types_of
from edge.wire import DeviceKind
from simulators.camera import SCENES, TRIGGER_SCENES, SceneSpec, TamperSpec
from simulators.community import CAMERA_ZONES
from tests.edge.camera.scenes import run_scene

COMMUNITY_CAMERA = CameraConfigBase.model_validate({"zones": [dict(z) for z in CAMERA_ZONES]})
#: The generator's cameras analyse 2 frames per second.
FPS = 2.0
#: Seconds of the camera's own view before the trigger (the box has learnt its reference view by then).
LEAD_IN_S = 10.0


def triggered(name: str, seconds: float = 100.0) -> SceneSpec:
    """The camera's quiet view, then what ``trigger(name)`` plays, as one scene of ``seconds`` (longer than
    a matrix outage: held that long, a trigger still raises its event only)."""
    spec = TRIGGER_SCENES[name]
    walkers = [
        w.model_copy(update={"start_s": w.start_s + LEAD_IN_S, "end_s": w.end_s + LEAD_IN_S}) for w in spec.walkers
    ]
    tamper = [TamperSpec(kind=f.kind, start_s=LEAD_IN_S, end_s=seconds + 1) for f in spec.tamper]
    return SceneSpec(duration_s=seconds, walkers=walkers, tamper=tamper)


def test_every_camera_event_type_has_a_trigger() -> None:
    assert set(TRIGGER_SCENES) == set(event_types_of(DeviceKind.CAMERA))


@pytest.mark.parametrize("name", sorted(TRIGGER_SCENES))
def test_a_trigger_raises_its_event_and_no_other(name: str) -> None:
    events, _ = run_scene(triggered(name), COMMUNITY_CAMERA, fps=FPS)
    raised = {e.type for _, e in events if e.state.value == "active"}
    assert raised == {name}, [(t, e.type, e.state) for t, e in events]


@pytest.mark.parametrize("scene", ["busy", "static"])
def test_the_community_cameras_own_scenes_raise_nothing(scene: str) -> None:
    events, _ = run_scene(SCENES[scene], COMMUNITY_CAMERA, fps=FPS)
    assert events == []


def test_a_view_that_comes_back_after_a_long_defocus_is_not_a_moved_camera() -> None:
    # A community camera (this seed) read as moved 11 s after a minute-long defocus ended: the light had
    # changed meanwhile, the reference could not follow it, and raw grey levels clipped in the highlights
    # gave phase correlation a steady false shift. Correlating the lighting-free structure does not.
    spec = SCENES["static"].model_copy(
        update={"duration_s": 120.0, "tamper": [TamperSpec(kind="defocus", start_s=30.0, end_s=90.0)]}
    )
    events, _ = run_scene(spec, COMMUNITY_CAMERA, seed=750198808, fps=FPS)
    assert [(e.type, e.state.value) for _, e in events] == [("tamper_defocus", "active"), ("tamper_defocus", "cleared")]
