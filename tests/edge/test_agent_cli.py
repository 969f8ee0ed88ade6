"""``gridsentinel edge run`` under a systemd-like supervisor: sd_notify READY/WATCHDOG/STOPPING; ``status``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import tests.edge.fake_driver  # noqa: F401  (registers test_counter for the status command)
from edge.cli import main
from edge.systemd import sd_notify, watchdog_seconds
from simulators.servers import free_port, wait_until
from tests.edge.agent_helpers import REPO, agent_raw, last_seq, terminate, write_toml


def test_sd_notify_sends_a_datagram(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        assert sd_notify("READY=1")
        assert sock.recv(64) == b"READY=1"
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not sd_notify("READY=1")
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert watchdog_seconds() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # the watchdog is meant for another process
    assert watchdog_seconds() is None


def test_run_notifies_systemd_and_status_reads_the_outbox(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "o.db"
    # no broker listens there: the agent must still start, buffer, and keep the watchdog fed
    config = write_toml(tmp_path / "a.toml", agent_raw(f"mqtt://127.0.0.1:{free_port()}", db, interval_s=0.05))
    notify_path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(notify_path)
        sock.settimeout(10)
        env = {**os.environ, "NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "400000"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.edge.fake_driver", "edge", "run", "--config", str(config)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            got = [sock.recv(64), sock.recv(64), sock.recv(64)]
            assert got[0] == b"READY=1"
            assert got[1:] == [b"WATCHDOG=1", b"WATCHDOG=1"]
            wait_until(lambda: last_seq(db) >= 5, 10, what="buffered telemetry")
        finally:
            terminate(proc)
        assert proc.returncode == 0
        rest = []
        sock.settimeout(0.5)
        try:
            while True:
                rest.append(sock.recv(64))
        except TimeoutError:
            pass
        assert rest[-1] == b"STOPPING=1"
    capsys.readouterr()
    assert main(["edge", "status", "--config", str(config), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["epoch"] == 1 and status["pending"] == status["last_seq"] >= 5 and status["sent"] == 0
    assert main(["edge", "status", "--config", str(config)]) == 0
    assert "pending" in capsys.readouterr().out


def test_redact_without_camera_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib

    real = importlib.import_module

    def fake(name: str, package: str | None = None) -> object:
        if name == "edge.camera.redact_cli":
            raise ImportError("No module named 'cv2'", name="cv2")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", fake)
    assert main(["edge", "redact"]) == 2
    assert "needs gridsentinel[camera]" in capsys.readouterr().err
