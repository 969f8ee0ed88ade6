"""Agent config: validation that names the bad key, secrets redacted, CLI check-config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tests.edge.fake_driver  # noqa: F401  (registers test_counter)
from edge.cli import main
from edge.config import ConfigError, load_config, parse_config, redacted

DEPLOY = Path(__file__).resolve().parents[2] / "edge" / "deploy"


def base(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "device": {"id": "kiosk-7", "site": "site-a", "kind": "kiosk", "grid": "110105001002003"},
        "mqtt": {"url": "mqtts://broker.local", "username": "kiosk-7", "password": "s3cret"},
        "outbox": {"backend": "memory"},
        "drivers": [{"type": "test_counter", "interval_s": 5}],
        "rules": [{"metric": "value", "type": "overheat", "above": 60, "clear_below": 55, "for_s": 10}],
    }
    raw.update(overrides)
    return raw


def errors_of(raw: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    return info.value.errors


def test_valid_config_and_defaults() -> None:
    cfg = parse_config(base())
    assert cfg.mqtt.host == "broker.local"
    assert cfg.mqtt.port == 8883 and cfg.mqtt.use_tls
    assert cfg.mqtt.keepalive_s == 30 and cfg.mqtt.root == "gs" and cfg.mqtt.max_inflight == 100
    assert cfg.outbox.hist_after_s == 30
    assert cfg.drivers[0].interval_s == 5
    assert type(cfg.drivers[0]).__name__ == "CounterConfig"
    assert cfg.rules[0].to_rule().clear_below == 55


def test_misspelled_driver_key_is_named_with_its_path() -> None:
    raw = base(drivers=[{"type": "test_counter"}, {"type": "test_counter", "intervall": 3}])
    assert ("drivers[1].intervall", "unknown key") in errors_of(raw)


def test_bad_values_are_named() -> None:
    raw = base(mqtt={"url": "mqtt://x", "keepalive_s": 0})
    assert ("mqtt.keepalive_s", "must be > 0") in errors_of(raw)
    errs = dict(errors_of(base(device={"id": "Bad/ID", "site": "s", "kind": "toaster"})))
    assert "device.id" in errs and "device.kind" in errs
    errs = dict(errors_of(base(mqtt={"url": "http://x"})))
    assert "url must look like" in errs["mqtt"]
    errs = dict(errors_of(base(drivers=[{"type": "no_such_driver"}])))
    assert "unknown driver type" in errs["drivers[0].type"]
    errs = dict(errors_of(base(rules=[{"metric": "v", "type": "t"}])))
    assert "exactly one of above or below" in errs["rules[0]"]


def test_all_errors_listed_at_once() -> None:
    raw = base(mqtt={"url": "mqtt://x", "keepalive_s": -1, "colour": 1}, outbox={"max_bytes": 0})
    paths = {p for p, _ in errors_of(raw)}
    assert {"mqtt.keepalive_s", "mqtt.colour", "outbox.max_bytes"} <= paths


def test_password_redacted_and_password_file(tmp_path: Path) -> None:
    cfg = parse_config(base())
    assert "s3cret" not in repr(cfg) and "s3cret" not in str(redacted(cfg))
    assert redacted(cfg)["mqtt"]["password"] == "***"
    assert cfg.mqtt.secret() == "s3cret"
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    cfg = parse_config(base(mqtt={"url": "mqtt://x", "username": "u", "password_file": str(secret)}))
    assert cfg.mqtt.secret() == "from-file"
    assert "password or password_file" in str(
        errors_of(base(mqtt={"url": "mqtt://x", "password": "a", "password_file": str(secret)}))
    )


def test_check_config_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text(
        '[device]\nid = "s1"\nsite = "a"\nkind = "sensor"\n[outbox]\nbackend = "memory"\n'
        '[[drivers]]\ntype = "test_counter"\n'
    )
    assert main(["edge", "check-config", str(good)]) == 0
    assert "ok" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(good.read_text() + "intervall = 3\n")
    assert main(["edge", "check-config", str(bad)]) == 2
    assert "drivers[0].intervall: unknown key" in capsys.readouterr().err
    assert main(["edge", "check-config", str(tmp_path / "missing.toml")]) == 2
    broken = tmp_path / "broken.toml"
    broken.write_text("[device\n")
    assert main(["edge", "check-config", str(broken)]) == 2


@pytest.mark.parametrize("name", ["camera-box.toml", "kiosk.toml", "sensor-gateway.toml"])
def test_example_configs_pass(name: str) -> None:
    cfg = load_config(DEPLOY / name)
    assert cfg.drivers, "every example configures at least one driver"
