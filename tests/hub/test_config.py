"""Hub settings: precedence file < env < flags, fail-fast validation, and the check-config command."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.cli import main
from hub.config import ConfigError, HubSettings, load_settings


def test_precedence_file_env_flags(tmp_path: Path) -> None:
    conf = tmp_path / "hub.toml"
    conf.write_text(
        'http_port = 9000\nroot = "city"\n[series]\nbackend = "influxdb-v1"\n'
        'url = "http://127.0.0.1:8086"\ndb = "gs"\nbatch_points = 777\n'
    )
    env = {"GRIDSENTINEL_HTTP_PORT": "9100", "GRIDSENTINEL_SHARE_GROUP": "hubs"}
    s = load_settings(conf, {"http_port": 9200, "mqtt_url": None}, env)
    assert (s.http_port, s.root, s.share_group, s.mqtt_url) == (9200, "city", "hubs", None)
    assert load_settings(conf, {}, env).http_port == 9100
    series = s.series_settings()
    assert (series.backend, series.url, series.db) == ("influxdb-v1", "http://127.0.0.1:8086", "gs")
    assert series.batch_points == 777


@pytest.mark.parametrize(
    "values",
    [{"http_port": 70000}, {"mqtt_url": "http://x"}, {"share_group": "Bad/Group"}, {"nonsense": 1}, {"root": "a+b"}],
)
def test_nonsense_fails_fast(values: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        load_settings(None, values, {})


def test_an_unknown_key_in_the_file_is_refused_by_name_with_the_closest_one(tmp_path: Path) -> None:
    conf = tmp_path / "hub.toml"
    conf.write_text("htp_port = 9000\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'htp_port' \(did you mean 'http_port'\?\)"):
        load_settings(conf, {}, {})


def test_environment_lists_and_empty_values(tmp_path: Path) -> None:
    env = {
        "GRIDSENTINEL_OPEN311_PUBLIC_CATEGORIES": "fire_safety, environment_sanitation",
        "GRIDSENTINEL_HTTP_PORT": "",  # empty: as if unset
        "GRIDSENTINEL_ADMIN_TOKEN": "not-a-setting",  # other GRIDSENTINEL_ variables are not settings
    }
    s = load_settings(None, {"data_dir": tmp_path}, env)
    assert (s.open311_public_categories, s.http_port) == (("fire_safety", "environment_sanitation"), 8080)
    # a model built from values takes exactly those, whatever the environment says
    assert HubSettings(data_dir=tmp_path).http_port == 8080


def test_defaults_and_addresses(tmp_path: Path) -> None:
    s = HubSettings(data_dir=tmp_path, mqtt_url="mqtt://127.0.0.1:1999")
    assert s.mqtt_address() == ("127.0.0.1", 1999)
    assert s.resolved_state_url() == f"sqlite:///{tmp_path / 'state.db'}"
    assert s.series_settings().backend == "embedded"


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[hub]\nhttp_port = 8081\n[series]\nbackend = "influxdb-v2"\nurl = "http://127.0.0.1:8086"\n'
                    'token = "secret-token"\nbucket = "gs"\n')  # fmt: skip
    assert main(["hub", "check-config", str(good)]) == 0
    out = capsys.readouterr().out
    assert "http_port = 8081" in out and "series_token = ***" in out and "secret-token" not in out
    bad = tmp_path / "bad.toml"
    bad.write_text('[series]\nbackend = "influxdb-v2"\n')  # no url/bucket/token
    assert main(["hub", "check-config", str(bad)]) == 2
    assert "invalid" in capsys.readouterr().err
