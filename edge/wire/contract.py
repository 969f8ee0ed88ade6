"""The contract's vocabulary: version, limits, errors, channels, kinds, ops, severities and ids."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final, TypeAlias

PROTOCOL_VERSION: Final = 1
TOPIC_VERSION: Final = "v1"
DEFAULT_ROOT: Final = "gs"

MAX_PAYLOAD_BYTES: Final = 256 * 1024
MAX_SNAPSHOT_BYTES: Final = 4 * 1024 * 1024
MAX_POINTS_PER_MESSAGE: Final = 1000
MAX_METRICS_PER_POINT: Final = 128
MAX_ATTRS: Final = 32
MAX_TEXT_CHARS: Final = 1024
MAX_KEY_CHARS: Final = 64
#: Containers nested in one payload, the payload object counting as one (a ``get_config`` ack needs ~7).
MAX_DEPTH: Final = 10
MAX_SEQ: Final = 2**63 - 1
MAX_INT: Final = 2**63 - 1
#: A command's time-to-live: at most a day (a longer-lived command is a schedule, not a command).
MAX_TTL_MS: Final = 86_400_000
MIN_INT: Final = -(2**63)
#: Device timestamps outside [2000-01-01, 2100-01-01) are refused outright.
MIN_TS_MS: Final = 946_684_800_000
MAX_TS_MS: Final = 4_102_444_800_000

ID_PATTERN: Final = r"[a-z0-9][a-z0-9_-]{0,63}"
METRIC_PATTERN: Final = r"[a-z][a-z0-9_]{0,63}"
GRID_PATTERN: Final = r"[0-9]{15}"
_ID_RE: Final = re.compile(ID_PATTERN)
_METRIC_RE: Final = re.compile(METRIC_PATTERN)
_GRID_RE: Final = re.compile(GRID_PATTERN)

Scalar: TypeAlias = "bool | int | float | str"
MetricValue: TypeAlias = "bool | int | float"


class WireError(ValueError):
    """A topic or payload that breaks the contract; ``reason`` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.detail = message


class TopicError(WireError):
    """A topic that is not a valid v1 device topic."""


class PayloadError(WireError):
    """A payload that cannot be decoded into a v1 message."""


class Channel(StrEnum):
    """The last topic level(s): what a message is."""

    STATUS = "status"
    TELEMETRY = "telemetry"
    EVENT = "event"
    GAP = "gap"
    SNAPSHOT = "snapshot"
    CMD = "cmd"
    CMD_ACK = "cmd/ack"


class DeviceKind(StrEnum):
    """Device kinds; each is one measurement in the time-series store."""

    CAMERA = "camera"
    KIOSK = "kiosk"
    SENSOR = "sensor"


class CommandOp(StrEnum):
    """What a hub may ask a device to do on ``cmd``; the one list agent, hub, CLI and page import."""

    PING = "ping"
    SET_INTERVAL = "set_interval"
    RESEND = "resend"
    SNAPSHOT = "snapshot"
    RELOAD_CONFIG = "reload_config"
    GET_CONFIG = "get_config"


#: Ops an operator may send to each device kind (the page shows these as buttons). ``resend`` is the
#: hub's own gap repair, never an operator's; ``snapshot`` needs a camera.
KIND_OPS: Final[dict[DeviceKind, tuple[CommandOp, ...]]] = {
    DeviceKind.CAMERA: (CommandOp.SNAPSHOT, CommandOp.PING, CommandOp.GET_CONFIG, CommandOp.RELOAD_CONFIG),
    DeviceKind.KIOSK: (CommandOp.PING, CommandOp.GET_CONFIG, CommandOp.RELOAD_CONFIG, CommandOp.SET_INTERVAL),
    DeviceKind.SENSOR: (CommandOp.PING, CommandOp.GET_CONFIG, CommandOp.RELOAD_CONFIG, CommandOp.SET_INTERVAL),
}
#: Ops for a device whose kind the hub does not know yet (no birth message seen).
UNKNOWN_KIND_OPS: Final[tuple[CommandOp, ...]] = (CommandOp.PING, CommandOp.GET_CONFIG)
#: Device kinds whose unanswered commands the hub raises as a device fault: mains-powered boxes that should
#: always answer. Sensors are left out: a battery gateway may sleep through a command's time-to-live.
KINDS_FAULT_ON_TIMEOUT: Final = frozenset({DeviceKind.CAMERA, DeviceKind.KIOSK})


def ops_for(kind: DeviceKind | str | None) -> tuple[CommandOp, ...]:
    """The operator ops of a device kind (a kind this contract does not know gets the minimal set)."""
    if kind is None or kind not in DeviceKind._value2member_map_:
        return UNKNOWN_KIND_OPS
    return KIND_OPS[DeviceKind(kind)]


class Severity(StrEnum):
    """Event and incident severity, lowest first."""

    INFO = "info"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class EventState(StrEnum):
    """An alarm condition on a device is raised (active) and later cleared."""

    ACTIVE = "active"
    CLEARED = "cleared"


class DeviceState(StrEnum):
    """What a status message says about the device's session."""

    ONLINE = "online"
    OFFLINE = "offline"


class AckResult(StrEnum):
    """Outcome of a command on the device."""

    OK = "ok"
    ERROR = "error"
    EXPIRED = "expired"
    DUPLICATE = "duplicate"


# --------------------------------------------------------------------------- ids


def is_valid_id(value: str) -> bool:
    """True when ``value`` may be used as a site, device or event id."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


def check_id(value: object, what: str = "id") -> str:
    """Return ``value`` if it is a valid identifier, else raise :class:`TopicError`."""
    if not isinstance(value, str) or _ID_RE.fullmatch(value) is None:
        raise TopicError(
            "bad_id",
            f"{what} {value!r} must match ^{ID_PATTERN}$ "
            "(lower-case letters, digits, '_' and '-', at most 64, no + # / or NUL)",
        )
    return value


def is_valid_grid(value: str) -> bool:
    """True for a 15-digit grid code (6 district + 3 street + 3 community + 3 sequence)."""
    return isinstance(value, str) and _GRID_RE.fullmatch(value) is not None
