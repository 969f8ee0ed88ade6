"""min_person_px: how far searched regions are scaled, per zone, and what check-config warns about."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from edge.camera.config import CameraConfigBase, ZoneConfig
from edge.camera.scale import MAX_UPSCALE, SMALLEST_PERSON_PX, ScalePlan, detect_scale, geometry_warnings
from edge.cli import main

FAR = {"name": "far", "polygon": [(0, 0), (1, 0), (1, 0.3), (0, 0.3)], "min_person_px": 50}
NEAR = {"name": "near", "polygon": [(0, 0.6), (1, 0.6), (1, 1), (0, 1)], "min_person_px": 200}


def test_scale_brings_the_smallest_person_to_the_hog_window() -> None:
    assert detect_scale(96) == pytest.approx(1.0)
    assert detect_scale(60) == pytest.approx(1.6)
    assert detect_scale(192) == pytest.approx(0.5)
    assert detect_scale(10) == MAX_UPSCALE  # capped: more would only blow up blur


def test_zone_value_governs_its_part_of_the_frame() -> None:
    zones = [ZoneConfig.model_validate(FAR), ZoneConfig.model_validate(NEAR)]
    plan = ScalePlan(80, zones)
    assert plan.smallest_px == 50
    assert plan.min_person_px((0.1, 0.05, 0.2, 0.25)) == 50  # inside the far zone only
    assert plan.min_person_px((0.1, 0.7, 0.2, 0.95)) == 200  # inside the near zone only
    assert plan.min_person_px((0.1, 0.35, 0.2, 0.55)) == 80  # in no zone: the camera's value
    assert plan.min_person_px((0.1, 0.5, 0.2, 0.7)) == 80  # straddles near and no zone: the finer


def test_config_fields_are_validated_and_documented() -> None:
    config = CameraConfigBase.model_validate({"analytics": {"min_person_px": 120, "stream_height": 1080}})
    assert config.analytics.min_person_px == 120
    assert CameraConfigBase().analytics.min_person_px == 80
    with pytest.raises(ValidationError):
        ZoneConfig.model_validate({**FAR, "min_person_px": 0})
    with pytest.raises(ValidationError):
        CameraConfigBase.model_validate({"analytics": {"min_person": 80}})
    for model in (ZoneConfig, type(config.analytics)):
        assert model.model_fields["min_person_px"].description


def test_geometry_warnings() -> None:
    ok = CameraConfigBase.model_validate({"zones": [NEAR], "analytics": {"stream_height": 1080}})
    assert geometry_warnings(ok) == []
    tiny = CameraConfigBase.model_validate({"analytics": {"min_person_px": 30}})
    assert any(f"{SMALLEST_PERSON_PX:.0f} px" in w for w in geometry_warnings(tiny))
    high = {"name": "sky", "polygon": [(0, 0), (1, 0), (1, 0.1), (0, 0.1)], "min_person_px": 150}
    cut = CameraConfigBase.model_validate({"zones": [high], "analytics": {"stream_height": 720}})
    assert any("zone sky" in w and "150 px" in w for w in geometry_warnings(cut))
    huge = CameraConfigBase.model_validate({"analytics": {"min_person_px": 800, "stream_height": 720}})
    assert any("taller than the frame" in w for w in geometry_warnings(huge))


def test_check_config_warns_but_accepts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = (Path(__file__).resolve().parents[3] / "edge" / "camera" / "sample.toml").read_text()
    good = tmp_path / "good.toml"
    good.write_text(sample)
    assert main(["edge", "check-config", str(good)]) == 0
    assert "warning" not in capsys.readouterr().err
    sky = '[[drivers.zones]]\nname = "sky"\npolygon = [[0, 0], [1, 0], [1, 0.05], [0, 0.05]]\nmin_person_px = 120\n'
    bad = tmp_path / "bad.toml"
    bad.write_text(
        sample.replace("[drivers.privacy]", sky + "\n[drivers.privacy]").replace(
            "stream_height = 1080", "stream_height = 720"
        )
    )
    assert main(["edge", "check-config", str(bad)]) == 0
    err = capsys.readouterr().err
    assert "warning: drivers[0] (camera): zone sky" in err and "120 px" in err
