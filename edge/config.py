"""Edge agent configuration: one TOML file, validated up front, errors naming the bad key.

``load_config(path)`` reads the file, ``parse_config(dict)`` validates a mapping.
Every failure is a :class:`ConfigError` whose ``str()`` lists ``path: message``
lines such as ``drivers[1].intervall: unknown key`` (list indexes count from 0).
Drivers are validated by the model their ``type`` registered
(:func:`edge.drivers.get_driver_spec`), so each driver owns its own fields.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from edge import wire
from edge.drivers import DriverConfigBase, UnknownDriverError, get_driver_spec
from edge.rules import ThresholdRule
from edge.vocabulary import EVENT_TYPES, require_known

REDACTED = "***"
#: Passwords that are never real (provisioning issues random ones): refused, case-insensitively.
PLACEHOLDER_PASSWORDS = frozenset({"", "changeme", "change-me", "secret", "password", "passwd", "placeholder", "xxx"})


class ConfigError(ValueError):
    """An invalid agent config; ``errors`` holds ``(path, message)`` pairs."""

    def __init__(self, errors: list[tuple[str, str]], source: str | None = None) -> None:
        self.errors = errors
        self.source = source
        head = f"invalid config {source}" if source else "invalid config"
        super().__init__(head + ":\n" + "\n".join(f"  {path}: {msg}" for path, msg in errors))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceConfig(_Section):
    """``[device]``: who this box is."""

    id: str = Field(pattern=f"^{wire.ID_PATTERN}$", description="Device id; also the MQTT client id.")
    site: str = Field(pattern=f"^{wire.ID_PATTERN}$", description="Site (community) id used in topics.")
    kind: wire.DeviceKind = Field(description="Device kind: camera, kiosk or sensor.")
    grid: str | None = Field(
        default=None, pattern=f"^{wire.GRID_PATTERN}$", description="15-digit grid code, if known."
    )
    labels: dict[str, str] = Field(default_factory=dict, description="Free labels sent in the birth message.")


class TlsConfig(_Section):
    """``[mqtt.tls]``: certificates for mqtts:// (system CAs when ``ca`` is unset)."""

    ca: Path | None = Field(default=None, description="CA bundle that signed the broker certificate.")
    cert: Path | None = Field(default=None, description="Client certificate (mutual TLS).")
    key: Path | None = Field(default=None, description="Client private key (mutual TLS).")
    insecure: bool = Field(default=False, description="Skip broker hostname verification (testing only).")


class MqttConfig(_Section):
    """``[mqtt]``: the broker connection."""

    url: str = Field(
        default="mqtt://127.0.0.1:1883", description="Broker URL, mqtt://host[:port] or mqtts://host[:port]."
    )
    username: str | None = Field(default=None, description="MQTT user name.")
    password: SecretStr | None = Field(default=None, description="MQTT password (prefer password_file).")
    password_file: Path | None = Field(default=None, description="File holding the MQTT password (first line).")
    tls: TlsConfig = Field(default=TlsConfig(), description="TLS settings for mqtts://.")
    keepalive_s: int = Field(default=30, gt=0, le=3600, description="MQTT keepalive in seconds.")
    root: str = Field(default=wire.DEFAULT_ROOT, pattern=f"^{wire.ID_PATTERN}$", description="First topic level.")
    max_inflight: int = Field(default=100, gt=0, le=65_535, description="QoS 1 messages published but not yet acked.")
    backoff_min_s: float = Field(default=0.5, gt=0, description="First reconnect delay in seconds (doubles each try).")
    backoff_max_s: float = Field(default=30.0, gt=0, description="Longest reconnect delay in seconds (before jitter).")

    @model_validator(mode="after")
    def _check(self) -> MqttConfig:
        parts = urlsplit(self.url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("url must look like mqtt://host[:port] or mqtts://host[:port]")
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        if self.password is not None and self.password.get_secret_value().strip().lower() in PLACEHOLDER_PASSWORDS:
            raise ValueError(
                "password is empty or a placeholder; use the one 'gridsentinel hub devices provision' issued"
            )
        if self.backoff_max_s < self.backoff_min_s:
            raise ValueError("backoff_max_s must be >= backoff_min_s")
        return self

    @property
    def host(self) -> str:
        """Broker host name from the URL."""
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        """Broker port from the URL (1883 or 8883 by default)."""
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def use_tls(self) -> bool:
        """True for mqtts:// URLs."""
        return urlsplit(self.url).scheme == "mqtts"

    def secret(self) -> str | None:
        """The password, from ``password_file`` when set (read at each connect, so rotation needs no restart).

        A missing, unreadable or empty file raises :class:`ValueError` naming the key (the publisher logs
        it and retries) instead of silently connecting without a password.
        """
        if self.password_file is not None:
            try:
                lines = self.password_file.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"mqtt.password_file {self.password_file}: {exc.__class__.__name__}") from None
            if not lines or not lines[0].strip():
                raise ValueError(f"mqtt.password_file {self.password_file} is empty")
            return lines[0].strip()
        return None if self.password is None else self.password.get_secret_value()


class OutboxConfig(_Section):
    """``[outbox]``: the durable store-and-forward buffer."""

    backend: Literal["sqlite", "memory"] = Field(
        default="sqlite", description="sqlite (durable) or memory (tests, sims)."
    )
    path: Path = Field(
        default=Path("/var/lib/gridsentinel/outbox.db"), description="SQLite file of the sqlite backend."
    )
    max_bytes: int = Field(
        default=64 * 1024 * 1024, gt=0, description="Bound on unsent bytes; oldest telemetry evicted."
    )
    replay_hours: float = Field(default=24.0, ge=0, description="Keep sent messages this long for resend commands.")
    replay_max_bytes: int = Field(
        default=16 * 1024 * 1024, ge=0, description="Bound on bytes kept for the replay window."
    )
    hist_after_s: float = Field(
        default=30.0, ge=0, description="Messages older than this when published are marked hist."
    )


class RuleConfig(_Section):
    """``[[rules]]``: a local threshold alarm on one metric."""

    metric: str = Field(pattern=f"^{wire.METRIC_PATTERN}$", description="Metric name (after driver prefix).")
    type: str = Field(pattern=f"^{wire.METRIC_PATTERN}$", description="Event type raised, e.g. smoke or overheat.")
    above: float | None = Field(default=None, description="Raise when the value is above this.")
    below: float | None = Field(default=None, description="Raise when the value is below this.")
    for_s: float = Field(default=0.0, ge=0, description="Condition must hold this long before raising.")
    clear_below: float | None = Field(default=None, description="Clear an 'above' alarm below this (default: above).")
    clear_above: float | None = Field(default=None, description="Clear a 'below' alarm above this (default: below).")
    clear_for_s: float = Field(default=0.0, ge=0, description="Clear condition must hold this long before clearing.")
    severity: wire.Severity = Field(default=wire.Severity.MINOR, description="Severity of the raised event.")
    message: str | None = Field(default=None, max_length=256, description="Text carried by the event.")
    declared: bool = Field(
        default=False,
        description="The type is your own, not the vocabulary's (edge/vocabulary.py): the hub needs a rule "
        "that declares it too. Without this, a type the vocabulary does not know is refused.",
    )

    @model_validator(mode="after")
    def _check(self) -> RuleConfig:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of above or below")
        if self.above is not None and self.clear_below is not None and self.clear_below > self.above:
            raise ValueError("clear_below must be <= above")
        if self.below is not None and self.clear_above is not None and self.clear_above < self.below:
            raise ValueError("clear_above must be >= below")
        if not self.declared:
            require_known("event type", self.type, EVENT_TYPES)
        return self

    def to_rule(self) -> ThresholdRule:
        """The pure rule this config describes."""
        return ThresholdRule(
            metric=self.metric,
            type=self.type,
            above=self.above,
            below=self.below,
            for_s=self.for_s,
            clear_below=self.clear_below,
            clear_above=self.clear_above,
            clear_for_s=self.clear_for_s,
            severity=self.severity,
            message=self.message,
        )


class AgentConfig(_Section):
    """The whole agent config file."""

    device: DeviceConfig = Field(description="This device.")
    mqtt: MqttConfig = Field(default=MqttConfig(), description="Broker connection.")
    outbox: OutboxConfig = Field(default=OutboxConfig(), description="Store-and-forward buffer.")
    drivers: tuple[DriverConfigBase, ...] = Field(default=(), description="Drivers polled by the agent, by type.")
    rules: tuple[RuleConfig, ...] = Field(default=(), description="Local threshold rules.")


def _loc(loc: tuple[int | str, ...], prefix: str = "") -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top)"


def _message(err: Any) -> str:
    kind, ctx = err.get("type"), err.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key missing"
    if kind == "greater_than":
        return f"must be > {ctx.get('gt')}"
    if kind == "greater_than_equal":
        return f"must be >= {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"must be <= {ctx.get('le')}"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')}"
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


def _errors(exc: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    return [(_loc(tuple(e["loc"]), prefix), _message(e)) for e in exc.errors()]


def parse_config(raw: dict[str, Any], source: str | None = None) -> AgentConfig:
    """Validate a config mapping; raise :class:`ConfigError` listing every bad key."""
    errors: list[tuple[str, str]] = []
    body = dict(raw)
    raw_drivers = body.pop("drivers", [])
    drivers: list[DriverConfigBase] = []
    if not isinstance(raw_drivers, list):
        errors.append(("drivers", "must be an array of tables ([[drivers]])"))
        raw_drivers = []
    for i, item in enumerate(raw_drivers):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            errors.append((f"drivers[{i}].type", "required key missing"))
            continue
        try:
            spec = get_driver_spec(item["type"])
        except UnknownDriverError as exc:
            errors.append((f"drivers[{i}].type", str(exc.args[0])))
            continue
        try:
            drivers.append(spec.config_model.model_validate(item))
        except ValidationError as exc:
            errors.extend(_errors(exc, f"drivers[{i}]"))
    try:
        config = AgentConfig.model_validate(body)
    except ValidationError as exc:
        errors = _errors(exc) + errors
        config = None
    if errors or config is None:
        raise ConfigError(errors, source)
    return config.model_copy(update={"drivers": tuple(drivers)})


def load_config(path: str | Path) -> AgentConfig:
    """Read and validate a TOML config file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError([("(file)", f"{path} does not exist")], str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([("(toml)", str(exc))], str(path)) from exc
    return parse_config(raw, str(path))


def redacted(config: AgentConfig) -> dict[str, Any]:
    """The config as plain JSON-able data with secrets replaced by ``***``."""
    data = config.model_dump(mode="json")
    mqtt = data["mqtt"]
    if mqtt.get("password") is not None:
        mqtt["password"] = REDACTED
    data["drivers"] = [d.model_dump(mode="json") for d in config.drivers]
    for driver in data["drivers"]:
        for key in list(driver):
            if any(word in key for word in ("password", "secret", "token")) and driver[key] is not None:
                driver[key] = REDACTED
    return data
