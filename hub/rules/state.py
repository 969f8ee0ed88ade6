"""Engine outputs (incident candidates) and serialisable per-key state (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from edge.wire import DeviceKind
from hub.ingest.sinks import DeviceRef
from hub.rules import titles
from hub.rules.models import CompositeRule, Rule

#: ``record``: an alarm that was raised and cleared while its device was cut off, stored closed
#: (made by the incident sink from a historical open and its clear; the engine never makes one).
Action: TypeAlias = Literal["open", "update", "clear", "record"]
Phase: TypeAlias = Literal["idle", "pending", "active", "clearing"]

STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Candidate:
    """What the engine asks the incident store to do for one (rule, subject) key."""

    action: Action
    rule_id: str
    rule_kind: str
    subject: str
    device_id: str | None
    site: str
    grid: str | None
    category: str
    severity: str
    title: str
    ts_ms: int
    value: float | None = None
    #: ``open``/``update`` that re-raises a condition that had just cleared.
    flap: bool = False
    #: ``update`` that repeats an alarm on an open incident (an event raised again).
    repeat: bool = False
    event_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    #: ``title`` as a message of :mod:`hub.texts.catalogue`, rendered in the reader's language (None: English only).
    title_msg: Mapping[str, Any] | None = None

    @property
    def hist(self) -> bool:
        """Made from a historical event: raised (or cleared) while the device was cut off."""
        return bool(self.detail.get("hist"))


@dataclass(slots=True)
class KeyState:
    """Where one (rule, subject) key stands; plain data so it serialises to JSON."""

    phase: Phase = "idle"
    since_ms: int = 0
    last_ts: int = 0
    last_value: float | None = None
    last_clear_ms: int | None = None
    #: Hub receive time minus device time at the last reading, to turn the hub clock into device time.
    skew_ms: int = 0
    #: Rate rules: recent (ts, value) samples.
    samples: list[tuple[int, float]] = field(default_factory=list)
    #: Composite rules: device id -> receive time of its last agreeing reading or event.
    agree: dict[str, int] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        """True while the incident for this key is open (including a pending clear)."""
        return self.phase in ("active", "clearing")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (written by hand: ``asdict`` is slow and this runs under the engine lock)."""
        return {
            "phase": self.phase,
            "since_ms": self.since_ms,
            "last_ts": self.last_ts,
            "last_value": self.last_value,
            "last_clear_ms": self.last_clear_ms,
            "skew_ms": self.skew_ms,
            "samples": list(self.samples),
            "agree": dict(self.agree),
            "members": list(self.members),
        }

    def worth_keeping(self) -> bool:
        """False for an idle key that holds nothing a restart would miss."""
        return self.phase != "idle" or self.last_clear_ms is not None or bool(self.samples or self.agree)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> KeyState:
        """Rebuild from :meth:`to_dict` output."""
        data = dict(raw)
        data["samples"] = [(int(t), float(v)) for t, v in data.get("samples", [])]
        data["agree"] = {str(k): int(v) for k, v in data.get("agree", {}).items()}
        return cls(**data)


def device_to_dict(device: DeviceRef) -> dict[str, Any]:
    """A device reference as JSON-ready data."""
    return {
        "device_id": device.device_id,
        "site": device.site,
        "kind": None if device.kind is None else str(device.kind),
        "grid": device.grid,
        "labels": dict(device.labels),
    }


def device_from_dict(raw: Mapping[str, Any]) -> DeviceRef:
    """Inverse of :func:`device_to_dict`."""
    kind = raw.get("kind")
    return DeviceRef(
        device_id=str(raw["device_id"]),
        site=str(raw["site"]),
        kind=None if kind is None else DeviceKind(kind),
        grid=raw.get("grid"),
        labels=dict(raw.get("labels") or {}),
    )


def state_key(rule_id: str, subject: str) -> str:
    """The string key of a (rule, subject) pair in the serialised state."""
    return f"{rule_id}|{subject}"


def grid_subject(grid: str) -> str:
    """The incident subject of a composite rule: the grid it fired in."""
    return f"grid:{grid}"


def device_candidate(
    action: Action,
    rule: Rule,
    device: DeviceRef,
    ts: int,
    value: float | None,
    *,
    flap: bool = False,
    repeat: bool = False,
    event_id: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> Candidate:
    """A candidate about one device."""
    return Candidate(
        action=action,
        rule_id=rule.id,
        rule_kind=rule.kind,
        subject=device.device_id,
        device_id=device.device_id,
        site=device.site,
        grid=device.grid,
        category=rule.category,
        severity=rule.severity.value,
        title=f"{rule.display_title} on {device.device_id}",
        title_msg=titles.on_device(rule, device.device_id),
        ts_ms=ts,
        value=value,
        flap=flap,
        repeat=repeat,
        event_id=event_id,
        detail=dict(detail or {}),
    )


def grid_candidate(
    action: Action,
    rule: CompositeRule,
    *,
    subject: str,
    site: str,
    grid: str,
    ts: int,
    n: int,
    detail: Mapping[str, Any],
    flap: bool = False,
) -> Candidate:
    """A candidate about a grid (composite rules: N of M devices agree)."""
    return Candidate(
        action=action,
        rule_id=rule.id,
        rule_kind=rule.kind,
        subject=subject,
        device_id=None,
        site=site,
        grid=grid,
        category=rule.category,
        severity=rule.severity.value,
        title=f"{rule.display_title} in grid {grid}",
        title_msg=titles.in_grid(rule, grid),
        ts_ms=ts,
        value=float(n),
        flap=flap,
        detail=detail,
    )
