"""MQTT brokers: a real mosquitto (:class:`Mosquitto`) and the hub's embedded broker, in this process
(:class:`EmbeddedBroker`, for scenarios without mosquitto) or in a child (:class:`EmbeddedBrokerProcess`,
for the broker bench)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from hub.broker import ThreadedBroker
from simulators.servers.base import ServerProcess, free_port

#: Mosquitto settings that never drop QoS 1 messages in bursts or while a persistent session is away
#: (the defaults -- max_queued_messages 1000, max_inflight_messages 20 -- do; see docs/mosquitto.conf).
NO_DROP_MOSQUITTO_CONF: Final = (
    "max_queued_messages 0",
    "max_queued_bytes 0",
    "max_inflight_messages 20000",  # as docs/mosquitto.conf: the hub holds PUBACKs until points are durable
    "max_keepalive 3600",
    "queue_qos0_messages false",
    "persistent_client_expiration 1d",
)

#: The edge and broker benches' limits: nothing queued or in flight is ever refused.
UNLIMITED_MOSQUITTO_CONF: Final = ("max_inflight_messages 0", "max_queued_messages 0")


class Mosquitto(ServerProcess):
    """A real mosquitto on loopback: anonymous or not, persistent sessions (autosaved every second) unless
    ``persistence=False``, ``limits`` that never drop QoS 1 bursts, and ``extra_conf`` appended (password
    and ACL files, a TLS listener). ``kill`` is a broker crash; ``reload`` rereads password and ACL files."""

    name = "mosquitto"
    package = "mosquitto"

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        extra_conf: str = "",
        anonymous: bool = True,
        persistence: bool = True,
        max_connections: int = -1,
        limits: Sequence[str] = NO_DROP_MOSQUITTO_CONF,
        log_notice: bool = False,
    ) -> None:
        super().__init__(workdir, port)
        self.extra_conf = extra_conf
        self.anonymous = anonymous
        self.persistence = persistence
        self.max_connections = max_connections
        self.limits = tuple(limits)
        #: log connections and reloads too (notice level), not only errors and warnings
        self.log_notice = log_notice

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT``."""
        return f"mqtt://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        """Write mosquitto.conf into the work dir and return its path."""
        if self.persistence:
            persistence = ["persistence true", f"persistence_location {self.workdir}/", "autosave_interval 1"]
        else:
            persistence = ["persistence false"]  # queues live in memory
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"max_connections {self.max_connections}",
            f"allow_anonymous {'true' if self.anonymous else 'false'}",
            "user root",  # started as root, mosquitto would switch to user mosquitto and lose its log file
            *persistence,
            *self.limits,
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            *(["log_type notice"] if self.log_notice else []),
            self.extra_conf,
            "",
        ]
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines))
        return conf

    def command(self) -> list[str]:
        """``mosquitto -c mosquitto.conf``."""
        return [self.binary, "-c", str(self.write_config())]

    def reload(self) -> None:
        """SIGHUP: mosquitto rereads its password and ACL files."""
        assert self.proc is not None and self.proc.poll() is None, "mosquitto is not running"
        self.proc.send_signal(signal.SIGHUP)


class EmbeddedBrokerProcess(ServerProcess):
    """The hub's embedded broker alone in a child process (``python -m hub.broker``)."""

    name = "embedded-broker"
    package = "gridsentinel"

    def locate(self) -> str:
        """This Python."""
        return sys.executable

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT``."""
        return f"mqtt://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """``python -m hub.broker --port PORT``, logging warnings and worse."""
        return [self.binary, "-m", "hub.broker", "--port", str(self.port), "--log-level", "warning"]


class EmbeddedBroker:
    """The hub's broker in this process on a free loopback port (its sessions live in memory)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._broker: Any = None

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT``."""
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start listening."""
        self._broker = ThreadedBroker("127.0.0.1", self.port)
        self._broker.start()

    def stop(self) -> None:
        """Stop (its sessions are lost)."""
        if self._broker is not None:
            self._broker.stop()
            self._broker = None

    def kill(self) -> None:
        """As :meth:`stop`: an in-memory broker has nothing to lose by stopping cleanly."""
        self.stop()
