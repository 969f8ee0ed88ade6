"""SeriesSettings validation and the explicit backend registry."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from hub.series.embedded import EmbeddedStore
from hub.series.influx_v1 import InfluxV1Store
from hub.series.influx_v2 import InfluxV2Store
from hub.series.settings import BACKENDS, EMBEDDED_FILE, SeriesSettings, open_store


def test_every_backend_literal_is_registered() -> None:
    backend_field = SeriesSettings.model_fields["backend"]
    assert set(BACKENDS) == set(backend_field.annotation.__args__)  # type: ignore[union-attr]


def test_default_is_embedded_in_the_data_dir(tmp_path: Path) -> None:
    store = open_store(SeriesSettings(), tmp_path)
    assert isinstance(store, EmbeddedStore) and store.path == tmp_path / EMBEDDED_FILE
    store.close()


def test_influx_backends_open_without_contacting_the_server(tmp_path: Path) -> None:
    v1 = open_store(SeriesSettings(backend="influxdb-v1", url="http://127.0.0.1:9", db="gs"), tmp_path)
    v2 = open_store(
        SeriesSettings(backend="influxdb-v2", url="http://127.0.0.1:9", token="t", org="o", bucket="b"), tmp_path
    )
    assert isinstance(v1, InfluxV1Store) and isinstance(v2, InfluxV2Store)
    v1.close()
    v2.close()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"backend": "influxdb-v1", "db": "gs"},
        {"backend": "influxdb-v1", "url": "http://127.0.0.1:8086"},
        {"backend": "influxdb-v2", "url": "http://127.0.0.1:8086", "token": "t"},
        {"backend": "influxdb-v2", "url": "http://127.0.0.1:8086", "bucket": "b"},
        {"backend": "influxdb-v1", "url": "127.0.0.1:8086", "db": "gs"},
        {"backend": "influxdb-v1", "url": "http://x", "db": "gs", "username": "u"},
        {"backend": "timescale"},
        {"bucket_name": "typo"},
        {"batch_points": 0},
        {"flush_interval_s": 0},
        {"spool_max_bytes": 10},
    ],
)
def test_nonsense_fails_fast(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SeriesSettings(**kwargs)  # type: ignore[arg-type]
