"""MQTT 3.1.1 control packets: typed values, errors and encoding (pure, no I/O).

Decoding lives in :mod:`hub.broker.decoding`. Anything that breaks the specification
raises :class:`MalformedPacketError` with a stable ``reason`` code, and the server
closes that client.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

#: Largest value the 4-byte remaining-length varint can carry (268,435,455).
MAX_REMAINING_LENGTH: Final = 268_435_455

CONNACK_ACCEPTED: Final = 0x00
CONNACK_BAD_PROTOCOL: Final = 0x01
CONNACK_IDENTIFIER_REJECTED: Final = 0x02
CONNACK_SERVER_UNAVAILABLE: Final = 0x03
CONNACK_BAD_CREDENTIALS: Final = 0x04
CONNACK_NOT_AUTHORIZED: Final = 0x05
SUBACK_FAILURE: Final = 0x80

#: (protocol name, protocol level) pairs this broker speaks: MQTT 3.1.1 and 3.1.
PROTOCOLS: Final = frozenset({("MQTT", 4), ("MQIsdp", 3)})

#: Big-endian unsigned 16-bit integer (lengths and packet ids).
U16 = struct.Struct("!H")


class PacketType(IntEnum):
    """The control packet type in the high nibble of the fixed header."""

    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14


class BrokerProtocolError(Exception):
    """A client broke the protocol; ``reason`` is a stable code for logs and tests."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class MalformedPacketError(BrokerProtocolError):
    """Bytes that are not a valid MQTT 3.1.1 packet."""


class PacketTooLargeError(BrokerProtocolError):
    """A packet whose remaining length exceeds the broker's cap."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__("packet_too_large", f"{size} > {limit} bytes")
        self.size = size
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Will:
    """The will message carried in CONNECT."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False


@dataclass(frozen=True, slots=True)
class Connect:
    """CONNECT: the first packet of every connection."""

    client_id: str
    clean_session: bool = True
    keepalive: int = 60
    will: Will | None = None
    username: str | None = None
    password: bytes | None = None
    protocol_name: str = "MQTT"
    protocol_level: int = 4


@dataclass(frozen=True, slots=True)
class Connack:
    """CONNACK: the answer to CONNECT."""

    return_code: int = CONNACK_ACCEPTED
    session_present: bool = False


@dataclass(frozen=True, slots=True)
class Publish:
    """PUBLISH: an application message; ``packet_id`` is set exactly when ``qos`` > 0."""

    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None


@dataclass(frozen=True, slots=True)
class Puback:
    """PUBACK: QoS 1 acknowledgement."""

    packet_id: int


@dataclass(frozen=True, slots=True)
class Pubrec:
    """PUBREC: QoS 2, step 1."""

    packet_id: int


@dataclass(frozen=True, slots=True)
class Pubrel:
    """PUBREL: QoS 2, step 2."""

    packet_id: int


@dataclass(frozen=True, slots=True)
class Pubcomp:
    """PUBCOMP: QoS 2, step 3."""

    packet_id: int


@dataclass(frozen=True, slots=True)
class Subscribe:
    """SUBSCRIBE: (filter, requested QoS) pairs."""

    packet_id: int
    topics: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Suback:
    """SUBACK: one granted QoS (or 0x80) per requested filter."""

    packet_id: int
    return_codes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """UNSUBSCRIBE: filters to drop."""

    packet_id: int
    topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Unsuback:
    """UNSUBACK: the answer to UNSUBSCRIBE."""

    packet_id: int


@dataclass(frozen=True, slots=True)
class Pingreq:
    """PINGREQ: keepalive probe."""


@dataclass(frozen=True, slots=True)
class Pingresp:
    """PINGRESP: the answer to PINGREQ."""


@dataclass(frozen=True, slots=True)
class Disconnect:
    """DISCONNECT: a clean goodbye (no will)."""


Packet = (
    Connect
    | Connack
    | Publish
    | Puback
    | Pubrec
    | Pubrel
    | Pubcomp
    | Subscribe
    | Suback
    | Unsubscribe
    | Unsuback
    | Pingreq
    | Pingresp
    | Disconnect
)


# --------------------------------------------------------------------------- varint


def encode_remaining_length(value: int) -> bytes:
    """The MQTT variable-length encoding of ``value`` (1 to 4 bytes)."""
    if not 0 <= value <= MAX_REMAINING_LENGTH:
        raise ValueError(f"remaining length {value} out of range")
    if value < 128:
        return bytes((value,))
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


# --------------------------------------------------------------------------- encoding


def _str(value: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise ValueError("string longer than 65535 bytes")
    return U16.pack(len(raw)) + raw


def _bin(value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise ValueError("binary field longer than 65535 bytes")
    return U16.pack(len(value)) + value


def _frame(header: int, body: bytes) -> bytes:
    return bytes((header,)) + encode_remaining_length(len(body)) + body


def publish_header(
    topic: bytes, qos: int, packet_id: int | None, payload_len: int, *, retain: bool = False, dup: bool = False
) -> bytes:
    """Everything of a PUBLISH frame before the payload (the broker's hot path)."""
    flags = 0x30 | (qos << 1) | (0x01 if retain else 0) | (0x08 if dup else 0)
    topic_len = len(topic)
    length = 2 + topic_len + payload_len + (2 if qos else 0)
    if length < 128 and topic_len < 256:
        head = bytes((flags, length, 0, topic_len)) + topic
    else:
        head = bytes((flags,)) + encode_remaining_length(length) + U16.pack(topic_len) + topic
    return head + U16.pack(packet_id or 0) if qos else head


def _encode_connect(packet: Connect) -> bytes:
    flags = 0x02 if packet.clean_session else 0
    payload = _str(packet.client_id)
    if packet.will is not None:
        flags |= 0x04 | (packet.will.qos << 3) | (0x20 if packet.will.retain else 0)
        payload += _str(packet.will.topic) + _bin(packet.will.payload)
    if packet.username is not None:
        flags |= 0x80
        payload += _str(packet.username)
    if packet.password is not None:
        flags |= 0x40
        payload += _bin(packet.password)
    head = _str(packet.protocol_name) + bytes((packet.protocol_level, flags)) + U16.pack(packet.keepalive)
    return _frame(0x10, head + payload)


def encode(packet: Packet) -> bytes:
    """The wire bytes of ``packet``."""
    match packet:
        case Publish():
            if (packet.qos > 0) != (packet.packet_id is not None):
                raise ValueError("packet_id must be set exactly when qos > 0")
            topic = packet.topic.encode("utf-8")
            head = publish_header(
                topic, packet.qos, packet.packet_id, len(packet.payload), retain=packet.retain, dup=packet.dup
            )
            return head + packet.payload
        case Puback(packet_id=pid):
            return b"\x40\x02" + U16.pack(pid)
        case Pubrec(packet_id=pid):
            return b"\x50\x02" + U16.pack(pid)
        case Pubrel(packet_id=pid):
            return b"\x62\x02" + U16.pack(pid)
        case Pubcomp(packet_id=pid):
            return b"\x70\x02" + U16.pack(pid)
        case Connect():
            return _encode_connect(packet)
        case Connack():
            return bytes((0x20, 2, 1 if packet.session_present else 0, packet.return_code))
        case Subscribe():
            body = U16.pack(packet.packet_id) + b"".join(_str(f) + bytes((q,)) for f, q in packet.topics)
            return _frame(0x82, body)
        case Suback():
            return _frame(0x90, U16.pack(packet.packet_id) + bytes(packet.return_codes))
        case Unsubscribe():
            return _frame(0xA2, U16.pack(packet.packet_id) + b"".join(_str(f) for f in packet.topics))
        case Unsuback(packet_id=pid):
            return b"\xb0\x02" + U16.pack(pid)
        case Pingreq():
            return b"\xc0\x00"
        case Pingresp():
            return b"\xd0\x00"
        case Disconnect():
            return b"\xe0\x00"
    raise TypeError(f"not a packet: {packet!r}")
