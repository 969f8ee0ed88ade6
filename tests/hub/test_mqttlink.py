"""MqttLink against real brokers (mosquitto and the embedded one) and a scripted socket peer."""

from __future__ import annotations

import logging
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

import hub.ingest.link
from hub.broker import ThreadedBroker
from hub.ingest.link import MqttLink
from hub.mqtt.codec import decode_remaining_length, encode_remaining_length
from simulators.servers import Mosquitto, free_port, wait_until
from tests.edge.test_publisher_tls import make_certs
from tests.servers import require_binary

pytestmark = pytest.mark.integration

FILTER = "gs/v1/+/+/telemetry"


class Recorder:
    """Collects what a link reports through its callbacks."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[tuple[bytes, bytes, int]] = []
        self.connects = 0
        self.disconnects: list[str] = []

    def on_message(self, topic: bytes, payload: bytes, qos: int) -> None:
        with self.lock:
            self.messages.append((topic, payload, qos))

    def on_connect(self) -> None:
        self.connects += 1

    def on_disconnect(self, reason: str) -> None:
        self.disconnects.append(reason)

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    def payloads(self, topic: bytes | None = None) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if topic is None or t == topic]


LinkFactory = Callable[..., tuple[MqttLink, Recorder]]


@pytest.fixture
def make_link() -> Iterator[LinkFactory]:
    """Started links with a :class:`Recorder` (``recorder=`` reuses one); all stopped after the test."""
    links: list[MqttLink] = []

    def make(port: int, recorder: Recorder | None = None, **options: Any) -> tuple[MqttLink, Recorder]:
        rec = recorder or Recorder()
        values: dict[str, Any] = {
            "client_id": f"link-{len(links)}",
            "subscriptions": [(FILTER, 1)],
            "on_message": rec.on_message,
            "on_connect": rec.on_connect,
            "on_disconnect": rec.on_disconnect,
            "reconnect_min_s": 0.05,
            "reconnect_max_s": 0.2,
        }
        values.update(options)
        link = MqttLink("127.0.0.1", port, **values)
        links.append(link)
        link.start()
        return link, rec

    yield make
    for link in links:
        link.stop()


@pytest.fixture(params=["mosquitto", "embedded"])
def broker_port(request: pytest.FixtureRequest) -> Iterator[int]:
    """The port of a real mosquitto, then of the hub's embedded broker."""
    if request.param == "mosquitto":
        server: Mosquitto = request.getfixturevalue("mosquitto")
        yield server.port
        return
    broker = ThreadedBroker("127.0.0.1", 0)
    broker.start()
    yield broker.port
    broker.stop()


def paho_client(port: int, client_id: str = "", **credentials: str) -> mqtt.Client:
    """A connected paho client with its network thread running."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(1000)
    if credentials:
        client.username_pw_set(credentials["username"], credentials["password"])
    client.connect("127.0.0.1", port)
    client.loop_start()
    wait_until(client.is_connected, 5, what="paho CONNACK")
    return client


def publish_all(port: int, messages: list[tuple[str, bytes, int]], **credentials: str) -> None:
    """Publish with paho and wait until every message was acknowledged (or written, QoS 0)."""
    client = paho_client(port, **credentials)
    try:
        infos = [client.publish(topic, payload, qos) for topic, payload, qos in messages]
        for info in infos:
            info.wait_for_publish(20)
    finally:
        client.disconnect()
        client.loop_stop()


def connected(link: MqttLink) -> Callable[[], bool]:
    return lambda: link.connected


# ------------------------------------------------------------------ real brokers


def test_receives_qos0_and_qos1_with_exact_bytes_in_order(broker_port: int, make_link: LinkFactory) -> None:
    link, rec = make_link(broker_port)
    wait_until(connected(link), 5, what="link connected")
    assert rec.connects == 1
    batches = {
        name: [
            (f"gs/v1/s/{name}/telemetry", bytes([i % 256, 0, 255]) + f"{name}-{i}".encode(), i % 2) for i in range(300)
        ]
        for name in ("dev-a", "dev-b")
    }
    threads = [threading.Thread(target=publish_all, args=(broker_port, batch)) for batch in batches.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_until(lambda: rec.count() >= 600, 10, what="600 messages")
    for name, batch in batches.items():
        got = [m for m in rec.messages if m[0] == f"gs/v1/s/{name}/telemetry".encode()]
        assert [(p, q) for _, p, q in got] == [(p, q) for _, p, q in batch]
    assert link.stats.messages_received == 600
    assert link.stats.pubacks_sent == 300


def test_persistent_session_delivers_a_backlog_exactly_once(broker_port: int, make_link: LinkFactory) -> None:
    link, rec = make_link(broker_port, client_id="hub-persistent")
    wait_until(connected(link), 5, what="link connected")
    link.stop()
    total = 5000
    publish_all(broker_port, [(f"gs/v1/s/dev-{i % 7}/telemetry", f"m{i}".encode(), 1) for i in range(total)])
    link.start()
    wait_until(lambda: rec.count() >= total, 20, what=f"{total} backlog messages")
    # Restart once more and send a marker: had any PUBACK been lost, the broker would redeliver before it.
    link.stop()
    link.start()
    wait_until(connected(link), 5, what="link reconnected")
    publish_all(broker_port, [("gs/v1/s/marker/telemetry", b"marker", 1)])
    wait_until(lambda: rec.count() >= total + 1, 10, what="marker")
    payloads = rec.payloads()
    assert payloads[-1] == b"marker"
    assert len(payloads) == total + 1
    assert sorted(payloads[:-1]) == sorted(f"m{i}".encode() for i in range(total))


def test_a_backlog_longer_than_the_handshake_timeout_does_not_drop_the_link(
    mosquitto: Mosquitto, make_link: LinkFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mosquitto answers SUBSCRIBE after the queued backlog: a long backlog must not count as "no SUBACK"."""
    link, rec = make_link(mosquitto.port, client_id="hub-long-backlog")
    wait_until(connected(link), 5, what="link connected")
    link.stop()
    total = 1500
    # 1.5 MB: more than one read chunk and the socket buffers, so the SUBACK waits behind many reads
    publish_all(mosquitto.port, [(f"gs/v1/s/dev-{i % 3}/telemetry", b"x" * 1000, 1) for i in range(total)])
    monkeypatch.setattr(hub.ingest.link, "CONNECT_TIMEOUT_S", 1.0)
    slow = Recorder()

    def handle(topic: bytes, payload: bytes, qos: int) -> None:
        time.sleep(0.002)  # 1,500 messages take over 3 s, far past the (patched) 1 s handshake timeout
        rec.on_message(topic, payload, qos)

    link2, _ = make_link(mosquitto.port, recorder=slow, client_id="hub-long-backlog", on_message=handle)
    wait_until(lambda: rec.count() >= total, 20, what="backlog")
    wait_until(connected(link2), 5, what="SUBACK after the backlog")
    assert slow.disconnects == []  # the old code gave up with "no SUBACK within 1 s" and reconnected
    assert rec.count() == total


def test_nothing_is_acknowledged_when_before_ack_fails(mosquitto: Mosquitto, make_link: LinkFactory) -> None:
    """A handler that cannot keep what it batched gets it again: no PUBACK, connection dropped, redelivered."""
    calls: list[int] = []

    def before_ack() -> None:
        calls.append(rec.count())
        if len(calls) == 1:
            raise OSError("disk full")

    rec = Recorder()
    link, _ = make_link(mosquitto.port, recorder=rec, client_id="hub-before-ack", before_ack=before_ack)
    wait_until(connected(link), 5, what="link connected")
    publish_all(mosquitto.port, [("gs/v1/s/d/telemetry", f"m{i}".encode(), 1) for i in range(3)])
    wait_until(lambda: len(calls) >= 2 and set(rec.payloads()) == {b"m0", b"m1", b"m2"}, 10, what="redelivery")
    assert any("could not keep" in reason for reason in rec.disconnects)
    first = rec.payloads()[: calls[0]]  # handed over before the failed before_ack: never acknowledged...
    assert first
    for payload in first:  # ...so the broker delivered each of them again
        assert rec.payloads().count(payload) == 2


class Tickets:
    """A stand-in for the series writer: before_ack hands out tickets, released() says how far is safe."""

    def __init__(self) -> None:
        self.issued = 0
        self.safe = 0

    def before_ack(self) -> int:
        self.issued += 1
        return self.issued

    def released(self) -> int:
        return self.safe


def test_acknowledgements_wait_for_released_and_go_out_when_it_advances(
    mosquitto: Mosquitto, make_link: LinkFactory
) -> None:
    tickets = Tickets()
    link, rec = make_link(
        mosquitto.port, client_id="hub-held", before_ack=tickets.before_ack, released=tickets.released
    )
    wait_until(connected(link), 5, what="link connected")
    publish_all(mosquitto.port, [("gs/v1/s/d/telemetry", f"m{i}".encode(), 1) for i in range(200)])
    wait_until(lambda: rec.count() == 200 and link.held_acks == 200, 10, what="200 delivered, all held")
    assert link.stats.pubacks_sent == 0 and tickets.issued >= 1
    tickets.safe = tickets.issued
    link.wake()
    wait_until(lambda: link.stats.pubacks_sent == 200, 5, what="held PUBACKs sent once released")
    assert link.held_acks == 0
    # Proof the broker got them: after a restart of the session nothing is delivered again before a marker.
    link.stop()
    link.start()
    wait_until(connected(link), 5, what="link reconnected")
    publish_all(mosquitto.port, [("gs/v1/s/marker/telemetry", b"marker", 1)])
    wait_until(lambda: rec.count() >= 201, 10, what="marker")
    assert rec.payloads()[200:] == [b"marker"]


def test_messages_never_released_are_delivered_again_after_a_restart(
    mosquitto: Mosquitto, make_link: LinkFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a kill -9 of the hub looks like to the broker: delivered, never acknowledged -> delivered again."""
    monkeypatch.setattr(hub.ingest.link, "RELEASE_WAIT_S", 0.2)
    stuck = Tickets()  # released() stays 0: nothing the handler got is ever safe
    link, rec = make_link(mosquitto.port, client_id="hub-unsafe", before_ack=stuck.before_ack, released=stuck.released)
    wait_until(connected(link), 5, what="link connected")
    sent = [f"m{i}".encode() for i in range(50)]
    publish_all(mosquitto.port, [("gs/v1/s/d/telemetry", payload, 1) for payload in sent])
    wait_until(lambda: rec.count() == 50, 10, what="50 delivered")
    link.stop()  # waits RELEASE_WAIT_S for released(), then disconnects without the PUBACKs
    assert link.stats.pubacks_sent == 0
    fresh = Recorder()
    make_link(mosquitto.port, recorder=fresh, client_id="hub-unsafe")  # the hub again, without the gate
    wait_until(lambda: fresh.count() >= 50, 10, what="the 50 delivered again")
    assert sorted(fresh.payloads()) == sorted(sent)


def test_the_embedded_broker_lets_thousands_wait_for_their_acknowledgement(make_link: LinkFactory) -> None:
    """The hub holds PUBACKs until points are durable: the embedded broker's in-flight window must not
    cap it (with 1,000 it passed 1,000 messages per writer batch, ~5,000 msgs/s)."""
    broker = ThreadedBroker("127.0.0.1", 0)
    broker.start()
    try:
        never = Tickets()  # released() stays 0: every PUBACK is held
        link, rec = make_link(broker.port, client_id="hub-window", before_ack=never.before_ack, released=never.released)
        wait_until(connected(link), 5, what="link connected")
        publish_all(broker.port, [("gs/v1/s/d/telemetry", f"m{i}".encode(), 1) for i in range(3000)])
        wait_until(lambda: rec.count() == 3000, 10, what="3,000 delivered with none acknowledged")
        assert link.held_acks == 3000 and link.stats.pubacks_sent == 0
    finally:
        broker.stop()


def test_a_two_megabyte_payload_arrives_whole(broker_port: int, make_link: LinkFactory) -> None:
    link, rec = make_link(broker_port)
    wait_until(connected(link), 5, what="link connected")
    big = (bytes(range(251)) * 7969)[:2_000_000]  # a period that no chunk size divides
    assert len(big) == 2_000_000
    topic = "gs/v1/s/cam/telemetry"
    publish_all(broker_port, [(topic, b"before", 1), (topic, big, 1), (topic, b"after-1", 1), (topic, b"after-2", 0)])
    wait_until(lambda: rec.count() >= 4, 10, what="4 messages")
    assert rec.payloads() == [b"before", big, b"after-1", b"after-2"]


def test_reconnects_after_a_broker_restart(mosquitto: Mosquitto, make_link: LinkFactory) -> None:
    link, rec = make_link(mosquitto.port, client_id="hub-restart")
    wait_until(connected(link), 5, what="link connected")
    mosquitto.restart()
    wait_until(lambda: rec.connects == 2 and link.connected, 10, what="on_connect after the restart")
    assert rec.disconnects and "closed by broker" in rec.disconnects[0]
    assert link.stats.reconnects == 1
    publish_all(mosquitto.port, [("gs/v1/s/d/telemetry", b"after-restart", 1)])
    wait_until(lambda: b"after-restart" in rec.payloads(), 5, what="message after the restart")


def test_publish_from_another_thread_reaches_a_subscriber(broker_port: int, make_link: LinkFactory) -> None:
    got: list[bytes] = []
    subscriber = paho_client(broker_port, "paho-sub")
    subscriber.on_message = lambda _c, _u, m: got.append(bytes(m.payload))
    subscribed = threading.Event()
    subscriber.on_subscribe = lambda *_a: subscribed.set()
    subscriber.subscribe("gs/v1/s/+/cmd", 1)
    assert subscribed.wait(5)
    link, _ = make_link(broker_port)
    wait_until(connected(link), 5, what="link connected")
    sent = [f"cmd-{i}".encode() for i in range(200)]

    def send_all() -> None:
        for payload in sent:
            link.publish("gs/v1/s/dev-a/cmd", payload, qos=1)

    sender = threading.Thread(target=send_all)
    sender.start()
    sender.join()
    link.publish("gs/v1/s/dev-a/cmd", b"qos0", qos=0)
    try:
        wait_until(lambda: len(got) >= 201, 10, what="201 messages at the subscriber")
        assert got == [*sent, b"qos0"]
        wait_until(lambda: not link._inflight, 5, what="every PUBACK")
        assert link.stats.messages_published == 201
    finally:
        subscriber.disconnect()
        subscriber.loop_stop()


def test_publish_while_disconnected_raises(make_link: LinkFactory) -> None:
    link, rec = make_link(free_port())  # nothing listens there
    wait_until(lambda: rec.disconnects, 5, what="a failed attempt")
    assert "cannot connect" in rec.disconnects[0]
    with pytest.raises(ConnectionError, match="not connected"):
        link.publish("gs/v1/s/d/cmd", b"x")
    with pytest.raises(ValueError, match="QoS"):
        link.publish("gs/v1/s/d/cmd", b"x", qos=2)
    with pytest.raises(ValueError, match="topic"):
        link.publish("gs/v1/s/+/cmd", b"x")


def test_stop_is_quick_while_backing_off(make_link: LinkFactory) -> None:
    link, rec = make_link(free_port(), reconnect_min_s=30.0, reconnect_max_s=30.0)
    wait_until(lambda: rec.disconnects, 5, what="a failed attempt")
    started = time.monotonic()
    link.stop()
    assert time.monotonic() - started < 5  # the backoff alone is 30 s


def test_a_failing_handler_does_not_stop_the_link(
    mosquitto: Mosquitto, make_link: LinkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()

    def on_message(topic: bytes, payload: bytes, qos: int) -> None:
        if payload == b"bad":
            raise RuntimeError("handler bug")
        rec.on_message(topic, payload, qos)

    link, _ = make_link(mosquitto.port, rec, on_message=on_message, client_id="hub-handler")
    wait_until(connected(link), 5, what="link connected")
    topic = "gs/v1/s/d/telemetry"
    with caplog.at_level(logging.ERROR, logger="hub.ingest.link"):
        publish_all(mosquitto.port, [(topic, b"one", 1), (topic, b"bad", 1), (topic, b"two", 1)])
        wait_until(lambda: rec.count() >= 2, 5, what="messages after the failure")
    assert rec.payloads() == [b"one", b"two"]
    assert link.stats.handler_errors == 1
    assert link.stats.pubacks_sent == 3  # the failed one is acknowledged too
    assert link.connected and rec.connects == 1
    assert "on_message failed" in caplog.text and "handler bug" in caplog.text


def test_username_and_password(tmp_path: Path, make_link: LinkFactory) -> None:
    passwd = require_binary("mosquitto_passwd", "mosquitto")
    password_file = tmp_path / "passwd"
    subprocess.run([passwd, "-b", "-c", str(password_file), "hub", "s3cret-pw"], check=True, capture_output=True)
    password_file.chmod(0o600)
    server = Mosquitto(tmp_path / "mosq", extra_conf=f"password_file {password_file}", anonymous=False, log_notice=True)
    server.start()
    try:
        refused, bad = make_link(server.port, username="hub", password="wrong", client_id="hub-bad")
        wait_until(lambda: bad.disconnects, 5, what="refused login")
        assert bad.disconnects[0] == "connection refused: not authorized (5)"  # what mosquitto 2 answers
        assert not refused.connected and bad.connects == 0
        refused.stop()

        link, rec = make_link(server.port, username="hub", password="s3cret-pw", client_id="hub-good")
        wait_until(connected(link), 5, what="good login")
        publish_all(server.port, [("gs/v1/s/d/telemetry", b"authed", 1)], username="hub", password="s3cret-pw")
        wait_until(lambda: rec.payloads() == [b"authed"], 5, what="message over the authenticated link")
    finally:
        server.stop()


def test_an_idle_link_with_keepalive_1_stays_up(broker_port: int, make_link: LinkFactory) -> None:
    link, rec = make_link(broker_port, keepalive=1)
    wait_until(connected(link), 5, what="link connected")
    time.sleep(3)  # the behaviour under test is the passing of time: 3 keepalive periods without traffic
    assert link.connected and rec.connects == 1 and rec.disconnects == []
    publish_all(broker_port, [("gs/v1/s/d/telemetry", b"still-here", 1)])
    wait_until(lambda: rec.payloads() == [b"still-here"], 5, what="message after the idle period")


# ------------------------------------------------------------------ scripted peer


class ScriptedBroker:
    """A listening socket the test drives byte by byte (for what real brokers never send)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.server.getsockname()[1]
        self.server.settimeout(5)
        self.conn: socket.socket | None = None

    def accept(self, suback: bytes = b"\x01") -> ScriptedBroker:
        """Accept the link, answer CONNECT and SUBSCRIBE (``suback`` = the granted codes)."""
        self.conn, _ = self.server.accept()
        self.conn.settimeout(5)
        assert self.packet()[0] == 0x10
        self.conn.sendall(b"\x20\x02\x00\x00")
        header, body = self.packet()
        assert header == 0x82
        self.conn.sendall(bytes((0x90, 2 + len(suback))) + body[:2] + suback)
        return self

    def packet(self) -> tuple[int, bytes]:
        """Read one packet: (fixed header byte, body); PINGREQs are skipped."""
        assert self.conn is not None
        while True:
            head = self._exact(2)
            while head[-1] & 0x80:
                head += self._exact(1)
            length, _ = decode_remaining_length(head, 1)
            body = self._exact(length)
            if head[0] != 0xC0:
                return head[0], body

    def _exact(self, size: int) -> bytes:
        assert self.conn is not None
        data = b""
        while len(data) < size:
            chunk = self.conn.recv(size - len(data))
            if not chunk:
                raise ConnectionError("link closed the connection")
            data += chunk
        return data

    def send(self, data: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(data)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()


@pytest.fixture
def scripted() -> Iterator[ScriptedBroker]:
    peer = ScriptedBroker()
    yield peer
    peer.close()


def _publish(topic: bytes, payload: bytes, qos: int, packet_id: int = 0, dup: bool = False) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic + (packet_id.to_bytes(2, "big") if qos else b"") + payload
    return bytes((0x30 | qos << 1 | (0x08 if dup else 0),)) + encode_remaining_length(len(body)) + body


def test_frames_split_byte_by_byte_are_reassembled(make_link: LinkFactory, scripted: ScriptedBroker) -> None:
    link, rec = make_link(scripted.port)
    scripted.accept()
    wait_until(connected(link), 5, what="link connected")
    frames = _publish(b"t/a", b"x" * 300, 1, 7) + _publish(b"t/b", b"small", 0)
    for i in range(len(frames)):
        scripted.send(frames[i : i + 1])
        if i % 50 == 0:
            time.sleep(0.001)  # let the link see a partial frame, a partial length and a partial header
    wait_until(lambda: rec.count() == 2, 5, what="both messages")
    assert rec.messages == [(b"t/a", b"x" * 300, 1), (b"t/b", b"small", 0)]
    assert scripted.packet() == (0x40, b"\x00\x07")


def test_qos2_is_delivered_once_and_completed(make_link: LinkFactory, scripted: ScriptedBroker) -> None:
    link, rec = make_link(scripted.port)
    scripted.accept()
    wait_until(connected(link), 5, what="link connected")
    scripted.send(_publish(b"t/q2", b"once", 2, 9))
    assert scripted.packet() == (0x50, b"\x00\x09")  # PUBREC
    scripted.send(_publish(b"t/q2", b"once", 2, 9, dup=True))  # re-sent before PUBREL: not delivered again
    assert scripted.packet() == (0x50, b"\x00\x09")
    scripted.send(b"\x62\x02\x00\x09")  # PUBREL
    assert scripted.packet() == (0x70, b"\x00\x09")  # PUBCOMP
    assert rec.messages == [(b"t/q2", b"once", 2)]


def test_a_malformed_frame_drops_the_connection_with_a_reason(make_link: LinkFactory, scripted: ScriptedBroker) -> None:
    link, rec = make_link(scripted.port)
    scripted.accept()
    wait_until(connected(link), 5, what="link connected")
    scripted.send(b"\x32\x03\x00\x05t")  # topic length 5 in a 3-byte body
    wait_until(lambda: rec.disconnects, 5, what="the link dropping the connection")
    assert "protocol error" in rec.disconnects[0]
    scripted.accept()  # and it comes back
    wait_until(lambda: rec.connects == 2, 5, what="reconnect")


def test_a_refused_filter_is_logged_and_the_others_kept(
    make_link: LinkFactory, scripted: ScriptedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="hub.ingest.link"):
        link, _ = make_link(scripted.port, subscriptions=[(FILTER, 1), ("gs/v1/+/+/secret", 1)])
        scripted.accept(suback=b"\x01\x80")
        wait_until(connected(link), 5, what="link connected")
    assert "gs/v1/+/+/secret" in caplog.text


def test_outbound_qos1_in_flight_is_resent_with_dup_after_a_reconnect(
    make_link: LinkFactory, scripted: ScriptedBroker
) -> None:
    link, rec = make_link(scripted.port)
    scripted.accept()
    wait_until(connected(link), 5, what="link connected")
    link.publish("t/out", b"keep-me", qos=1)
    header, body = scripted.packet()
    assert header == 0x32 and body.endswith(b"keep-me")
    assert scripted.conn is not None
    scripted.conn.close()  # no PUBACK
    scripted.conn, _ = scripted.server.accept()
    scripted.conn.settimeout(5)
    assert scripted.packet()[0] == 0x10
    scripted.send(b"\x20\x02\x01\x00")  # session present
    header, resent = scripted.packet()
    assert header == 0x3A and resent == body  # DUP set, same packet id and payload
    assert rec.disconnects


def test_bad_options_are_refused() -> None:
    def noop(_t: bytes, _p: bytes, _q: int) -> None:
        return None

    with pytest.raises(ValueError, match="keepalive"):
        MqttLink("h", 1, client_id="c", subscriptions=[], on_message=noop, keepalive=-1)
    with pytest.raises(ValueError, match="reconnect"):
        MqttLink("h", 1, client_id="c", subscriptions=[], on_message=noop, reconnect_min_s=5, reconnect_max_s=1)
    with pytest.raises(ValueError, match="subscription"):
        MqttLink("h", 1, client_id="c", subscriptions=[("a/#", 3)], on_message=noop)


def test_tls_receives_large_and_small_messages_and_publishes(tmp_path: Path, make_link: LinkFactory) -> None:
    ca, cert, key = make_certs(tmp_path)
    tls_port = free_port()
    server = Mosquitto(
        tmp_path / "mosq",
        extra_conf=f"listener {tls_port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n",
        log_notice=True,
    )
    server.start()
    try:
        untrusted, bad = make_link(tls_port, tls=True, client_id="hub-untrusted")  # system CAs only
        wait_until(lambda: bad.disconnects, 5, what="refused certificate")
        assert "TLS error" in bad.disconnects[0] and "certificate" in bad.disconnects[0]
        untrusted.stop()

        link, rec = make_link(tls_port, tls=True, ca_file=str(ca), client_id="hub-tls")
        wait_until(connected(link), 5, what="link connected over TLS")
        big = (bytes(range(251)) * 7969)[:2_000_000]
        small = [("gs/v1/s/d/telemetry", f"s{i}".encode(), 1) for i in range(500)]
        publish_all(server.port, [("gs/v1/s/d/telemetry", big, 1), *small])
        wait_until(lambda: rec.count() >= 501, 10, what="501 messages over TLS")
        assert rec.payloads() == [big, *(p for _, p, _ in small)]

        got: list[bytes] = []
        subscriber = paho_client(server.port, "paho-tls-sub")
        subscriber.on_message = lambda _c, _u, m: got.append(bytes(m.payload))
        subscribed = threading.Event()
        subscriber.on_subscribe = lambda *_a: subscribed.set()
        subscriber.subscribe("gs/v1/s/+/cmd", 1)
        assert subscribed.wait(5)
        link.publish("gs/v1/s/d/cmd", b"over-tls", qos=1)
        wait_until(lambda: got == [b"over-tls"], 5, what="publish over TLS")
        subscriber.disconnect()
        subscriber.loop_stop()
    finally:
        server.stop()
