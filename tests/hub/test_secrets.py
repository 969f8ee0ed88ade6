"""Secrets: from env or ``*_file``, never shown, placeholders refused outside demo mode (hub and edge)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from edge.config import ConfigError as EdgeConfigError
from edge.config import parse_config
from hub.cli import check_config
from hub.config import ConfigError, HubSettings, load_settings
from hub.service import Hub

REAL = "4f9c2b7e-real-token-1b2c"


def _settings(tmp_path: Path, environ: dict[str, str], **overrides: object) -> HubSettings:
    return load_settings(None, {"data_dir": tmp_path, **overrides}, environ=environ)


def test_secret_from_env_is_masked_everywhere(tmp_path: Path) -> None:
    s = _settings(tmp_path, {"GRIDSENTINEL_SERIES_TOKEN": REAL})
    assert s.series_token is not None and s.series_token.get_secret_value() == REAL
    assert REAL not in repr(s) and REAL not in str(s.model_dump())
    assert s.series_settings().token == REAL  # handed on to the series package unwrapped


def test_secret_from_file(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(REAL + "\n")
    s = _settings(tmp_path, {"GRIDSENTINEL_SERIES_TOKEN_FILE": str(path)})
    assert s.series_token is not None and s.series_token.get_secret_value() == REAL
    with pytest.raises(ConfigError, match="series_token_file: cannot read"):
        _settings(tmp_path, {}, series_token_file=str(tmp_path / "missing"))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        _settings(tmp_path, {}, series_password_file=str(tmp_path / "empty"))


def test_value_and_file_together_are_refused_without_echoing_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("other\n")
    with pytest.raises(ConfigError) as err:
        _settings(tmp_path, {"GRIDSENTINEL_SERIES_TOKEN": REAL}, series_token_file=str(path))
    assert "not both" in str(err.value) and REAL not in str(err.value)


@pytest.mark.parametrize("placeholder", ["changeme", "CHANGEME", " secret ", "password", "placeholder", ""])
def test_placeholder_refused_outside_demo_mode(tmp_path: Path, placeholder: str) -> None:
    with pytest.raises(ValueError, match="series_password is empty or a placeholder"):
        HubSettings(series_password=SecretStr(placeholder), series_username="u")
    assert HubSettings(series_password=SecretStr(placeholder), series_username="u", demo=True).demo


def test_placeholder_in_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("changeme\n")
    with pytest.raises(ConfigError, match="series_token is empty or a placeholder"):
        _settings(tmp_path, {}, series_token_file=str(path))


def test_check_config_masks_file_sourced_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "pw"
    secret.write_text(REAL + "\n")
    conf = tmp_path / "hub.toml"
    conf.write_text(f'[series]\nusername = "gs"\npassword_file = "{secret}"\n')

    class Args:
        file = conf

    assert check_config(Args()) == 0  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert REAL not in out and "series_password = ***" in out


def test_hub_run_logs_no_secret(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    s = _settings(tmp_path, {"GRIDSENTINEL_SERIES_TOKEN": REAL}, http_port=0, broker_port=0)
    hub = Hub(s, plugins=())
    try:
        hub.start()
    finally:
        hub.stop()
    assert "hub up" in caplog.text and REAL not in caplog.text


# ------------------------------------------------------------------ edge


def _edge(mqtt: dict[str, object]) -> dict[str, object]:
    return {"device": {"id": "k1", "site": "s", "kind": "kiosk"}, "mqtt": {"url": "mqtt://x", **mqtt}}


def test_edge_placeholder_password_refused() -> None:
    for bad in ("changeme", "", "Password"):
        with pytest.raises(EdgeConfigError, match="mqtt: password is empty or a placeholder"):
            parse_config(_edge({"username": "k1", "password": bad}))


def test_edge_password_file_problems_are_named(tmp_path: Path) -> None:
    cfg = parse_config(_edge({"username": "k1", "password_file": str(tmp_path / "missing")}))
    with pytest.raises(ValueError, match=r"mqtt\.password_file .*FileNotFoundError"):
        cfg.mqtt.secret()
    (tmp_path / "empty").write_text("")
    cfg = parse_config(_edge({"username": "k1", "password_file": str(tmp_path / "empty")}))
    with pytest.raises(ValueError, match="is empty"):
        cfg.mqtt.secret()
