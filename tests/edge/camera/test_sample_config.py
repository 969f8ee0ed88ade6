"""The shipped sample camera config is valid for the real agent config loader."""

from __future__ import annotations

from pathlib import Path

import edge.camera
from edge.camera.config import CameraConfig
from edge.camera.redact_cli import load_privacy_config
from edge.config import load_config


def test_sample_config_loads() -> None:
    path = Path(edge.camera.__file__).parent / "sample.toml"
    config = load_config(path)
    (driver,) = config.drivers
    assert isinstance(driver, CameraConfig)
    assert [z.name for z in driver.zones] == ["gate", "square"]
    assert driver.privacy.on_failure == "pixelate" and len(driver.privacy.masks) == 1
    assert driver.analytics.timezone == "Asia/Shanghai"


def test_redact_reads_privacy_from_an_agent_config() -> None:
    privacy = load_privacy_config(Path(edge.camera.__file__).parent / "sample.toml")
    assert privacy.masks == [[(0.0, 0.0), (1.0, 0.0), (1.0, 0.25), (0.0, 0.25)]]
