"""Real servers for integration tests, each on a free loopback port in its own temp dir.

Binaries come from Debian packages, which the README's test command installs when
it runs as root. When a binary is missing the test is skipped with the reason --
except under CI (``CI`` or ``GS_REQUIRE_SERVERS`` set), where a missing server is
a failure: a skipped integration test must never pass for a green run.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from simulators.bench.util import NO_DROP_MOSQUITTO_CONF


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.02, what: str = "") -> None:
    """Poll ``condition`` until it is truthy; fail the test with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def servers_required() -> bool:
    """True when missing server binaries must fail the run instead of skipping."""
    return bool(os.environ.get("CI") or os.environ.get("GS_REQUIRE_SERVERS"))


def require_binary(name: str, package: str) -> str:
    """Path of binary ``name``; skip (or fail under CI) naming the Debian ``package`` to install."""
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if path is None:
        message = f"{name} not found: install the Debian package '{package}' (the README test command does, as root)"
        if servers_required():
            pytest.fail(message)
        pytest.skip(message)
    return path


class ServerProcess:
    """Stop/kill/restart of a server subprocess in ``self.proc``; subclasses define ``start``."""

    proc: subprocess.Popen[bytes] | None = None
    #: Seconds a SIGTERM gets before SIGKILL.
    stop_timeout: float = 10.0

    def start(self) -> None:
        """Start the server and wait until it is ready."""
        raise NotImplementedError

    def stop(self) -> None:
        """SIGTERM and wait (the server saves what it keeps); SIGKILL after :attr:`stop_timeout`."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL the server (nothing saved)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same port(s)."""
        self.stop()
        self.start()


class MosquittoServer(ServerProcess):
    """A real mosquitto on a free loopback port, with settings that never drop QoS 1 bursts."""

    def __init__(self, workdir: Path, extra_conf: str = "", port: int | None = None, *, anonymous: bool = True) -> None:
        self.binary = require_binary("mosquitto", "mosquitto")
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self._port_chosen = port is not None
        self.extra_conf = extra_conf
        self.anonymous = anonymous
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT``."""
        return f"mqtt://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        """Write mosquitto.conf into the work dir and return its path."""
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            "\n".join(
                [
                    f"listener {self.port} 127.0.0.1",
                    f"allow_anonymous {'true' if self.anonymous else 'false'}",
                    "user root",
                    "persistence true",
                    f"persistence_location {self.workdir}/",
                    "autosave_interval 1",
                    *NO_DROP_MOSQUITTO_CONF,
                    f"log_dest file {self.workdir}/mosquitto.log",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    self.extra_conf,
                    "",
                ]
            )
        )
        return conf

    def start(self, timeout: float = 10.0) -> None:
        """Start the broker and wait until it accepts connections.

        A free port can be taken by another process between :func:`free_port` and the
        broker's bind; when the port was picked here (not given), retry on a new one.
        """
        for attempt in range(3):
            try:
                self._start_once(timeout)
                return
            except RuntimeError as exc:
                if self._port_chosen or attempt == 2 or "in use" not in str(exc):
                    raise
                self.port = free_port()

    def _start_once(self, timeout: float) -> None:
        conf = self.write_config()
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.workdir
        )
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                log = self.workdir / "mosquitto.log"
                err += log.read_text(errors="replace") if log.exists() else ""
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {err}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout}s")
            time.sleep(0.02)

    def reload(self) -> None:
        """SIGHUP: mosquitto rereads its password and ACL files."""
        assert self.proc is not None and self.proc.poll() is None, "mosquitto is not running"
        self.proc.send_signal(signal.SIGHUP)
