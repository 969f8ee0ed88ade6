"""Pydantic response and request models of the core API (``ThingPublic`` naming)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class DevicePublic(BaseModel):
    """A device as the registry knows it, with its combined health."""

    id: str
    site: str
    kind: str | None = Field(description="camera, kiosk or sensor (None before the first birth)")
    grid: str | None = Field(description="15-digit grid code")
    state: str = Field(description="online, stale, offline or unknown")
    status: str | None = Field(description="last status message: online or offline")
    last_seen: str | None = Field(description="ISO 8601 UTC time anything was last heard")
    last_seen_ms: int | None
    latest: dict[str, bool | int | float] = Field(description="latest reading of each metric")
    latest_ts_ms: int | None
    labels: dict[str, str]
    epoch: int = Field(description="session epoch of the current status")
    interval_s: float | None = Field(description="heartbeat interval announced at birth")
    agent: str | None
    last_seq: int | None
    flapping: bool = Field(description="health changes are being damped")
    flaps_suppressed: int


class DeadLetterPublic(BaseModel):
    """A refused message (payload shown as text, replacement characters where not UTF-8)."""

    id: int
    topic: str
    device_id: str | None
    reason: str
    detail: str
    source: str
    received_ms: int
    payload_size: int
    truncated: bool
    payload_preview: str = Field(description="first 512 characters of the payload")


class DeadLetterDetail(DeadLetterPublic):
    """One dead letter with its whole stored payload."""

    payload_text: str
    payload_hex: str = Field(description="first 4096 bytes as hex")


class DeadLetterPage(BaseModel):
    """One page of dead letters, newest first."""

    total: int
    limit: int
    offset: int
    items: list[DeadLetterPublic]


class RequeueRequest(BaseModel):
    """Optionally a corrected payload (UTF-8 text) to inject instead of the stored one."""

    payload: str | None = None


class RequeueResult(BaseModel):
    """The outcome of a requeue."""

    id: int
    requeued: bool


class PurgeResult(BaseModel):
    """How many dead letters a purge deleted."""

    deleted: int


class DataLossPublic(BaseModel):
    """Seqs of a device recorded as lost."""

    id: int
    device_id: str
    site: str
    first: int
    last: int
    count: int
    cause: str = Field(description="declared (by the device), unfilled (timed out) or overflow")
    detail: str | None
    opened_ms: int
    recorded_ms: int


class OpenGapPublic(BaseModel):
    """A gap still open (waiting for a resend or its timeout)."""

    device_id: str
    first: int
    last: int
    opened_ms: int
    resend_ms: int | None


class GapsPage(BaseModel):
    """Data-loss records (paginated) and the gaps open now."""

    total: int
    limit: int
    offset: int
    items: list[DataLossPublic]
    open: list[OpenGapPublic]


class HealthPublic(BaseModel):
    """Liveness of the hub's parts."""

    ok: bool
    broker_connected: bool
    store: str
    store_ok: bool
    spool_bytes: int | None
    state_ok: bool
    devices: int


class SeriesRowPublic(BaseModel):
    """One bucket: start time in ms and the mean (None if empty)."""

    ts_ms: int
    value: float | None


class SeriesPublic(BaseModel):
    """A history query's answer."""

    device: str
    metric: str
    start_ms: int
    end_ms: int
    every_s: int
    rows: list[SeriesRowPublic]
