"""Load generator against a real mosquitto: every (device, seq) arrives exactly once."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge import wire
from edge.cli import build_parser
from hub.mqtt.codec import FrameBuffer, decode_body, encode
from hub.mqtt.packets import Connack, Pingresp, Puback, Publish
from simulators.loadgen import (
    LoadError,
    LoadSpec,
    TelemetryTemplate,
    _Connection,
    _Worker,
    expected_telemetry,
    run_load,
)
from simulators.servers import Mosquitto, free_port, wait_until


class Collector:
    """A foreign subscriber decoding every telemetry message it receives."""

    def __init__(self, port: int, site: str) -> None:
        self.seen: Counter[tuple[str, int]] = Counter()
        self.messages: dict[tuple[str, int], wire.Telemetry] = {}
        self.points = 0
        self.bad: list[str] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"collector-{site}")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.on_connect = lambda c, *_a: c.subscribe(wire.subscription(wire.Channel.TELEMETRY, site=site), qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        wait_until(self.subscribed.is_set, 10, what="collector subscribed")

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        try:
            parsed = wire.parse_topic(msg.topic)
            telemetry = wire.decode(wire.Channel.TELEMETRY, msg.payload)
        except wire.WireError as exc:
            self.bad.append(str(exc))
            return
        assert isinstance(telemetry, wire.Telemetry)
        with self.lock:
            self.seen[(parsed.device_id, telemetry.seq)] += 1
            self.messages[(parsed.device_id, telemetry.seq)] = telemetry
            self.points += len(telemetry.points)

    def total(self) -> int:
        with self.lock:
            return sum(self.seen.values())

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.mark.integration
@pytest.mark.parametrize(("qos", "processes"), [(1, 2), (0, 1)])
def test_every_device_seq_arrives_once(mosquitto: Mosquitto, qos: int, processes: int) -> None:
    site = f"load{qos}"
    collector = Collector(mosquitto.port, site)
    try:
        spec = LoadSpec(url=mosquitto.url, devices=50, messages=2000, qos=qos, points=3, processes=processes, site=site)
        result = run_load(spec)
        wait_until(lambda: collector.total() >= 2000, 20, what="2000 messages at the subscriber")
    finally:
        collector.close()
    assert result.messages == 2000 and result.connections == 50
    assert len(result.sent) == 50 and all(n == 40 for n in result.sent.values())
    if qos == 1:
        assert result.acked == 2000
    expected = {(d, s) for d, top in result.max_seq.items() for s in range(1, top + 1)}
    assert set(collector.seen) == expected
    assert max(collector.seen.values()) == 1
    assert collector.points == 3 * 2000
    assert collector.bad == []


@pytest.mark.integration
def test_target_rate_is_respected(mosquitto: Mosquitto) -> None:
    result = run_load(LoadSpec(url=mosquitto.url, devices=5, messages=100, rate=200.0, site="paced"))
    assert 0.4 <= result.elapsed_s <= 3.0  # flat out would take ~0.02 s
    assert result.msgs_per_s < 250


def test_unreachable_broker_fails_clearly() -> None:
    with pytest.raises((LoadError, ConnectionRefusedError)):
        run_load(LoadSpec(url=f"mqtt://127.0.0.1:{free_port()}", devices=1, messages=1, connect_timeout_s=2))
    with pytest.raises(LoadError, match="must look like"):
        run_load(LoadSpec(url="http://x", devices=1, messages=1))


def test_cli_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "simulators.loadgen", "--help"], capture_output=True, text=True, check=True
    )
    assert "--devices" in out.stdout and "--qos" in out.stdout


# ---------------------------------------------------------------- pure: payloads and frames


@pytest.mark.parametrize(("points", "metrics"), [(1, 1), (1, 4), (3, 4), (10, 7)])
def test_template_payload_is_what_wire_encode_gives(points: int, metrics: int) -> None:
    template = TelemetryTemplate(points, metrics)
    ts = 1_764_000_000_000
    for seq in (0, 1, 998, 999, 1000, 123_456_789, 2**62):
        payload = template.payload(seq, ts + seq % 7)
        intended = expected_telemetry(seq, ts + seq % 7, points, metrics)
        assert payload == wire.encode(intended)
        decoded = wire.decode(wire.Channel.TELEMETRY, payload)
        assert isinstance(decoded, wire.Telemetry)
        assert (decoded.seq, decoded.ts, len(decoded.points)) == (seq, ts + seq % 7, points)
        assert decoded.points[-1].ts == decoded.ts and decoded.points[0].ts == decoded.ts - (points - 1)
        assert decoded.points[0].metrics == {f"m{j}": float((seq + j) % 1000) for j in range(metrics)}


@pytest.mark.parametrize("qos", [1, 0])
def test_published_frames_decode_with_the_codec(qos: int) -> None:
    spec = LoadSpec(devices=1, qos=qos, points=3, seq_start=5)
    worker = _Worker(spec, ["load-00001"])
    try:
        conn = worker.conns[0]
        for _ in range(3):
            worker._publish(conn, 1_764_000_000_000)
        got = [decode_body(header, body) for header, body in FrameBuffer().frames(bytes(conn.out))]
    finally:
        worker.sel.close()
    template = TelemetryTemplate(3, spec.metrics)
    topic = wire.topic("load", "load-00001", wire.Channel.TELEMETRY)
    assert got == [
        Publish(topic, template.payload(5 + k, 1_764_000_000_000 + 3 * k), qos, packet_id=k + 1 if qos else None)
        for k in range(3)
    ]


def test_broker_answers_are_read_however_the_stream_is_cut() -> None:
    stream = encode(Connack()) + b"".join(encode(Puback(pid)) for pid in (1, 2, 3)) + encode(Pingresp())
    for cut in range(len(stream) + 1):
        worker = _Worker(LoadSpec(devices=1), ["load-00001"])
        conn = worker.conns[0]
        ours, theirs = socket.socketpair()
        try:
            conn.sock = ours
            for _ in range(3):
                conn.next_packet_id()
            for part in (stream[:cut], stream[cut:]):
                if part:
                    theirs.sendall(part)
                    worker._read(conn)
            assert (worker.connacked, worker.acked, conn.inflight) == (1, 3, set())
        finally:
            ours.close()
            theirs.close()
            worker.sel.close()
    worker = _Worker(LoadSpec(devices=1), ["load-00001"])
    conn = worker.conns[0]
    ours, theirs = socket.socketpair()
    try:
        conn.sock = ours
        theirs.sendall(encode(Connack(5)))
        with pytest.raises(LoadError, match="not authorized"):
            worker._read(conn)
        theirs.sendall(b"\x40\xff\xff\xff\xff\x01")
        with pytest.raises(LoadError, match="malformed"):
            worker._read(conn)
    finally:
        ours.close()
        theirs.close()
        worker.sel.close()


def test_packet_ids_wrap_and_skip_ids_in_flight() -> None:
    conn = _Connection("load-00000", "gs/v1/load/load-00000/telemetry")
    assert [conn.next_packet_id() for _ in range(3)] == [1, 2, 3]
    conn.inflight.discard(3)
    conn.next_pid = 65534
    assert [conn.next_packet_id() for _ in range(3)] == [65534, 65535, 3]  # wraps past 1 and 2, still in flight
    assert conn.inflight == {1, 2, 3, 65534, 65535}


def test_bad_specs_name_the_problem() -> None:
    with pytest.raises(LoadError, match="points must be"):
        run_load(LoadSpec(points=wire.MAX_POINTS_PER_MESSAGE + 1))
    with pytest.raises(LoadError, match="metrics 1"):
        run_load(LoadSpec(metrics=0))
    with pytest.raises(LoadError, match="invalid telemetry"):
        run_load(LoadSpec(site="no/slash"))
    with pytest.raises(LoadError, match="rate>=0"):
        run_load(LoadSpec(rate=-1))


# ---------------------------------------------------------------- against a real mosquitto


@pytest.mark.integration
def test_qos1_exact_counts_max_seq_and_values(mosquitto: Mosquitto) -> None:
    site = "exact"
    collector = Collector(mosquitto.port, site)
    spec = LoadSpec(url=mosquitto.url, devices=7, messages=100, qos=1, points=2, processes=2, site=site, seq_start=5)
    try:
        result = run_load(spec)
        wait_until(lambda: collector.total() >= 100, 20, what="100 messages at the subscriber")
    finally:
        collector.close()
    ids = spec.device_ids()
    # 100 messages dealt round-robin over 7 devices: the first two get 15, the rest 14
    assert result.sent == {d: 15 if i < 2 else 14 for i, d in enumerate(ids)}
    assert result.max_seq == {d: 5 + n - 1 for d, n in result.sent.items()}
    assert result.acked == 100 and result.messages == 100 and result.connections == 7
    assert set(collector.seen) == {(d, s) for d, n in result.sent.items() for s in range(5, 5 + n)}
    assert max(collector.seen.values()) == 1 and collector.bad == []
    for device in ids:
        got = [collector.messages[(device, s)] for s in range(5, 5 + result.sent[device])]
        assert got == [expected_telemetry(m.seq, m.ts, 2, spec.metrics) for m in got]  # values follow seq
        stamps = [p.ts for m in got for p in m.points]
        assert stamps == sorted(set(stamps))  # strictly increasing per device, across messages too


@pytest.mark.integration
def test_rate_pacing_is_roughly_honoured(mosquitto: Mosquitto) -> None:
    result = run_load(LoadSpec(url=mosquitto.url, devices=20, messages=2000, rate=1000.0, site="paced2"))
    assert result.acked == 2000
    assert result.elapsed_s >= 1.5  # flat out this takes well under 0.2 s


@pytest.mark.integration
def test_refused_connection_names_device_and_return_code(tmp_path: Path) -> None:
    server = Mosquitto(tmp_path / "mosquitto", anonymous=False, log_notice=True)
    server.start()
    try:
        with pytest.raises(LoadError, match=r"load-\d{5}: connection refused: not authorized \(5\)"):
            run_load(LoadSpec(url=server.url, devices=3, messages=10, connect_timeout_s=10))
    finally:
        server.stop()


def test_sim_load_cli_takes_the_generator_options_directly() -> None:
    """``gridsentinel sim load --url ...`` (argparse.REMAINDER used to refuse a leading option)."""
    args = build_parser().parse_args(["sim", "load", "--url", "mqtt://127.0.0.1:1884", "--devices", "3", "--json"])
    assert (args.url, args.devices, args.json) == ("mqtt://127.0.0.1:1884", 3, True)
    assert args.func.__name__ == "load_cmd"
