"""Polygon zones, restricted-hour windows and the centroid tracker."""

from __future__ import annotations

from datetime import time

import pytest
from pydantic import ValidationError

from edge.camera.config import ZoneConfig
from edge.camera.tracking import CentroidTracker
from edge.camera.zones import HourWindow, Polygon, ZoneConfigError, local_time


def test_polygon_contains_concave_shape() -> None:
    ell = Polygon(((0.0, 0.0), (0.5, 0.0), (0.5, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)))
    assert ell.contains(0.25, 0.25)
    assert ell.contains(0.75, 0.75)
    assert not ell.contains(0.75, 0.25)
    assert ell.to_pixels(101, 101)[2] == (50, 50)


def test_polygon_refuses_nonsense() -> None:
    with pytest.raises(ZoneConfigError):
        Polygon(((0.0, 0.0), (1.0, 1.0)))
    with pytest.raises(ZoneConfigError):
        Polygon(((0.0, 0.0), (1.5, 0.0), (1.0, 1.0)))


def test_hour_window_wraps_midnight() -> None:
    night = HourWindow.parse("22:00-06:00")
    assert night.contains(time(23, 30)) and night.contains(time(5, 59))
    assert not night.contains(time(6, 0)) and not night.contains(time(12, 0))
    day = HourWindow.parse("08:00-24:00")
    assert day.contains(time(23, 59)) and not day.contains(time(7, 0))
    with pytest.raises(ZoneConfigError):
        HourWindow.parse("25:00-01:00")


def test_local_time_uses_the_configured_zone() -> None:
    ts = 1_700_000_000_000  # 22:13:20 UTC
    assert local_time(ts, "UTC") == time(22, 13, 20)
    assert local_time(ts, "Asia/Shanghai") == time(6, 13, 20)


def test_zone_config_fails_fast() -> None:
    with pytest.raises(ValidationError):
        ZoneConfig.model_validate({"name": "Bad Name", "polygon": [[0, 0], [1, 0], [1, 1]]})
    with pytest.raises(ValidationError):
        ZoneConfig.model_validate({"name": "gate", "polygon": [[0, 0], [1, 0], [1, 1]], "restricted_hours": ["x"]})
    with pytest.raises(ValidationError):
        ZoneConfig.model_validate({"name": "gate", "polygon": [[0, 0], [1, 0]], "surprise": 1})


def test_tracker_keeps_ids_and_measures_dwell() -> None:
    tracker = CentroidTracker(max_distance=0.1, ttl_s=1.0)
    zone = {"left": Polygon(((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)))}
    first = tracker.update([(0.10, 0.2, 0.1, 0.4), (0.70, 0.2, 0.1, 0.4)], 0)
    ids = {t.track_id for t in first}
    tracker.update_zones(zone, 0)
    for step in range(1, 11):
        tracks = tracker.update([(0.10 + 0.01 * step, 0.2, 0.1, 0.4), (0.70 - 0.01 * step, 0.2, 0.1, 0.4)], step * 500)
        tracker.update_zones(zone, step * 500)
    assert {t.track_id for t in tracks} == ids
    left = min(tracks, key=lambda t: t.box[0])
    right = max(tracks, key=lambda t: t.box[0])
    assert left.dwell_s("left", 5_000) == pytest.approx(5.0)
    assert right.dwell_s("left", 5_000) == 0.0
    assert left.hits == 11


def test_tracker_expires_unseen_tracks_and_starts_new_ids() -> None:
    tracker = CentroidTracker(max_distance=0.1, ttl_s=1.0)
    (track,) = tracker.update([(0.1, 0.1, 0.1, 0.3)], 0)
    assert tracker.update([], 900) == [track]
    assert tracker.update([], 1_100) == []
    (again,) = tracker.update([(0.1, 0.1, 0.1, 0.3)], 1_200)
    assert again.track_id != track.track_id
