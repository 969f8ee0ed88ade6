"""Helpers for agent integration tests: configs, TOML files, subprocess agents, outbox peeks."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from edge.outbox import OutboxError, read_stats

REPO = Path(__file__).resolve().parents[2]


def agent_raw(
    url: str,
    db: Path,
    *,
    device: str = "dev-1",
    interval_s: float = 0.01,
    event_every: int = 0,
    max_bytes: int = 64 * 1024 * 1024,
    backend: str = "sqlite",
    hist_after_s: float = 30.0,
    rules: list[dict[str, Any]] | None = None,
    mqtt: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A config mapping for one agent polling the test_counter driver."""
    return {
        "device": {"id": device, "site": "site-a", "kind": "sensor", "grid": "110105001002003"},
        "mqtt": {"url": url, "backoff_min_s": 0.05, "backoff_max_s": 0.5, "keepalive_s": 5, **(mqtt or {})},
        "outbox": {"backend": backend, "path": str(db), "max_bytes": max_bytes, "hist_after_s": hist_after_s},
        "drivers": [{"type": "test_counter", "interval_s": interval_s, "event_every": event_every}],
        "rules": rules or [],
    }


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def write_toml(path: Path, raw: dict[str, Any]) -> Path:
    """Write a config mapping as TOML (tables and arrays of tables one level deep)."""
    lines: list[str] = []
    for section, body in raw.items():
        if isinstance(body, list):
            for item in body:
                lines.append(f"[[{section}]]")
                lines.extend(f"{k} = {_toml_value(v)}" for k, v in item.items())
        else:
            lines.append(f"[{section}]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in body.items())
    path.write_text("\n".join(lines) + "\n")
    return path


def start_agent(config: Path) -> subprocess.Popen[bytes]:
    """``gridsentinel edge run`` in a subprocess, with the test driver registered."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.edge.fake_driver",
            "--log-level",
            "WARNING",
            "edge",
            "run",
            "--config",
            str(config),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM and wait (graceful stop)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def last_seq(db: Path) -> int:
    """Last seq assigned in an outbox file (0 while the file is still being created)."""
    try:
        return read_stats(db).last_seq
    except OutboxError:
        return 0


def pending_seqs(db: Path) -> set[int]:
    """Seqs still unsent in an outbox file."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {row[0] for row in conn.execute("SELECT seq FROM items WHERE sent_ms IS NULL")}
