"""``command`` driver: run a program (argv, never a shell) and read metrics from what it prints.

Output formats:
    ``json``  one JSON object. Numbers and booleans become metrics; with a top-level
              ``"metrics"`` object only that object is read, and an optional
              ``"events"`` list of ``{"type", "state", "severity", "message"}`` is passed on.
    ``kv``    ``name=value`` lines (``#`` comments and blank lines ignored); values are
              integers, decimals, ``true`` or ``false``.
    ``auto``  JSON when the output starts with ``{``, else key=value.
A non-zero exit, a timeout, a missing program or output that does not parse raise
:class:`~edge.drivers.DriverError` naming the reason.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import subprocess
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from edge.drivers import DriverConfigBase, DriverError, DriverEvent, Sample, register_driver
from edge.wire import METRIC_PATTERN, EventState, MetricValue, Severity

logger = logging.getLogger(__name__)

_METRIC_RE = re.compile(METRIC_PATTERN)
_INT_RE = re.compile(r"[+-]?\d+")
MAX_OUTPUT_CHARS = 256 * 1024


class CommandOutputError(DriverError):
    """The program's output could not be turned into metrics; ``line`` is 1-based where known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message if line is None else f"line {line}: {message}", retryable=True)
        self.line = line


class CommandConfig(DriverConfigBase):
    """Config of the command driver."""

    type: Literal["command"] = Field(description="Driver key.")
    argv: tuple[str, ...] = Field(min_length=1, description="Program and arguments; run directly, never by a shell.")
    timeout_s: float = Field(default=10.0, gt=0, le=3600, description="Kill the program after this many seconds.")
    format: Literal["auto", "json", "kv"] = Field(default="auto", description="How to read its output.")
    cwd: str | None = Field(default=None, description="Working directory; null: the agent's.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables for the program.")


def _number(name: str, value: object, line: int | None = None) -> MetricValue:
    if _METRIC_RE.fullmatch(name) is None:
        raise CommandOutputError(f"metric name {name!r} must match ^{METRIC_PATTERN}$", line)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise CommandOutputError(f"{name}: {value!r} is not a finite number or boolean", line)


def parse_kv(text: str) -> dict[str, MetricValue]:
    """Parse ``name=value`` lines into metrics; raise :class:`CommandOutputError` on a bad line."""
    metrics: dict[str, MetricValue] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise CommandOutputError(f"expected name=value, got {line[:80]!r}", number)
        name, value = name.strip(), value.strip()
        parsed: object
        if value.lower() in ("true", "false"):
            parsed = value.lower() == "true"
        elif _INT_RE.fullmatch(value):
            parsed = int(value)
        else:
            try:
                parsed = float(value)
            except ValueError:
                raise CommandOutputError(f"{name}: {value[:40]!r} is not a number", number) from None
        metrics[name] = _number(name, parsed, number)
    if not metrics:
        raise CommandOutputError("no name=value lines in the output")
    return metrics


def _events(raw: object) -> tuple[DriverEvent, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise CommandOutputError("'events' must be a list")
    events = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise CommandOutputError(f"events[{i}] must be an object with a string 'type'")
        try:
            state = EventState(item.get("state", "active"))
            severity = Severity(item.get("severity", "minor"))
        except ValueError as exc:
            raise CommandOutputError(f"events[{i}]: {exc}") from None
        message = item.get("message")
        events.append(DriverEvent(item["type"], state, severity, message if isinstance(message, str) else None))
    return tuple(events)


def parse_json(text: str) -> tuple[dict[str, MetricValue], tuple[DriverEvent, ...]]:
    """Parse one JSON object into metrics and events; raise :class:`CommandOutputError` when it is not one."""
    try:
        obj: Any = json.loads(text)
    except ValueError as exc:
        raise CommandOutputError(f"output is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise CommandOutputError(f"output must be a JSON object, not {type(obj).__name__}")
    source: Mapping[str, Any] = obj
    events: tuple[DriverEvent, ...] = ()
    if isinstance(obj.get("metrics"), dict):
        source = obj["metrics"]
        events = _events(obj.get("events"))
    metrics = {k: _number(k, v) for k, v in source.items() if isinstance(v, (int, float))}
    if not metrics and not events:
        raise CommandOutputError("the JSON object holds no numeric metrics")
    return metrics, events


def parse_output(text: str, fmt: str = "auto") -> Sample:
    """Turn program output into a :class:`Sample` according to ``fmt`` (auto, json or kv)."""
    if fmt == "json" or (fmt == "auto" and text.lstrip().startswith("{")):
        metrics, events = parse_json(text)
        return Sample(metrics, events)
    return Sample(parse_kv(text))


class CommandDriver:
    """Runs the configured program on every poll and parses its output."""

    def __init__(self, config: CommandConfig) -> None:
        self.config = config

    def poll(self, now_ms: int) -> Sample:
        """Run the program once and return its metrics."""
        cfg = self.config
        env = {**os.environ, **cfg.env} if cfg.env else None
        try:
            done = subprocess.run(  # argv from the operator config, never a shell
                list(cfg.argv), capture_output=True, timeout=cfg.timeout_s, cwd=cfg.cwd, env=env, check=False
            )
        except FileNotFoundError as exc:
            raise DriverError(f"command {cfg.argv[0]!r} not found: {exc.strerror}", retryable=False) from exc
        except PermissionError as exc:
            raise DriverError(f"command {cfg.argv[0]!r} is not executable: {exc.strerror}", retryable=False) from exc
        except subprocess.TimeoutExpired as exc:
            raise DriverError(f"command {cfg.argv[0]!r} timed out after {cfg.timeout_s:g}s") from exc
        stderr = done.stderr.decode("utf-8", "replace").strip()
        if done.returncode != 0:
            tail = stderr[-300:] or "no stderr"
            raise DriverError(f"command {cfg.argv[0]!r} exited with {done.returncode}: {tail}")
        if len(done.stdout) > MAX_OUTPUT_CHARS:
            raise CommandOutputError(f"output of {len(done.stdout)} bytes exceeds {MAX_OUTPUT_CHARS}")
        try:
            text = done.stdout.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CommandOutputError(f"output is not UTF-8 ({exc.reason})") from None
        if stderr:
            logger.debug("command %s stderr: %s", cfg.argv[0], stderr[-300:])
        return parse_output(text, cfg.format)

    def close(self) -> None:
        """Nothing to release."""


register_driver(
    "command", CommandConfig, CommandDriver, "run a program and read metrics from its JSON or key=value output"
)
