"""MQTT 3.1.1 control packets: typed values, constants and errors (pure, no I/O).

Encoding and decoding live in :mod:`hub.mqtt.codec`. Anything that breaks the specification
raises :class:`MalformedPacketError` with a stable ``reason`` code: the broker closes that
client, a client drops that connection.
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

#: What a refusing CONNACK's return code means (MQTT 3.1.1 section 3.2.2.3).
CONNACK_MEANINGS: Final = {
    CONNACK_BAD_PROTOCOL: "unacceptable protocol version",
    CONNACK_IDENTIFIER_REJECTED: "identifier rejected",
    CONNACK_SERVER_UNAVAILABLE: "server unavailable",
    CONNACK_BAD_CREDENTIALS: "bad user name or password",
    CONNACK_NOT_AUTHORIZED: "not authorized",
}

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


class ProtocolError(Exception):
    """The peer broke the protocol; ``reason`` is a stable code for logs and tests."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class MalformedPacketError(ProtocolError):
    """Bytes that are not a valid MQTT 3.1.1 packet."""


class PacketTooLargeError(ProtocolError):
    """A packet whose remaining length exceeds the reader's cap."""

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


def connack_reason(code: int) -> str:
    """The reason text for a refused CONNACK, e.g. ``connection refused: not authorized (5)``."""
    return f"connection refused: {CONNACK_MEANINGS.get(code, 'unknown return code')} ({code})"
