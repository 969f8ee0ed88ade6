"""``kiosk`` driver: a self-service kiosk's printer (CUPS) and the state its application reports.

Printer: ``lpstat -p`` where CUPS is installed (run with ``LC_ALL=C``); its absence
only omits the printer metrics. Application state comes from a local HTTP JSON
endpoint (``status_url``) and/or a log file the app appends to (``status_log``,
JSON lines or ``key=value`` pairs per line; the driver tails it across rotation).
Numeric fields become metrics (``paper_pct``, ``transactions_total``,
``errors_total``, ``latency_ms``...); state fields raise events:

=============  ==========================================================
paper_low      ``paper_pct`` below ``paper_low_pct``
paper_out      ``paper_pct`` <= 0, ``printer: paper_out``, or CUPS "media empty"
printer_jam    ``printer: jam`` / ``printer_jam: true``, or a CUPS jam reason
reader_fault   ``reader`` other than ``ok`` / ``reader_fault: true``
app_crash      ``app: crashed`` / ``app_crash: true``, or ``status_url`` not answering
door_open      ``door: open`` / ``door_open: true``
=============  ==========================================================
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Literal, Self, TypeGuard

from pydantic import Field, model_validator

from edge.drivers import DriverConfigBase, DriverError, DriverEvent, Sample, register_driver
from edge.drivers.conditions import ConditionTracker, alarm, below_with_hysteresis
from edge.vocabulary import EventType
from edge.wire import METRIC_PATTERN, MetricValue, Severity

logger = logging.getLogger(__name__)

_METRIC_RE = re.compile(METRIC_PATTERN)
_PRINTER_RE = re.compile(r"^printer\s+(?P<name>\S+)\s+(?P<rest>.*)$")
MAX_STATUS_BYTES = 64 * 1024
_PAPER_OUT_WORDS = ("media empty", "media-empty", "out of paper", "paper out", "no paper")
_KV_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)')
_NOT_METRICS = frozenset({"ts", "time", "timestamp", "seq"})
#: On first open, read at most this much of the end of an existing log.
TAIL_START_BYTES = 64 * 1024


def _scalar(text: str) -> object:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def parse_status_line(line: str) -> dict[str, Any]:
    """One status log line (a JSON object or ``key=value`` pairs) as a dict; junk gives ``{}``."""
    line = line.strip()
    if line.startswith("{"):
        try:
            obj = json.loads(line)
        except ValueError:
            logger.debug("kiosk log: skipped a line that is not JSON: %.80s", line)
            return {}
        return obj if isinstance(obj, dict) else {}
    return {key: _scalar(value) for key, value in _KV_RE.findall(line)}


class LogTail:
    """Follows a growing log file across truncation and rotation, yielding complete lines."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fh: BinaryIO | None = None
        self._inode = -1
        self._pos = 0
        self._partial = b""
        self._opened_once = False

    def _open(self, inode: int, size: int) -> BinaryIO:
        self.close()
        fh = open(self.path, "rb")  # noqa: SIM115  (kept open between polls, closed in close())
        start = 0
        if not self._opened_once and size > TAIL_START_BYTES:
            start = size - TAIL_START_BYTES
            fh.seek(start)
            fh.readline()  # drop the partial first line
            start = fh.tell()
        self._fh, self._inode, self._pos, self._opened_once = fh, inode, start, True
        return fh

    def read_lines(self) -> list[str]:
        """Complete lines appended since the last call (a missing file gives none)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return []
        fh = self._fh
        if fh is None or st.st_ino != self._inode or st.st_size < self._pos:
            fh = self._open(st.st_ino, st.st_size)
        fh.seek(self._pos)
        data = self._partial + fh.read(MAX_STATUS_BYTES * 4)
        self._pos = fh.tell()
        *lines, self._partial = data.split(b"\n")
        return [raw.decode("utf-8", "replace") for raw in lines if raw.strip()]

    def close(self) -> None:
        """Close the file."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._partial = b""


@dataclass(frozen=True, slots=True)
class PrinterState:
    """One printer as ``lpstat -p`` describes it."""

    name: str
    state: str  # idle | printing | disabled | unknown
    enabled: bool
    reasons: tuple[str, ...] = field(default=())

    @property
    def jammed(self) -> bool:
        """A CUPS reason mentions a jam."""
        return any("jam" in r.lower() for r in self.reasons)

    @property
    def paper_out(self) -> bool:
        """A CUPS reason says the media is empty."""
        return any(word in r.lower() for r in self.reasons for word in _PAPER_OUT_WORDS)


def parse_lpstat(text: str) -> list[PrinterState]:
    """Parse ``lpstat -p`` output (C locale) into printer states; unknown lines are ignored."""
    printers: list[PrinterState] = []
    for line in text.splitlines():
        match = _PRINTER_RE.match(line)
        if match is not None:
            rest = match["rest"]
            if rest.startswith("disabled"):
                state, enabled = "disabled", False
            elif rest.startswith("now printing"):
                state, enabled = "printing", True
            elif rest.startswith("is idle"):
                state, enabled = "idle", True
            else:
                state, enabled = "unknown", "enabled" in rest
            printers.append(PrinterState(match["name"], state, enabled))
        elif line[:1].isspace() and line.strip() and printers:
            last = printers[-1]
            printers[-1] = PrinterState(last.name, last.state, last.enabled, (*last.reasons, line.strip()))
    return printers


class KioskConfig(DriverConfigBase):
    """Config of the kiosk driver."""

    type: Literal["kiosk"] = Field(description="Driver key.")
    status_url: str | None = Field(
        default=None, pattern=r"^https?://", description="Local HTTP endpoint returning the app's JSON status."
    )
    status_log: str | None = Field(default=None, description="Log file the app appends JSON or key=value lines to.")
    http_timeout_s: float = Field(default=2.0, gt=0, le=60, description="Timeout of one status_url request.")
    printer: str | None = Field(default=None, description="CUPS printer to watch; null: the first one lpstat lists.")
    lpstat: str = Field(default="lpstat", description="lpstat command (name on PATH or absolute path).")
    use_lpstat: bool = Field(default=True, description="Ask CUPS for printer state when lpstat is installed.")
    paper_low_pct: float = Field(default=15.0, gt=0, lt=100, description="paper_low is raised below this level.")
    paper_clear_margin_pct: float = Field(default=5.0, ge=0, description="paper_low clears this far above the level.")

    @model_validator(mode="after")
    def _needs_a_source(self) -> Self:
        if self.status_url is None and self.status_log is None:
            raise ValueError("set status_url or status_log (or both): where the kiosk app reports its state")
        return self


def _is_metric(value: object) -> TypeGuard[MetricValue]:
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return isinstance(value, float) and math.isfinite(value)


def _truthy(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"))


class KioskDriver:
    """Reads printer state from CUPS and app state from HTTP and/or a log file."""

    def __init__(self, config: KioskConfig) -> None:
        self.config = config
        self._tracker = ConditionTracker()
        self._tail = LogTail(config.status_log) if config.status_log else None
        self._log_state: dict[str, Any] = {}
        self._lpstat = shutil.which(config.lpstat) if config.use_lpstat else None
        if config.use_lpstat and self._lpstat is None:
            logger.info("lpstat not found: printer metrics omitted (CUPS not installed?)")

    def _printer(self) -> PrinterState | None:
        if self._lpstat is None:
            return None
        argv = [self._lpstat, "-p"] + ([self.config.printer] if self.config.printer else [])
        try:
            done = subprocess.run(
                argv, capture_output=True, timeout=5, check=False, env={**os.environ, "LC_ALL": "C", "LANG": "C"}
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            logger.warning("lpstat failed: %s", exc)
            return None
        printers = parse_lpstat(done.stdout.decode("utf-8", "replace"))
        if self.config.printer:
            printers = [p for p in printers if p.name == self.config.printer]
        return printers[0] if printers else None

    def _http_state(self) -> tuple[dict[str, Any], str | None]:
        url = self.config.status_url
        assert url is not None
        try:
            with urllib.request.urlopen(
                url, timeout=self.config.http_timeout_s
            ) as resp:  # the config allows http(s) only
                body = resp.read(MAX_STATUS_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise DriverError(f"kiosk status {url} answered HTTP {exc.code}") from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            return {}, f"kiosk app not answering at {url}: {reason}"
        if len(body) > MAX_STATUS_BYTES:
            raise DriverError(f"kiosk status {url} is larger than {MAX_STATUS_BYTES} bytes")
        try:
            obj = json.loads(body)
        except ValueError as exc:
            raise DriverError(f"kiosk status {url} is not JSON: {exc}") from exc
        if not isinstance(obj, dict):
            raise DriverError(f"kiosk status {url} must be a JSON object, not {type(obj).__name__}")
        return obj, None

    def _app_state(self) -> tuple[dict[str, Any], str | None]:
        state: dict[str, Any] = {}
        if self._tail is not None:
            for line in self._tail.read_lines():
                self._log_state.update(parse_status_line(line))
            state.update(self._log_state)
        down = None
        if self.config.status_url is not None:
            http, down = self._http_state()
            state.update(http)
        return state, down

    def poll(self, now_ms: int) -> Sample:
        """Read printer and app state now and report changes of alarm conditions."""
        state, app_down = self._app_state()
        printer = self._printer()
        metrics: dict[str, MetricValue] = {}
        for key, value in state.items():
            if key not in _NOT_METRICS and _METRIC_RE.fullmatch(key) and _is_metric(value):
                metrics[key] = value
        if printer is not None:
            metrics["printer_up"] = printer.enabled
            metrics["printer_printing"] = printer.state == "printing"
        if self.config.status_url is not None:
            metrics["app_up"] = app_down is None and str(state.get("app", "running")).lower() != "crashed"
        printer_word = str(state.get("printer", "")).lower()
        current: dict[str, DriverEvent] = {}
        paper = state.get("paper_pct")
        paper_pct = float(paper) if isinstance(paper, (int, float)) and not isinstance(paper, bool) else None
        cfg = self.config
        if paper_pct is not None and below_with_hysteresis(
            self._tracker,
            "paper_low",
            paper_pct,
            below=cfg.paper_low_pct,
            clear_above=cfg.paper_low_pct + cfg.paper_clear_margin_pct,
        ):
            current[EventType.PAPER_LOW] = alarm(
                EventType.PAPER_LOW, Severity.MINOR, f"paper at {paper_pct:g}%", paper_pct
            )
        if (paper_pct is not None and paper_pct <= 0) or printer_word == "paper_out" or (printer and printer.paper_out):
            current[EventType.PAPER_OUT] = alarm(
                EventType.PAPER_OUT, Severity.MAJOR, "printer is out of paper", paper_pct
            )
        if printer_word == "jam" or _truthy(state.get("printer_jam")) or (printer and printer.jammed):
            reason = "; ".join(printer.reasons) if printer and printer.jammed else "printer reports a jam"
            current[EventType.PRINTER_JAM] = alarm(EventType.PRINTER_JAM, Severity.MAJOR, reason)
        reader = state.get("reader")
        if (reader is not None and str(reader).lower() != "ok") or _truthy(state.get("reader_fault")):
            current[EventType.READER_FAULT] = alarm(
                EventType.READER_FAULT, Severity.MAJOR, f"card/ID reader: {reader or 'fault'}"
            )
        if app_down or str(state.get("app", "")).lower() == "crashed" or _truthy(state.get("app_crash")):
            current[EventType.APP_CRASH] = alarm(
                EventType.APP_CRASH, Severity.MAJOR, app_down or "kiosk application crashed"
            )
        if str(state.get("door", "")).lower() == "open" or _truthy(state.get("door_open")):
            current[EventType.DOOR_OPEN] = alarm(EventType.DOOR_OPEN, Severity.CRITICAL, "service door opened")
        if not metrics and not current and not self._tracker.active:
            raise DriverError("no kiosk data yet: the status source reported nothing and no printer is visible")
        return Sample(metrics, self._tracker.update(current))

    def close(self) -> None:
        """Close the tailed log file."""
        if self._tail is not None:
            self._tail.close()


register_driver("kiosk", KioskConfig, KioskDriver, "self-service kiosk: CUPS printer plus the app's HTTP/log status")
