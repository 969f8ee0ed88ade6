"""Deployment files: the systemd unit's restart, watchdog and hardening settings."""

from __future__ import annotations

import configparser
import subprocess
from pathlib import Path

from pydantic import BaseModel

from edge.config import DeviceConfig, MqttConfig, OutboxConfig, RuleConfig, TlsConfig
from tests.servers import require_binary

UNIT = Path(__file__).resolve().parents[2] / "edge" / "deploy" / "gridsentinel-edge.service"


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


def test_unit_restarts_watchdogs_and_hardens() -> None:
    service = unit()["Service"]
    assert service["Type"] == "notify" and service["Restart"] == "always"
    assert int(service["WatchdogSec"]) > 0
    assert "edge run --config" in service["ExecStart"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "StateDirectory": "gridsentinel",
        "ReadWritePaths": "/var/lib/gridsentinel",
    }.items():
        assert service[key] == value, key


def test_unit_passes_systemd_analyze() -> None:
    cmd = [require_binary("systemd-analyze", "systemd"), "verify", str(UNIT)]
    out = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=60)
    problems = [line for line in out.stderr.splitlines() if line.strip() and "is not executable" not in line]
    assert problems == []


def test_every_config_key_is_documented() -> None:

    docs = (UNIT.parents[2] / "docs" / "edge.md").read_text()
    sections: list[tuple[type[BaseModel], str]] = [
        (DeviceConfig, "device."),
        (MqttConfig, "mqtt."),
        (TlsConfig, "mqtt.tls."),
        (OutboxConfig, "outbox."),
        (RuleConfig, "rules[]."),
    ]
    missing = [
        f"{prefix}{name}"
        for model, prefix in sections
        for name in model.model_fields
        if name != "tls" and f"`{prefix}{name}`" not in docs
    ]
    assert missing == []
    for model, _ in sections:
        assert all(field.description for field in model.model_fields.values()), model.__name__
