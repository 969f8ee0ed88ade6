"""What every launcher shares: free ports, readiness probes, binary lookup and :class:`ServerProcess`.

A server runs in a caller-owned work dir on a free loopback port; its stdout and stderr go to
``{name}.log`` there, and it is ready once :meth:`ServerProcess.ready` says so (a port that accepts
connections, or an HTTP probe). A missing binary raises :class:`MissingBinary` naming the Debian
package to install (tests turn it into a skip, benches and scenarios into a message).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar


class ServerError(RuntimeError):
    """A server is missing, did not start, or refused a request; the message says which and why."""


class MissingBinary(ServerError):
    """A server's binary is not installed; the message names the Debian package."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (it may be taken before use: starts retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 0.5) -> bool:
    """Whether ``url`` answers with a 2xx status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError):
        return False


def wait_until(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.02, what: str = "") -> None:
    """Poll ``condition`` until it is truthy; raise :class:`TimeoutError` naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)


def find_binary(name: str) -> str | None:
    """Path of ``name`` on PATH or in /usr/sbin (Debian puts mosquitto there), else None."""
    found = shutil.which(name)
    if found:
        return found
    sbin = Path("/usr/sbin") / name
    return str(sbin) if sbin.exists() else None


def require(name: str, package: str) -> str:
    """Path of binary ``name``, or :class:`MissingBinary` naming the Debian ``package``."""
    path = find_binary(name)
    if path is None:
        raise MissingBinary(f"{name} not found: install the Debian package '{package}'")
    return path


def terminate_process(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM a running ``proc`` and wait for it; SIGKILL after ``timeout`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        kill_process(proc)


def kill_process(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL a running ``proc`` (a crash) and reap it."""
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()


class ServerProcess:
    """One server subprocess in ``workdir``; subclasses say how to start it (:meth:`command`) and when it is
    ready (:meth:`ready`). ``stop`` + ``start`` and ``kill`` + ``start`` bring it back on the same port(s)."""

    #: The binary, and the name of the log file.
    name: ClassVar[str] = "server"
    #: The Debian package that installs the binary.
    package: ClassVar[str] = "?"
    #: Seconds :meth:`start` waits for :meth:`ready`.
    start_timeout: ClassVar[float] = 30.0
    #: Seconds a SIGTERM gets before SIGKILL.
    stop_timeout: ClassVar[float] = 15.0

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.binary = self.locate()
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        # a port picked here may be taken before the server binds it: the first start retries on another
        self._port_fixed = port is not None
        self.log_path = workdir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def locate(self) -> str:
        """Path of the server's binary (:class:`MissingBinary` when it is not installed)."""
        return require(self.name, self.package)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        """The argv that starts the server (writing its config first when it has one)."""
        raise NotImplementedError

    def ready(self) -> bool:
        """True once the server serves requests (default: its port accepts connections)."""
        return port_open(self.port)

    def new_ports(self) -> None:
        """Pick fresh free port(s) after a start found one taken."""
        self.port = free_port()

    def on_started(self) -> None:
        """Called after every start once the server is ready (e.g. to create a database)."""

    def start(self, timeout: float | None = None) -> None:
        """Start and wait until :meth:`ready`; :class:`ServerError` with the log tail otherwise."""
        for attempt in range(3):
            try:
                self._start_once(self.start_timeout if timeout is None else timeout)
                break
            except ServerError as exc:
                if self._port_fixed or attempt == 2 or "in use" not in str(exc):
                    raise
                self.new_ports()
        self._port_fixed = True  # a restart comes back where clients expect it
        self.starts += 1
        self.on_started()

    def _start_once(self, timeout: float) -> None:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.workdir
            )
        deadline = time.monotonic() + timeout
        while not self.ready():
            code = self.proc.poll()
            if code is not None or time.monotonic() > deadline:
                self.kill()
                with self.log_path.open("rb") as log:
                    log.seek(offset)
                    tail = log.read().decode(errors="replace")[-2000:]
                state = f"exited with {code}" if code is not None else f"not ready within {timeout:g}s"
                raise ServerError(f"{self.name} on port {self.port} {state} ({self.log_path}): {tail}")
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM and wait (the server saves what it keeps); SIGKILL after :attr:`stop_timeout`."""
        proc, self.proc = self.proc, None
        terminate_process(proc, self.stop_timeout)

    def kill(self) -> None:
        """SIGKILL: a crash (nothing saved beyond what the server had made durable)."""
        proc, self.proc = self.proc, None
        kill_process(proc)

    def restart(self) -> None:
        """Stop and start again on the same port(s)."""
        self.stop()
        self.start()
