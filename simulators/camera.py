"""Simulated camera scenes: synthetic frames with walking people, lighting drift, noise and scripted tamper.

People are dark upright silhouettes (head, torso, swinging arms and legs) about
200 px tall at 640x480, which OpenCV's HOG people detector really detects, on a
textured static background. A scene script adds lens covering, defocus, camera
shifts and stream outages. :class:`SimFrameSource` is a
:class:`~edge.camera.sources.FrameSource`, and the ``sim_camera`` driver runs the
real camera pipeline on it.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from edge.camera.config import CameraConfigBase
from edge.camera.driver import CameraDriver
from edge.camera.privacy import Image
from edge.camera.sources import Frame, StreamHealth
from edge.drivers import register_driver
from simulators.drivers import UnknownTriggerError, remember

WIDTH, HEIGHT = 640, 480


class WalkerSpec(BaseModel):
    """A person walking along waypoints (foot positions as 0..1 fractions) between two scene times."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_s: float = Field(ge=0, description="Scene time the person appears.")
    end_s: float = Field(gt=0, description="Scene time the person disappears.")
    path: list[tuple[float, float]] = Field(min_length=1, description="Foot waypoints, walked at constant speed.")
    height: float = Field(default=0.44, gt=0.1, le=0.9, description="Body height as a share of the frame height.")
    shade: int = Field(default=45, ge=0, le=120, description="Grey level of the clothing.")

    def foot_at(self, t: float) -> tuple[float, float, float] | None:
        """Foot (x, y) and distance walked at scene time ``t``; None when not in the scene."""
        if not self.start_s <= t < self.end_s:
            return None
        pts = self.path
        if len(pts) == 1:
            return (pts[0][0], pts[0][1], 0.0)
        legs = [math.dist(a, b) for a, b in itertools.pairwise(pts)]
        walked = sum(legs) * (t - self.start_s) / (self.end_s - self.start_s)
        remaining = walked
        for (a, b), leg in zip(itertools.pairwise(pts), legs, strict=True):
            if remaining <= leg and leg > 0:
                f = remaining / leg
                return (a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]), walked)
            remaining -= leg
        return (pts[-1][0], pts[-1][1], walked)


class TamperSpec(BaseModel):
    """A scripted fault between two scene times."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["covered", "defocus", "moved", "outage"] = Field(description="What happens to the camera.")
    start_s: float = Field(ge=0, description="When it starts.")
    end_s: float = Field(gt=0, description="When it ends.")
    shift: tuple[float, float] = Field(
        default=(0.12, 0.06), description="Camera shift for 'moved', as frame fractions."
    )
    blur_sigma: float = Field(default=5.0, gt=0, description="Gaussian blur for 'defocus', in pixels.")


class SceneSpec(BaseModel):
    """A whole scripted scene."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    duration_s: float = Field(default=60.0, gt=0, description="Length of the scene (it loops in the driver).")
    walkers: list[WalkerSpec] = Field(default_factory=list, description="People in the scene.")
    tamper: list[TamperSpec] = Field(default_factory=list, description="Scripted faults.")
    noise_sigma: float = Field(default=3.0, ge=0, le=30, description="Sensor noise (grey levels).")
    drift_amplitude: float = Field(
        default=0.12, ge=0, lt=0.5, description="Slow lighting change, as a share of brightness."
    )
    drift_period_s: float = Field(default=90.0, gt=0, description="Period of the lighting change.")


def _crossing(start: float, y: float, x0: float, x1: float, seconds: float) -> WalkerSpec:
    return WalkerSpec(start_s=start, end_s=start + seconds, path=[(x0, y), (x1, y)])


def _lingerer(start: float, end: float, x: float, y: float, sway: float = 0.03) -> WalkerSpec:
    steps = max(2, int((end - start) / 4))
    path = [(x + (sway if i % 2 else -sway), y + (0.01 if i % 2 else 0.0)) for i in range(steps + 1)]
    return WalkerSpec(start_s=start, end_s=end, path=path)


#: Named scenes used by tests, the demo and the benchmark.
SCENES: dict[str, SceneSpec] = {
    "static": SceneSpec(duration_s=60.0, drift_period_s=40.0, drift_amplitude=0.15),
    "crowd": SceneSpec(
        duration_s=40.0,
        walkers=[_lingerer(4.0 + 1.0 * i, 30.0, 0.2 + 0.2 * i, 0.9, 0.02) for i in range(4)],
    ),
    "intrusion": SceneSpec(duration_s=30.0, walkers=[_crossing(5.0, 0.92, 0.05, 0.95, 14.0)]),
    "loiter": SceneSpec(duration_s=50.0, walkers=[_lingerer(3.0, 38.0, 0.5, 0.9, 0.04)]),
    "covered": SceneSpec(duration_s=30.0, tamper=[TamperSpec(kind="covered", start_s=10.0, end_s=20.0)]),
    "defocus": SceneSpec(duration_s=30.0, tamper=[TamperSpec(kind="defocus", start_s=10.0, end_s=20.0)]),
    "moved": SceneSpec(duration_s=30.0, tamper=[TamperSpec(kind="moved", start_s=10.0, end_s=20.0)]),
    "stream_loss": SceneSpec(duration_s=30.0, tamper=[TamperSpec(kind="outage", start_s=10.0, end_s=20.0)]),
    "busy": SceneSpec(
        duration_s=30.0,
        walkers=[
            # 0 to 3 people at once: three are in view together around 9-11 s.
            _crossing(0.0, 0.92, 0.05, 0.95, 12.0),
            _crossing(2.0, 0.86, 0.95, 0.1, 14.0),
            _crossing(6.0, 0.97, 0.1, 0.9, 14.0),
            _crossing(17.0, 0.9, 0.9, 0.05, 11.0),
        ],
    ),
}


#: How long a forced condition lasts unless released (the scene runs this long, then loops).
_FORCED_S = 3600.0
#: What a scenario's ``trigger`` plays on a simulated camera for each event type the camera raises,
#: until released. Where people stand follows the camera zones of the community generator
#: (``simulators.community.CAMERA_ZONES``): four people on the pavement either side of the doorway (a
#: crowd, nobody loitering in the doorway), one person who stays in the doorway, one standing in the
#: fenced yard.
TRIGGER_SCENES: dict[str, SceneSpec] = {
    "tamper_covered": SceneSpec(
        duration_s=_FORCED_S, tamper=[TamperSpec(kind="covered", start_s=0.0, end_s=_FORCED_S)]
    ),
    "tamper_defocus": SceneSpec(
        duration_s=_FORCED_S, tamper=[TamperSpec(kind="defocus", start_s=0.0, end_s=_FORCED_S)]
    ),
    "tamper_moved": SceneSpec(duration_s=_FORCED_S, tamper=[TamperSpec(kind="moved", start_s=0.0, end_s=_FORCED_S)]),
    "stream_lost": SceneSpec(duration_s=_FORCED_S, tamper=[TamperSpec(kind="outage", start_s=0.0, end_s=_FORCED_S)]),
    "crowd_gathering": SceneSpec(
        duration_s=_FORCED_S,
        walkers=[_lingerer(3.0 + 0.5 * i, _FORCED_S, x, 0.9, 0.02) for i, x in enumerate((0.12, 0.3, 0.7, 0.88))],
    ),
    "loitering": SceneSpec(duration_s=_FORCED_S, walkers=[_lingerer(3.0, _FORCED_S, 0.5, 0.9, 0.04)]),
    "intrusion": SceneSpec(duration_s=_FORCED_S, walkers=[_lingerer(3.0, _FORCED_S, 0.5, 0.7, 0.04)]),
}


def draw_person(img: Image, cx: float, foot: float, height: float, *, phase: float, shade: int) -> None:
    """Draw a walking silhouette with its feet at (cx, foot) pixels, ``height`` pixels tall."""
    s = height / 200.0
    col = (shade, shade, shade + 8)
    top = foot - height
    cv2.circle(img, (int(cx), int(top + 14 * s)), int(13 * s), col, -1, cv2.LINE_AA)
    cv2.ellipse(img, (int(cx), int(top + 30 * s)), (int(10 * s), int(5 * s)), 0, 0, 360, col, -1)
    torso = np.array(
        [
            [cx - 22 * s, top + 32 * s],
            [cx + 22 * s, top + 32 * s],
            [cx + 18 * s, foot - 95 * s],
            [cx - 18 * s, foot - 95 * s],
        ],
        np.int32,
    )
    cv2.fillPoly(img, [torso], col, cv2.LINE_AA)
    arm, leg = math.sin(phase) * 12 * s, math.sin(phase) * 16 * s
    shoulder_y, hand_y = int(top + 36 * s), int(foot - 90 * s)
    cv2.line(
        img, (int(cx - 20 * s), shoulder_y), (int(cx - 26 * s + arm), hand_y), col, max(1, int(9 * s)), cv2.LINE_AA
    )
    cv2.line(
        img, (int(cx + 20 * s), shoulder_y), (int(cx + 26 * s - arm), hand_y), col, max(1, int(9 * s)), cv2.LINE_AA
    )
    hip_y = int(foot - 97 * s)
    cv2.line(
        img, (int(cx - 9 * s), hip_y), (int(cx - 10 * s + leg), int(foot - 3)), col, max(1, int(13 * s)), cv2.LINE_AA
    )
    cv2.line(
        img, (int(cx + 9 * s), hip_y), (int(cx + 10 * s - leg), int(foot - 3)), col, max(1, int(13 * s)), cv2.LINE_AA
    )


def make_background(seed: int, width: int = WIDTH, height: int = HEIGHT) -> Image:
    """A textured street scene: facades with windows above, paved ground below."""
    rng = np.random.default_rng(seed)
    img = np.full((height, width, 3), 175, np.uint8)
    horizon = int(height * 0.5)
    for _ in range(12):
        x, w = int(rng.integers(0, width)), int(rng.integers(60, 200))
        top = int(rng.integers(20, horizon - 40))
        colour = tuple(int(v) for v in rng.integers(120, 220, 3))
        cv2.rectangle(img, (x, top), (x + w, horizon), colour, -1)
        for wy in range(top + 10, horizon - 15, 28):
            for wx in range(x + 8, x + w - 14, 24):
                cv2.rectangle(img, (wx, wy), (wx + 12, wy + 14), tuple(c - 60 for c in colour), -1)
    img[horizon:] = (150, 152, 150)
    for gy in range(horizon, height, 24):
        cv2.line(img, (0, gy), (width, gy), (165, 165, 165), 1)
    for gx in range(0, width, 48):
        cv2.line(img, (gx, horizon), (gx, height), (140, 140, 140), 1)
    return cv2.GaussianBlur(img, (3, 3), 0)


class SceneRenderer:
    """Renders a :class:`SceneSpec` at any scene time (deterministic for a seed)."""

    def __init__(self, spec: SceneSpec, seed: int = 0, width: int = WIDTH, height: int = HEIGHT) -> None:
        self.spec = spec
        self.seed = seed
        self.width, self.height = width, height
        self.background = make_background(seed, width, height)
        rng = np.random.default_rng(seed + 1)
        self._noise: list[tuple[Image, Image]] = []
        for _ in range(8):
            noise = rng.normal(0.0, spec.noise_sigma, (height, width, 3))
            self._noise.append((np.clip(noise, 0, 255).astype(np.uint8), np.clip(-noise, 0, 255).astype(np.uint8)))
        self._count = 0

    def active(self, kind: str, t: float) -> TamperSpec | None:
        """The scripted fault of ``kind`` at scene time ``t``, if any."""
        return next((f for f in self.spec.tamper if f.kind == kind and f.start_s <= t < f.end_s), None)

    def render(self, t: float) -> Image | None:
        """The frame at scene time ``t`` (seconds), or None during an outage."""
        if self.active("outage", t):
            return None
        img = self.background.copy()
        for walker in self.spec.walkers:
            pos = walker.foot_at(t)
            if pos is not None:
                x, y, walked = pos
                px, py, tall = x * self.width, y * self.height, walker.height * self.height
                draw_person(img, px, py, tall, phase=walked * 60.0, shade=walker.shade)
        gain = 1.0 + self.spec.drift_amplitude * math.sin(2 * math.pi * t / self.spec.drift_period_s)
        img = cv2.convertScaleAbs(img, alpha=gain)
        moved = self.active("moved", t)
        if moved is not None:
            shift = np.array([[1, 0, moved.shift[0] * self.width], [0, 1, moved.shift[1] * self.height]], np.float32)
            img = cv2.warpAffine(img, shift, (self.width, self.height), borderMode=cv2.BORDER_REFLECT)
        defocus = self.active("defocus", t)
        if defocus is not None:
            img = cv2.GaussianBlur(img, (0, 0), defocus.blur_sigma)
        if self.active("covered", t):
            img = np.full_like(img, 8)
        plus, minus = self._noise[self._count % len(self._noise)]
        self._count += 1
        return cv2.subtract(cv2.add(img, plus), minus)


def iter_scene(spec: SceneSpec, fps: float = 10.0, seed: int = 0, start_ms: int = 1_700_000_000_000) -> Iterator[Frame]:
    """Every frame of one pass of the scene, with scene timestamps (for tests and benchmarks)."""
    renderer = SceneRenderer(spec, seed)
    for i in range(int(spec.duration_s * fps)):
        t = i / fps
        yield Frame(renderer.render(t), start_ms + round(t * 1000))


class SimFrameSource:
    """A scene as a live :class:`~edge.camera.sources.FrameSource`, paced at ``fps * speed`` in real time."""

    def __init__(
        self, spec: SceneSpec, *, fps: float = 10.0, seed: int = 0, speed: float = 1.0, start_ms: int | None = None
    ) -> None:
        self.renderer = SceneRenderer(spec, seed)
        self.fps, self.speed = fps, speed
        self.start_ms = int(time.time() * 1000) if start_ms is None else start_ms
        self._index = 0
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self._health = StreamHealth(connected=True)

    def read(self) -> Frame:
        """Wait for the next frame time and render it (scene loops at its end)."""
        due = self._t0 + self._index / (self.fps * self.speed)
        delay = due - time.monotonic()
        if delay > 0:
            self._stop.wait(delay)
        t = self._index / self.fps
        self._index += 1
        ts_ms = self.start_ms + round(t * 1000)
        image = self.renderer.render(t % self.renderer.spec.duration_s)
        if image is None:
            self._health = replace(self._health, connected=False, failures=self._health.failures + 1)
        else:
            self._health = replace(self._health, connected=True, frames=self._health.frames + 1, last_frame_ms=ts_ms)
        return Frame(image, ts_ms)

    def health(self) -> StreamHealth:
        """Stream counters."""
        return self._health

    def play(self, spec: SceneSpec) -> None:
        """Switch to ``spec`` from its start (same background: the camera has not moved)."""
        old = self.renderer
        self.renderer = SceneRenderer(spec, old.seed, old.width, old.height)
        self.start_ms += round(self._index / self.fps * 1000)
        self._t0 = time.monotonic()
        self._index = 0

    def close(self) -> None:
        """Stop pacing."""
        self._stop.set()


class SimCameraConfig(CameraConfigBase):
    """The ``sim_camera`` driver: the real camera pipeline on a synthetic scene."""

    type: Literal["sim_camera"] = Field(default="sim_camera", description="Driver key.")
    scene: str | SceneSpec = Field(default="busy", description=f"A scene name ({', '.join(SCENES)}) or a scene script.")
    seed: int = Field(default=0, ge=0, description="Random seed of the background and noise.")
    fps: float = Field(default=10.0, gt=0, le=60, description="Frames per scene second.")
    speed: float = Field(default=1.0, gt=0, le=100, description="Scene seconds per real second.")
    start_ms: int | None = Field(default=None, description="Scene clock at start (ms since epoch); default now.")
    handle: str = Field(default="", description="Name scenarios find this camera by, to trigger conditions.")

    @field_validator("scene")
    @classmethod
    def _known_scene(cls, value: str | SceneSpec) -> str | SceneSpec:
        if isinstance(value, str) and value not in SCENES:
            raise ValueError(f"unknown scene {value!r}; known: {', '.join(SCENES)}")
        return value

    def scene_spec(self) -> SceneSpec:
        """The scene script, resolving a name."""
        if isinstance(self.scene, SceneSpec):
            return self.scene
        return SCENES[self.scene]


class SimCameraDriver(CameraDriver):
    """The real camera driver on a synthetic scene that scenarios can steer (:data:`TRIGGER_SCENES`)."""

    def __init__(self, config: SimCameraConfig) -> None:
        self.scene = config.scene_spec()
        self.sim = SimFrameSource(
            self.scene, fps=config.fps, seed=config.seed, speed=config.speed, start_ms=config.start_ms
        )
        self._forced: str | None = None
        super().__init__(config, self.sim)
        remember(config.handle, self)

    @property
    def learned(self) -> bool:
        """The box has learnt its healthy view (a tamper played before that becomes the view it knows)."""
        return self.pipeline.tamper.baseline is not None

    def trigger(self, name: str, duration_s: float | None = None) -> None:
        """Play the scene that makes the camera raise ``name``, until released (``duration_s`` is not
        used: a camera's condition lasts as long as what it sees)."""
        if name not in TRIGGER_SCENES:
            raise UnknownTriggerError(f"sim_camera has no trigger {name!r}; has {', '.join(TRIGGER_SCENES)}")
        self._forced = name
        self.sim.play(TRIGGER_SCENES[name])

    def release(self, name: str) -> None:
        """Back to the camera's own scene."""
        if name not in TRIGGER_SCENES:
            raise UnknownTriggerError(f"sim_camera has no trigger {name!r}; has {', '.join(TRIGGER_SCENES)}")
        if self._forced == name:
            self._forced = None
            self.sim.play(self.scene)


def _make_sim_camera(config: SimCameraConfig) -> CameraDriver:
    return SimCameraDriver(config)


register_driver("sim_camera", SimCameraConfig, _make_sim_camera, "simulated camera box: real pipeline, synthetic scene")
