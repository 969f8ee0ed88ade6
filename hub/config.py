"""Hub settings: defaults, then an optional TOML file, then ``GRIDSENTINEL_*`` env, then CLI flags.

:class:`HubSettings` is a pydantic-settings model: :func:`load_settings` layers its sources
(flags > environment > TOML file > defaults); a model built directly from values
(``HubSettings(data_dir=...)``, as tests and the demo do) takes exactly those values. Every
field has a description; unknown keys are refused (``extra="forbid"``), so a typo in a config
file fails fast, by name, instead of being ignored. Series settings are
kept flat here (``series_backend``, ``series_url``, ...) and turned into the
series package's ``SeriesSettings`` by :meth:`HubSettings.series_settings`.

Secrets (:data:`SECRET_FIELDS`) come from the file, the environment
(``GRIDSENTINEL_SERIES_TOKEN``) or, better, a file named by ``<field>_file``
(``series_token_file``, e.g. a systemd or Kubernetes secret mount); they are
held as ``SecretStr`` so no repr, dump or log line shows them. Outside demo
mode the hub refuses a secret that is empty or a placeholder (``changeme``...).
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from edge.vocabulary import CATEGORY_NAMES, require_known
from edge.wire import DEFAULT_ROOT, check_id
from hub.db import sqlite_url
from hub.series.settings import SeriesSettings

ENV_PREFIX: Final = "GRIDSENTINEL_"
DEFAULT_DATA_DIR: Final = Path("./gridsentinel-data")
DEFAULT_CLIENT_ID: Final = "gridsentinel-hub"

#: Settings that hold secrets; each has a ``<name>_file`` twin that names a file holding it.
SECRET_FIELDS: Final = ("series_token", "series_password", "mqtt_password")
#: Values that are never real secrets (compared case-insensitively, ignoring surrounding space).
PLACEHOLDER_SECRETS: Final = frozenset(
    {
        "",
        "changeme",
        "change-me",
        "change_me",
        "changethis",
        "secret",
        "password",
        "passwd",
        "placeholder",
        "token",
        "admin",
        "default",
        "example",
        "xxx",
        "todo",
        "my-token",
        "my-super-secret-auth-token",
    }
)

SeriesBackend = Literal["embedded", "influxdb-v1", "influxdb-v2"]
#: ``series_<name>`` fields passed on to the series package's ``SeriesSettings`` when set.
SERIES_FIELDS: Final = (
    "url",
    "token",
    "org",
    "bucket",
    "db",
    "rp",
    "username",
    "password",
    "timeout_s",
    "batch_points",
    "flush_interval_s",
    "spool_max_bytes",
)


class ConfigError(ValueError):
    """Settings that cannot be used; ``source`` says where they came from."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source


class _Layers:
    """Where :func:`load_settings` reads from, for the duration of one call (a context variable, so
    concurrent loads and directly built models never see each other's sources)."""

    def __init__(self, config_file: Path | None, environ: Mapping[str, str]) -> None:
        self.config_file, self.environ = config_file, environ


_LAYERS: ContextVar[_Layers | None] = ContextVar("hub_settings_layers", default=None)


class _Environment(EnvSettingsSource):
    """``GRIDSENTINEL_*`` variables from the mapping :func:`load_settings` was given."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


class _TomlFile(PydanticBaseSettingsSource):
    """The settings file: top-level keys or a ``[hub]`` table, plus an optional ``[series]`` table."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self._values = {} if path is None else file_values(path)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)  # every key, known or not: the model refuses unknown ones by name


class HubSettings(BaseSettings):
    """Everything ``gridsentinel hub run`` needs to start."""

    # hide_input_in_errors: a validation error must never echo a secret it was given
    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        case_sensitive=False,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (the values given) > environment > TOML file > defaults, inside :func:`load_settings`;
        only the values given elsewhere."""
        layers = _LAYERS.get()
        if layers is None:
            return (init_settings,)
        return (init_settings, _Environment(settings_cls, layers.environ), _TomlFile(settings_cls, layers.config_file))

    mqtt_url: str | None = Field(
        default=None, description="Broker URL mqtt://host:port; none starts the embedded broker on 127.0.0.1"
    )
    mqtt_username: str | None = Field(
        default=None, description="User name of the hub on the external broker (see 'hub devices provision-hub')"
    )
    mqtt_password: SecretStr | None = Field(
        default=None, description="Password of the hub on the external broker (prefer mqtt_password_file)"
    )
    mqtt_password_file: Path | None = Field(default=None, description="File holding the hub's MQTT password")
    mqtt_ca_file: Path | None = Field(
        default=None, description="CA certificate for an mqtts:// broker (default: the system's trust store)"
    )
    broker_auth: bool = Field(
        default=False,
        description="The embedded broker admits only provisioned devices (client id = user name) within their topics",
    )
    broker_host: str = Field(default="127.0.0.1", description="Listen address of the embedded broker")
    broker_port: int = Field(
        default=1883, ge=0, le=65535, description="Listen port of the embedded broker (0 = any free)"
    )
    http_host: str = Field(default="127.0.0.1", description="Address the REST API and operator page listen on")
    http_port: int = Field(default=8080, ge=0, le=65535, description="Port of the REST API and operator page")
    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR, description="Directory for the state DB, embedded series and spool"
    )
    root: str = Field(default=DEFAULT_ROOT, description="Topic root (first topic level)")
    share_group: str | None = Field(
        default=None, description="MQTT shared-subscription group for hub replicas; none = plain"
    )
    client_id: str = Field(default=DEFAULT_CLIENT_ID, description="Fixed MQTT client id (keys the persistent session)")
    cluster_url: str | None = Field(
        default=None,
        description="NATS servers of a district cluster (nats://a:4222,nats://b:4222); ingest from JetStream "
        "partitions instead of an MQTT session, client_id naming the replica (docs/cluster.md)",
    )
    cluster_partitions: int = Field(
        default=12, ge=1, le=1024, description="Partitions of the cluster's NATS mappings (must match its config)"
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keepalive of the hub's own connection")
    state_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the state DB; none = SQLite under data_dir"
    )
    series_backend: SeriesBackend = Field(default="embedded", description="Time-series backend")
    series_url: str | None = Field(default=None, description="InfluxDB URL (http://127.0.0.1:8086)")
    series_token: SecretStr | None = Field(default=None, description="InfluxDB v2 API token (prefer series_token_file)")
    series_token_file: Path | None = Field(default=None, description="File holding the InfluxDB v2 token (first line)")
    series_org: str | None = Field(default=None, description="InfluxDB v2 organisation")
    series_bucket: str | None = Field(default=None, description="InfluxDB v2 bucket")
    series_db: str | None = Field(default=None, description="InfluxDB v1 database")
    series_rp: str | None = Field(default=None, description="InfluxDB v1 retention policy")
    series_username: str | None = Field(default=None, description="InfluxDB v1 user name")
    series_password: SecretStr | None = Field(
        default=None, description="InfluxDB v1 password (prefer series_password_file)"
    )
    series_password_file: Path | None = Field(
        default=None, description="File holding the InfluxDB v1 password (first line)"
    )
    series_timeout_s: float | None = Field(default=None, gt=0, description="HTTP timeout per series request")
    series_batch_points: int | None = Field(default=None, ge=1, description="Points per series write batch")
    series_flush_interval_s: float | None = Field(default=None, gt=0, description="Max wait of a point for its batch")
    series_spool_max_bytes: int | None = Field(
        default=None, ge=1, description="Disk spool bound while the store is down"
    )
    gap_grace_s: float = Field(
        default=2.0, gt=0, description="Seconds a seq gap may stay open before a resend is requested"
    )
    gap_timeout_s: float = Field(
        default=30.0, gt=0, description="Seconds until an unfilled gap becomes a data-loss record"
    )
    command_ack_margin_s: float = Field(
        default=10.0, gt=0, description="Seconds a command's ack may take beyond its ttl before it is timed_out"
    )
    stale_factor: float = Field(
        default=3.0, gt=1, description="A device is stale after this many heartbeat intervals unheard"
    )
    default_interval_s: float = Field(
        default=60.0, gt=0, description="Heartbeat interval assumed when a birth gives none"
    )
    flap_window_s: float = Field(default=60.0, gt=0, description="Window for counting a device's health changes")
    flap_max_changes: int = Field(default=6, ge=2, description="Health changes allowed per window before damping")
    rate_limit_per_s: float = Field(
        default=200.0, ge=0, description="Messages per second each device may send on average (0 = no limit)"
    )
    rate_limit_burst: float = Field(
        default=20_000.0, ge=1, description="Messages a device may send at once (room for an outbox replay)"
    )
    deadletter_cap: int = Field(
        default=10_000, ge=10, description="Dead letters kept; the oldest are purged beyond this"
    )
    snapshot_retention_days: float = Field(
        default=30.0, gt=0, description="Days a snapshot (evidence image and its side file) is kept after its event"
    )
    access_log_retention_days: float = Field(
        default=365.0, gt=0, description="Days an evidence access record is kept in the state DB"
    )
    open311_public_categories: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Categories of device- and operator-raised cases that anonymous Open311 readers may see "
        "(comma-separated in the environment); resident-filed requests are always listed, public fields only",
    )
    open311_posts_per_hour: float = Field(
        default=30.0, ge=0, description="Anonymous Open311 requests one client address may file per hour (0 = off)"
    )
    open311_post_burst: int = Field(
        default=10, ge=1, description="Anonymous Open311 requests a client address may file at once"
    )
    demo: bool = Field(default=False, description="Demo mode (seeded data, relaxed checks)")

    @field_validator("root", "client_id")
    @classmethod
    def _id_like(cls, value: str) -> str:
        return check_id(value, "id")

    @field_validator("open311_public_categories", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):  # from the environment: "fire_safety,environment_sanitation"
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("open311_public_categories")
    @classmethod
    def _known_categories(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(require_known("category", c, CATEGORY_NAMES) for c in value)

    @field_validator("share_group")
    @classmethod
    def _group(cls, value: str | None) -> str | None:
        return None if value is None else check_id(value, "share_group")

    @field_validator("mqtt_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "tcp", "mqtts") or not parts.hostname:
            raise ValueError(f"mqtt_url {value!r} must look like mqtt://host:port or mqtts://host:port")
        return value

    @model_validator(mode="after")
    def _secrets(self) -> HubSettings:
        for name in SECRET_FIELDS:
            value: SecretStr | None = getattr(self, name)
            path: Path | None = getattr(self, f"{name}_file")
            if value is not None and path is not None:
                raise ValueError(f"{name}: give {name} or {name}_file, not both")
            if path is not None:
                value = SecretStr(read_secret_file(path, f"{name}_file"))
                object.__setattr__(self, name, value)  # frozen model: resolved once, here
            if value is not None and not self.demo and is_placeholder(value.get_secret_value()):
                raise ValueError(
                    f"{name} is empty or a placeholder; set a real secret (or run in demo mode); "
                    f"the hub refuses to start with it"
                )
        return self

    def mqtt_address(self) -> tuple[str, int]:
        """(host, port) of the external broker; only valid when ``mqtt_url`` is set."""
        if self.mqtt_url is None:
            raise ConfigError("mqtt_url", "no external broker configured")
        parts = urlsplit(self.mqtt_url)
        return parts.hostname or "127.0.0.1", parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    def mqtt_tls(self) -> bool:
        """True when the external broker is reached over TLS (``mqtts://``)."""
        return self.mqtt_url is not None and urlsplit(self.mqtt_url).scheme == "mqtts"

    def resolved_state_url(self) -> str:
        """The state DB URL, defaulting to ``data_dir/state.db``."""
        return self.state_url or sqlite_url(self.data_dir)

    def series_settings(self) -> Any:
        """The series package's ``SeriesSettings`` built from the ``series_*`` fields."""
        values: dict[str, Any] = {"backend": self.series_backend}
        for name in SERIES_FIELDS:
            value = getattr(self, f"series_{name}")
            if value is not None:
                values[name] = value.get_secret_value() if isinstance(value, SecretStr) else value
        return SeriesSettings(**values)


def is_placeholder(secret: str) -> bool:
    """True for an empty or well-known placeholder secret."""
    return secret.strip().lower() in PLACEHOLDER_SECRETS


def read_secret_file(path: Path, key: str) -> str:
    """The first line of a secret file (stripped); a :class:`ValueError` naming ``key`` if unreadable or empty."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{key}: cannot read {path}: {exc.__class__.__name__}") from None
    secret = lines[0].strip() if lines else ""
    if not secret:
        raise ValueError(f"{key}: {path} is empty")
    return secret


def file_values(path: Path) -> dict[str, Any]:
    """Settings from a TOML file: top-level keys or a ``[hub]`` table, plus an optional ``[series]`` table."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(str(path), str(exc)) from exc
    hub = data.pop("hub", None)
    series = data.pop("series", None)
    values: dict[str, Any] = dict(data)
    if isinstance(hub, dict):
        values.update(hub)
    if isinstance(series, dict):
        values.update({f"series_{k}": v for k, v in series.items()})
    return values


@contextmanager
def _layered(config_file: Path | None, environ: Mapping[str, str]) -> Iterator[None]:
    token = _LAYERS.set(_Layers(config_file, environ))
    try:
        yield
    finally:
        _LAYERS.reset(token)


def load_settings(
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> HubSettings:
    """Merge file < env (``os.environ`` unless ``environ`` is given) < overrides (CLI flags, None
    values ignored) and validate."""
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    try:
        with _layered(config_file, os.environ if environ is None else environ):
            return HubSettings(**flags)
    except ValidationError as exc:
        raise ConfigError(str(config_file or "settings"), _explained(exc)) from exc


def _explained(exc: ValidationError) -> str:
    """The validation error, with the closest known setting named after each unknown key."""
    hints = []
    for error in exc.errors():
        if error["type"] == "extra_forbidden" and error["loc"]:
            word = str(error["loc"][0])
            close = difflib.get_close_matches(word, list(HubSettings.model_fields), n=1)
            hints.append(f"unknown setting {word!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return "\n".join([*hints, str(exc)])
