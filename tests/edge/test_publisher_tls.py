"""The publisher over TLS with username/password against a real mosquitto (mqtts listener)."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

import tests.edge.fake_driver  # noqa: F401  (registers test_counter)
from edge import wire
from edge.agent import Agent
from edge.config import parse_config
from edge.publisher import backoff_delay
from simulators.servers import Mosquitto, free_port, wait_until
from tests.edge.agent_helpers import agent_raw
from tests.edge.mqtt_probe import Probe


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)


def make_certs(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    ca_key, ca, key, csr, cert = (folder / n for n in ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem"))
    ext = folder / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _run(
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=gs-test-ca",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
    )
    _run(
        "openssl",
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        str(key),
        "-out",
        str(csr),
    )
    _run(
        "openssl",
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        str(ext),
        "-out",
        str(cert),
    )
    return ca, cert, key


def test_backoff_is_jittered_exponential_and_bounded() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(n, 0.5, 8.0, rng) for n in range(10)]
    for n, delay in enumerate(delays):
        base = min(8.0, 0.5 * 2**n)
        assert base / 2 <= delay <= base
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered, not a fixed ladder


@pytest.mark.integration
def test_tls_with_password(tmp_path: Path) -> None:
    ca, cert, key = make_certs(tmp_path)
    passwords = tmp_path / "passwd"
    passwords.write_text("dev-1:right-password\n")
    _run("mosquitto_passwd", "-U", str(passwords))
    tls_port = free_port()
    server = Mosquitto(
        tmp_path / "broker",
        extra_conf=f"password_file {passwords}\n"
        f"listener {tls_port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n",
        log_notice=True,
    )
    server.start()
    probe = Probe(server.url, wire.subscription(site="site-a", device_id="dev-1"))
    url = f"mqtts://127.0.0.1:{tls_port}"
    secret = tmp_path / "pw"
    secret.write_text("right-password\n")
    good = Agent(
        parse_config(
            agent_raw(
                url,
                tmp_path / "o.db",
                interval_s=0.05,
                backend="memory",
                mqtt={"username": "dev-1", "password_file": str(secret), "tls": {"ca": str(ca)}},
            )
        )
    )
    good.start()
    try:
        wait_until(lambda: len(probe.on(wire.Channel.TELEMETRY)) >= 3, 15, what="telemetry over TLS")
    finally:
        good.stop()
    bad = Agent(
        parse_config(
            agent_raw(
                url,
                tmp_path / "o2.db",
                device="dev-1",
                interval_s=0.05,
                backend="memory",
                mqtt={"username": "dev-1", "password": "wrong", "tls": {"ca": str(ca)}},
            )
        )
    )
    before = len(probe.on(wire.Channel.TELEMETRY))
    bad.start()
    try:
        wait_until(lambda: bad.outbox.stats().pending >= 10, 10, what="bad agent buffering")
        assert bad.publisher is not None and bad.publisher.connects == 0
        assert bad.outbox.stats().sent == 0  # refused: nothing leaves the outbox
    finally:
        bad.stop()
        probe.close()
        server.stop()
    assert len(probe.on(wire.Channel.TELEMETRY)) == before
