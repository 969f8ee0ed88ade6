"""A foreign MQTT client throws hostile payloads and topics at a running hub while a good device keeps publishing.

Every hostile message must be accounted for: in the dead letter with its reason
(payload kept, so nothing is lost), or refused by the broker before it reaches
the hub (topics with ``+``, ``#`` or NUL). The good device's seqs are all stored
and the hub stays up.
"""

from __future__ import annotations

import json
import socket
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from edge import wire
from edge.wire import Channel, PayloadError, TopicError
from hub.mqtt.codec import encode, publish_header
from hub.mqtt.packets import Connack, Connect
from simulators.bench.hostile import TS, _ingest, broker_refused_topics, hostile_corpus
from simulators.servers import Mosquitto, wait_until
from tests.hub.conftest import HubFactory, api
from tests.hub.device import FakeDevice

GOOD_SEQS = 150


def _raw_publish(port: int, topic: bytes, payload: bytes) -> bool:
    """Publish with a hand-made client (paho refuses these topics); True when the broker closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(encode(Connect("raw-hostile", keepalive=60)))
        assert sock.recv(4) == encode(Connack())  # accepted
        sock.sendall(publish_header(topic, 0, None, len(payload)) + payload)  # the topic's bytes as they are
        try:
            return sock.recv(16) == b""
        except ConnectionResetError:
            return True


def _hostile_client(port: int) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="foreign-thrower", protocol=mqtt.MQTTv311)
    connected = threading.Event()
    client.on_connect = lambda *_a: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert connected.wait(5)
    return client


@pytest.mark.integration
def test_hostile_corpus_is_dead_lettered_and_good_device_unaffected(mosquitto: Mosquitto, make_hub: HubFactory) -> None:
    hub = make_hub(demo=True)
    wait_until(lambda: hub.ingest is not None and hub.ingest.connected, what="hub connected")
    good = FakeDevice(mosquitto.port, device_id="kiosk-good", site="site-a")
    good.connect()
    errors: list[BaseException] = []

    def keep_publishing() -> None:
        try:
            for seq in range(1, GOOD_SEQS + 1):
                good.telemetry(seq, temp_c=20.0 + seq % 7)
        except BaseException as exc:  # surfaced by the assert below
            errors.append(exc)

    publisher = threading.Thread(target=keep_publishing)
    publisher.start()
    corpus = hostile_corpus()
    thrower = _hostile_client(mosquitto.port)
    for _round in range(2):
        for case in corpus:
            info = thrower.publish(case.topic, case.payload, qos=1)
            info.wait_for_publish(10)
    refused_by_broker = [name for name, t in broker_refused_topics() if _raw_publish(mosquitto.port, t.encode(), b"{}")]
    publisher.join(60)
    assert not errors and not publisher.is_alive()
    thrower.disconnect()
    thrower.loop_stop()

    expected = Counter(c.reason for c in corpus for _ in range(2))
    assert hub.deadletters is not None
    wait_until(
        lambda: hub.deadletters is not None and hub.deadletters.list_page(limit=1)[0] >= sum(expected.values()),
        20,
        what="every hostile message in the dead letter",
    )
    with api(hub) as client:
        page: dict[str, Any] = client.get("/api/v1/deadletters", params={"limit": 1000}).json()
        health = client.get("/healthz")
    assert page["total"] == sum(expected.values())
    assert Counter(item["reason"] for item in page["items"]) == expected
    by_topic = Counter((item["topic"], item["reason"]) for item in page["items"])
    for case in corpus:
        assert by_topic[(case.topic[:512], case.reason)] >= 2, case.name
    assert all(item["device_id"] != "kiosk-good" for item in page["items"])
    ts_cases = [i for i in page["items"] if i["reason"] == "bad_timestamp"]
    assert ts_cases and all(i["payload_size"] > 0 and i["payload_preview"] for i in ts_cases)  # quarantined, kept
    # topics MQTT forbids never reach the hub: the broker drops the publisher
    assert refused_by_broker == [name for name, _ in broker_refused_topics()]
    assert health.status_code == 200 and health.json()["broker_connected"] is True
    assert hub.writer is not None and hub.writer.flush(10)
    assert hub.store is not None and hub.store.count("kiosk", device="kiosk-good") == GOOD_SEQS
    assert hub.stats.dead_letters.get("internal", 0) == 0
    good.close()


# ------------------------------------------------------------------ property fuzzing of the parsers (no broker)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)
channels = st.sampled_from([c for c in Channel if c is not Channel.SNAPSHOT])
VALID = {
    Channel.TELEMETRY: {"v": 1, "seq": 1, "ts": TS, "metrics": {"a": 1.5}},
    Channel.EVENT: {"v": 1, "seq": 1, "ts": TS, "event_id": "e1", "type": "smoke", "state": "active"},
    Channel.STATUS: {"v": 1, "state": "online", "epoch": 1, "ts": TS},
    Channel.GAP: {"v": 1, "seq": 1, "ts": TS, "first": 1, "last": 2, "reason": "evicted"},
    Channel.CMD: {"v": 1, "id": "c1", "op": "ping", "ts": TS},
    Channel.CMD_ACK: {"v": 1, "seq": 1, "ts": TS, "id": "c1", "result": "ok"},
}


def _decode_or_refuse(channel: Channel, payload: bytes) -> None:
    """Decoding either refuses with a PayloadError or yields a message that re-encodes to the same message."""
    try:
        msg = wire.decode(channel, payload)
    except PayloadError as exc:
        assert exc.reason and len(exc.reason) <= 64
        return
    assert wire.decode(channel, wire.encode(msg)) == msg


@given(channels, st.binary(max_size=600))
def test_decode_of_arbitrary_bytes_only_refuses(channel: Channel, payload: bytes) -> None:
    _decode_or_refuse(channel, payload)


@given(channels, json_values)
def test_decode_of_arbitrary_json_only_refuses(channel: Channel, value: Any) -> None:
    _decode_or_refuse(channel, json.dumps(value).encode())


@given(channels, st.data())
def test_decode_of_mutated_valid_messages_only_refuses(channel: Channel, data: st.DataObject) -> None:
    body = dict(VALID[channel])
    key = data.draw(st.sampled_from([*body, "metrics", "points", "attrs", "labels", "data", "args", "extra"]))
    body[key] = data.draw(json_values)
    _decode_or_refuse(channel, json.dumps(body).encode())


@given(st.text(alphabet="gsv1/+#$\x00ab-_.A é", max_size=60))
def test_topic_parser_only_refuses(name: str) -> None:
    try:
        parsed = wire.parse_topic(name)
    except TopicError as exc:
        assert exc.reason in ("bad_topic", "bad_id", "bad_channel", "unknown_version")
        return
    assert str(parsed) == name


@pytest.fixture(scope="module")
def bare_ingest() -> Iterator[Any]:
    with tempfile.TemporaryDirectory() as tmp:
        ingest, _dls, engine = _ingest(Path(tmp))
        yield ingest
        engine.dispose()


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(["telemetry", "event", "status", "gap", "cmd/ack", "snapshot/e1", "cmd"]),
    st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode())),
)
def test_ingest_never_fails_internally(bare_ingest: Any, tail: str, payload: bytes) -> None:
    """Whatever arrives, ingest accepts it or dead-letters it with a contract reason, never ``internal``."""
    bare_ingest.handle(f"gs/v1/site-f/dev-f/{tail}", payload, TS)
    assert bare_ingest.stats.dead_letters.get("internal", 0) == 0
