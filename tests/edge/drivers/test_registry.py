"""Conformance: every driver module registers itself, documents every field, and its sample config validates."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from edge.drivers import get_driver_spec

SAMPLES = Path(__file__).resolve().parents[3] / "edge" / "drivers" / "samples"
KEYS = ["system", "modbus", "kiosk", "command", "sim_sensor", "sim_kiosk"]


def _undocumented(model: type[BaseModel], path: str = "") -> list[str]:
    missing = []
    for name, info in model.model_fields.items():
        if not info.description:
            missing.append(f"{path}{name}")
        for arg in getattr(info.annotation, "__args__", ()) or (info.annotation,):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                missing += _undocumented(arg, f"{path}{name}.")
    return missing


@pytest.mark.parametrize("key", KEYS)
def test_registered_documented_and_sample_validates(key: str) -> None:
    spec = get_driver_spec(key)
    assert spec.key == key and spec.description
    assert _undocumented(spec.config_model) == []
    doc = tomllib.loads((SAMPLES / f"{key}.toml").read_text())
    (table,) = doc["drivers"]
    config = spec.config_model.model_validate(table)
    assert config.model_dump()["type"] == key
