"""The MQTT 3.1.1 codec: round trips, exact bytes, and malformed input raising typed errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.broker.decoding import decode, decode_remaining_length
from hub.broker.packets import (
    MAX_REMAINING_LENGTH,
    Connack,
    Connect,
    Disconnect,
    MalformedPacketError,
    Packet,
    Pingreq,
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
    encode,
    encode_remaining_length,
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
