"""The MQTT 3.1.1 codec: round trips, exact bytes, framing a stream however it is cut, and malformed input
raising typed errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.mqtt.codec import (
    FrameBuffer,
    decode,
    decode_body,
    decode_remaining_length,
    encode,
    encode_remaining_length,
    next_frame,
    publish_layout,
)
from hub.mqtt.packets import (
    MAX_REMAINING_LENGTH,
    Connack,
    Connect,
    Disconnect,
    MalformedPacketError,
    Packet,
    PacketTooLargeError,
    Pingreq,
    Pingresp,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
    Will,
    connack_reason,
)

texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
packet_ids = st.integers(1, 0xFFFF)


@st.composite
def publishes(draw: st.DrawFn) -> Publish:
    qos = draw(st.integers(0, 2))
    return Publish(
        draw(texts.filter(bool)),
        draw(st.binary(max_size=300)),
        qos,
        draw(st.booleans()),
        draw(st.booleans()) if qos else False,
        draw(packet_ids) if qos else None,
    )


@st.composite
def connects(draw: st.DrawFn) -> Connect:
    username = draw(st.none() | texts)
    return Connect(
        draw(texts),
        draw(st.booleans()),
        draw(st.integers(0, 0xFFFF)),
        draw(st.none() | st.builds(Will, texts, st.binary(max_size=50), st.integers(0, 2), st.booleans())),
        username,
        # MQTT 3.1.1: no password without a user name.
        None if username is None else draw(st.none() | st.binary(max_size=20)),
    )


subscribes = st.builds(Subscribe, packet_ids, st.lists(st.tuples(texts, st.integers(0, 2)), min_size=1).map(tuple))
others = st.one_of(
    st.builds(Puback, packet_ids),
    st.builds(Pubrec, packet_ids),
    st.builds(Pubrel, packet_ids),
    st.builds(Pubcomp, packet_ids),
    st.builds(Unsuback, packet_ids),
    st.builds(Connack, st.integers(0, 5), st.booleans()),
    st.builds(Suback, packet_ids, st.lists(st.sampled_from([0, 1, 2, 0x80]), min_size=1).map(tuple)),
    st.builds(Unsubscribe, packet_ids, st.lists(texts, min_size=1).map(tuple)),
    st.just(Pingreq()),
    st.just(Disconnect()),
)
packets = st.one_of(publishes(), connects(), subscribes, others)


@given(st.integers(0, MAX_REMAINING_LENGTH))
def test_remaining_length_round_trips(value: int) -> None:
    raw = encode_remaining_length(value)
    assert 1 <= len(raw) <= 4
    assert decode_remaining_length(raw + b"tail") == (value, len(raw))


@pytest.mark.parametrize(
    ("value", "raw"),
    [(0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16_383, b"\xff\x7f"), (16_384, b"\x80\x80\x01")],
)
def test_remaining_length_spec_examples(value: int, raw: bytes) -> None:
    assert encode_remaining_length(value) == raw


def test_remaining_length_over_four_bytes_is_malformed() -> None:
    with pytest.raises(MalformedPacketError) as err:
        decode_remaining_length(b"\xff\xff\xff\xff\x01")
    assert err.value.reason == "bad_remaining_length"


@given(packets)
def test_every_packet_round_trips(packet: Packet) -> None:
    raw = encode(packet)
    assert decode(raw + b"\x00next") == (packet, len(raw))


@given(packets)
def test_every_truncation_is_a_typed_error(packet: Packet) -> None:
    raw = encode(packet)
    for cut in range(len(raw)):
        with pytest.raises(MalformedPacketError):
            decode(raw[:cut])


@given(st.binary(max_size=64))
def test_random_bytes_decode_or_raise_typed_error(raw: bytes) -> None:
    try:
        packet, used = decode(raw)
    except MalformedPacketError:
        return
    assert 0 < used <= len(raw)
    assert encode(packet) is not None


def test_publish_qos1_exact_bytes() -> None:
    raw = encode(Publish("a/b", b"hi", qos=1, retain=True, packet_id=10))
    assert raw == b"\x33\x09\x00\x03a/b\x00\x0ahi"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x36\x05\x00\x01ax\x00", "bad_qos"),  # QoS 3
        (b"\x38\x04\x00\x01ab", "dup_on_qos0"),
        (b"\x32\x05\x00\x01a\x00\x00", "zero_packet_id"),
        (b"\x30\x04\x00\x01\x00b", "nul_in_string"),
        (b"\x30\x04\x00\x01\xffb", "bad_utf8"),
        (b"\x80\x06\x00\x01\x00\x01a\x00", "bad_fixed_header_flags"),  # SUBSCRIBE needs flags 0b0010
        (b"\x82\x02\x00\x01", "empty_subscribe"),
        (b"\x82\x06\x00\x01\x00\x01a\x03", "bad_qos"),
        (b"\xc0\x01\x00", "bad_length"),
        (b"\xf0\x00", "bad_packet_type"),
        (b"\x00\x00", "bad_packet_type"),
        (b"\x40\x03\x00\x01\x00", "bad_length"),
    ],
)
def test_malformed_packets_carry_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(MalformedPacketError) as err:
        decode(raw)
    assert err.value.reason == reason


def test_connect_reserved_flag_is_malformed() -> None:
    raw = bytearray(encode(Connect("c")))
    raw[9] |= 0x01  # connect flags byte
    with pytest.raises(MalformedPacketError) as err:
        decode(bytes(raw))
    assert err.value.reason == "reserved_flag"


# --------------------------------------------------------------------------- framing a stream


def _stream() -> bytes:
    return (
        encode(Connack())
        + b"".join(encode(Puback(pid)) for pid in (1, 2, 65535))
        + encode(Pingresp())
        + encode(Publish("a/b", b"p" * 200, qos=1, packet_id=7))
        + encode(Publish("c", b"q" * 70_000))  # a 3-byte remaining length
    )


def test_frame_buffer_reassembles_any_split() -> None:
    stream = _stream()
    want = [decode(stream[i:])[0] for i in (0, 4, 8, 12, 16)]
    for cut in range(0, len(stream) + 1, 7):
        frames = FrameBuffer()
        got = frames.frames(stream[:cut]) + frames.frames(stream[cut:])
        packets = [decode_body(header, body) for header, body in got]
        assert packets[:5] == want and len(packets) == 7
        assert packets[5] == Publish("a/b", b"p" * 200, qos=1, packet_id=7)
        assert packets[6] == Publish("c", b"q" * 70_000)
        assert frames.frames(b"") == []


@given(st.lists(st.integers(1, 500), max_size=30))
def test_frame_buffer_any_chunking_gives_the_same_frames(sizes: list[int]) -> None:
    stream = _stream()
    frames = FrameBuffer()
    got: list[tuple[int, bytes]] = []
    pos = 0
    for size in [*sizes, len(stream)]:
        got += frames.frames(stream[pos : pos + size])
        pos += size
    assert got == FrameBuffer().frames(stream)


def test_next_frame_locates_without_copying_and_reports_what_is_missing() -> None:
    frame = encode(Publish("a/b", b"x" * 300, qos=1, packet_id=9))
    assert next_frame(frame, 0) == (3, len(frame))  # 2-byte remaining length
    assert next_frame(frame[:100], 0) == (3, len(frame))  # body cut: needs len(frame) bytes
    assert next_frame(frame[:2], 0) == (3, 3)  # remaining length cut: one more byte than there is
    assert next_frame(b"\x00" + frame, 1) == (4, len(frame) + 1)
    topic, payload_start = publish_layout(frame, 3, len(frame), 1)
    assert topic == b"a/b" and frame[payload_start - 2 : payload_start] == b"\x00\x09"
    assert frame[payload_start:] == b"x" * 300


def test_frame_over_the_cap_or_with_a_long_length_is_refused() -> None:
    with pytest.raises(PacketTooLargeError) as info:
        FrameBuffer(max_length=100).frames(encode(Publish("t", b"x" * 101)))
    assert info.value.reason == "packet_too_large"
    with pytest.raises(MalformedPacketError, match="bad_remaining_length"):
        FrameBuffer().frames(b"\x40\xff\xff\xff\xff\x01")


def test_publish_layout_refuses_fields_past_the_body() -> None:
    with pytest.raises(MalformedPacketError, match="PUBLISH topic"):
        publish_layout(b"\x00\x05ab", 0, 4, 0)
    with pytest.raises(MalformedPacketError, match="PUBLISH packet id"):
        publish_layout(b"\x00\x01a\x00", 0, 4, 1)


def test_connack_reasons_name_the_mqtt_meaning() -> None:
    assert connack_reason(5) == "connection refused: not authorized (5)"
    assert connack_reason(4) == "connection refused: bad user name or password (4)"
    assert "unknown" in connack_reason(42)
