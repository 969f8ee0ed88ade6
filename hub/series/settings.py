"""Series settings and the explicit backend registry: config picks the store, nothing else does."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.series.base import SeriesStore
from hub.series.embedded import EmbeddedStore
from hub.series.influx_v1 import InfluxV1Store
from hub.series.influx_v2 import InfluxV2Store

logger = logging.getLogger(__name__)

Backend = Literal["embedded", "influxdb-v1", "influxdb-v2"]

DEFAULT_BATCH_POINTS: Final = 5000
DEFAULT_FLUSH_INTERVAL_S: Final = 0.2
DEFAULT_SPOOL_MAX_BYTES: Final = 512 * 1024 * 1024
DEFAULT_TIMEOUT_S: Final = 10.0
#: File name of the embedded store inside the hub's data dir.
EMBEDDED_FILE: Final = "series.sqlite3"


class SeriesSettings(BaseModel):
    """Where time series go and how the writer batches them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Backend = Field(
        default="embedded", description="embedded (SQLite in the data dir), influxdb-v1 or influxdb-v2"
    )
    url: str | None = Field(
        default=None, description="InfluxDB base URL, e.g. http://127.0.0.1:8086 (influxdb backends)"
    )
    token: str | None = Field(default=None, description="API token (influxdb-v2)")
    org: str | None = Field(default=None, description="organization (influxdb-v2; ignored by 1.8+/3.x compat)")
    bucket: str | None = Field(default=None, description="bucket (influxdb-v2); also the db of InfluxQL reads")
    db: str | None = Field(default=None, description="database (influxdb-v1)")
    rp: str | None = Field(default=None, description="retention policy (influxdb-v1; empty = the db default)")
    username: str | None = Field(default=None, description="user (influxdb-v1 with auth enabled)")
    password: str | None = Field(default=None, description="password (influxdb-v1 with auth enabled)")
    path: Path | None = Field(default=None, description="embedded store file; default DATA_DIR/series.sqlite3")
    timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, gt=0, le=300, description="HTTP timeout per request")
    batch_points: int = Field(default=DEFAULT_BATCH_POINTS, ge=1, le=1_000_000, description="points per write batch")
    flush_interval_s: float = Field(
        default=DEFAULT_FLUSH_INTERVAL_S, gt=0, le=60, description="max time a point waits for its batch to fill"
    )
    spool_max_bytes: int = Field(
        default=DEFAULT_SPOOL_MAX_BYTES, ge=1024 * 1024, description="disk spool bound while the store is down"
    )

    @model_validator(mode="after")
    def _check_backend(self) -> SeriesSettings:
        """Fail fast when a backend lacks what it needs."""
        if self.backend != "embedded" and not self.url:
            raise ValueError(f"series backend {self.backend!r} needs a url")
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"series url {self.url!r} must start with http:// or https://")
        if self.backend == "influxdb-v1" and not self.db:
            raise ValueError("series backend 'influxdb-v1' needs db")
        if self.backend == "influxdb-v2":
            if not self.bucket:
                raise ValueError("series backend 'influxdb-v2' needs bucket")
            if not self.token:
                raise ValueError("series backend 'influxdb-v2' needs token")
        if (self.username is None) != (self.password is None):
            raise ValueError("series username and password go together")
        return self


StoreFactory = Callable[[SeriesSettings, Path], SeriesStore]


def _open_embedded(settings: SeriesSettings, data_dir: Path) -> SeriesStore:
    return EmbeddedStore(settings.path or data_dir / EMBEDDED_FILE)


def _open_v1(settings: SeriesSettings, data_dir: Path) -> SeriesStore:
    assert settings.url is not None and settings.db is not None  # checked by the validator
    return InfluxV1Store(
        settings.url,
        settings.db,
        rp=settings.rp,
        username=settings.username,
        password=settings.password,
        timeout_s=settings.timeout_s,
    )


def _open_v2(settings: SeriesSettings, data_dir: Path) -> SeriesStore:
    assert settings.url is not None and settings.bucket is not None and settings.token is not None
    return InfluxV2Store(
        settings.url, settings.token, settings.org or "", settings.bucket, timeout_s=settings.timeout_s
    )


#: backend name -> factory; the one place a backend is chosen.
BACKENDS: Final[dict[str, StoreFactory]] = {
    "embedded": _open_embedded,
    "influxdb-v1": _open_v1,
    "influxdb-v2": _open_v2,
}


def open_store(settings: SeriesSettings, data_dir: Path) -> SeriesStore:
    """Open the store ``settings.backend`` names (embedded files live under ``data_dir``)."""
    factory = BACKENDS[settings.backend]
    store = factory(settings, Path(data_dir))
    logger.info("series store: %s", store.name)
    return store
