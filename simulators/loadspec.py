"""What :mod:`simulators.loadgen` is asked to publish and what it reports, and the payloads it sends (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field

from edge import wire


class LoadError(RuntimeError):
    """The load run could not connect or did not finish within its deadline."""


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """What to publish, how fast, and over how many connections and processes."""

    url: str = "mqtt://127.0.0.1:1883"
    devices: int = 100
    messages: int = 10_000
    rate: float = 0.0  # messages per second over all devices; 0 = as fast as possible
    qos: int = 1
    points: int = 1
    metrics: int = 4
    processes: int = 1
    site: str = "load"
    device_prefix: str = "load"
    root: str = wire.DEFAULT_ROOT
    seq_start: int = 1
    connect_timeout_s: float = 30.0
    drain_timeout_s: float = 60.0
    isolate: bool = False  # run even a single worker in a child process (off the caller's GIL)

    def device_ids(self) -> list[str]:
        """The device ids in order."""
        return [f"{self.device_prefix}-{i:05d}" for i in range(self.devices)]


@dataclass(slots=True)
class LoadResult:
    """What was sent: per-device counts and highest seq, totals and timing."""

    sent: dict[str, int] = field(default_factory=dict)
    max_seq: dict[str, int] = field(default_factory=dict)
    acked: int = 0  # PUBACKs (QoS 1) or messages fully written (QoS 0)
    elapsed_s: float = 0.0
    drain_s: float = 0.0  # after the last publish until every PUBACK (QoS 1) or write (QoS 0)
    connect_s: float = 0.0
    connections: int = 0

    @property
    def messages(self) -> int:
        """Messages published in total."""
        return sum(self.sent.values())

    @property
    def msgs_per_s(self) -> float:
        """Publish rate achieved (publishing phase only)."""
        return self.messages / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def completed_msgs_per_s(self) -> float:
        """Rate until the broker had everything (PUBACKs or writes): flat out, the broker's pace."""
        total = self.elapsed_s + self.drain_s
        return self.messages / total if total > 0 else 0.0


def expected_telemetry(seq: int, ts: int, points: int, metrics: int) -> wire.Telemetry:
    """The message :class:`TelemetryTemplate` encodes for ``(seq, ts)`` (the reference for tests)."""
    return wire.Telemetry(
        seq=seq,
        ts=ts,
        points=tuple(
            wire.Point(ts - (points - 1 - k), {f"m{j}": float((seq + j + k) % 1000) for j in range(metrics)})
            for k in range(points)
        ),
    )


class TelemetryTemplate:
    """Telemetry payloads by string formatting: the bytes ``wire.encode`` gives, ~10x cheaper.

    Point ``k`` of the message ``(seq, ts)`` has ts ``ts - (points - 1 - k)`` and metrics
    ``m{j} = float((seq + j + k) % 1000)``; the metric objects for the 1,000 residues are built once.
    """

    def __init__(self, points: int, metrics: int) -> None:
        self.points = points
        self._metrics = [",".join(f'"m{j}":{float((r + j) % 1000)!r}' for j in range(metrics)) for r in range(1000)]

    def payload(self, seq: int, ts: int) -> bytes:
        """The JSON payload of message ``(seq, ts)``."""
        m = self._metrics
        if self.points == 1:
            return f'{{"v":1,"seq":{seq},"ts":{ts},"metrics":{{{m[seq % 1000]}}}}}'.encode()
        last = self.points - 1
        pts = ",".join(f'{{"ts":{ts - last + k},"metrics":{{{m[(seq + k) % 1000]}}}}}' for k in range(self.points))
        return f'{{"v":1,"seq":{seq},"ts":{ts},"points":[{pts}]}}'.encode()
