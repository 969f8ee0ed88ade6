"""Simulated camera scenes: the HOG people detector really sees the synthetic people."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.camera.people import PeopleDetector, SearchRegion, expand
from simulators.camera import SCENES, SceneRenderer, SceneSpec, WalkerSpec, draw_person, make_background


def test_hog_detects_rendered_people_across_the_frame() -> None:
    detector = PeopleDetector()
    background = make_background(seed=5)
    trials = hits = 0
    for x in (0.2, 0.35, 0.5, 0.65, 0.8):
        for phase in (0.0, 1.5, 3.0, 4.5):
            for height in (200, 230):
                image = background.copy()
                draw_person(image, x * 640, 432, height, phase=phase, shade=45)
                gray = cv2.cvtColor(cv2.resize(image, (320, 240), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
                blob = (int(x * 320) - 20, 100, 40, 120)  # a motion blob
                found = detector.detect(gray, [SearchRegion(expand(blob, 96, 320, 240), 1.0)])
                trials += 1
                hits += any(abs(bx + bw / 2 - x * 320) < 20 for bx, _by, bw, _bh in found)
    assert hits >= 0.9 * trials
    empty = cv2.cvtColor(cv2.resize(background, (320, 240), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    assert detector.detect(empty, [SearchRegion((0, 0, 320, 240), 1.0)]) == []


def test_walker_follows_its_path() -> None:
    walker = WalkerSpec(start_s=2, end_s=12, path=[(0.0, 0.9), (0.5, 0.9), (0.5, 0.4)])
    assert walker.foot_at(1.0) is None and walker.foot_at(12.0) is None
    start = walker.foot_at(2.0)
    middle = walker.foot_at(7.0)
    assert start is not None and start[:2] == (0.0, 0.9)
    assert middle is not None and middle[:2] == pytest.approx((0.5, 0.9))


def test_scene_is_deterministic_and_scripts_faults() -> None:
    spec = SceneSpec.model_validate(
        {"duration_s": 10, "noise_sigma": 2, "tamper": [{"kind": "outage", "start_s": 4, "end_s": 5}]}
    )
    a, b = SceneRenderer(spec, seed=9), SceneRenderer(spec, seed=9)
    fa, fb = a.render(1.0), b.render(1.0)
    assert fa is not None and fb is not None and np.array_equal(fa, fb)
    assert a.render(4.5) is None
    covered = SceneRenderer(SCENES["covered"]).render(15.0)
    assert covered is not None and float(covered.mean()) < 20
