"""Decoding MQTT 3.1.1 packets (pure, no I/O).

The server reads a frame as *fixed header byte + remaining length + body* and hands
the body to :func:`decode_body`; :func:`decode` does the same for a whole frame in
memory. Malformed input raises :class:`~hub.broker.packets.MalformedPacketError`.
"""

from __future__ import annotations

from typing import Final

from hub.broker.packets import (
    PROTOCOLS,
    SUBACK_FAILURE,
    U16,
    Connack,
    Connect,
    Disconnect,
    MalformedPacketError,
    Packet,
    PacketType,
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
)


def decode_remaining_length(data: bytes, offset: int = 0) -> tuple[int, int]:
    """Decode the varint at ``offset``; return (value, offset just past it)."""
    value = 0
    shift = 0
    for index in range(4):
        if offset + index >= len(data):
            raise MalformedPacketError("truncated", "remaining length")
        byte = data[offset + index]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset + index + 1
        shift += 7
    raise MalformedPacketError("bad_remaining_length", "more than 4 bytes")


class _Reader:
    """A cursor over a packet body that raises MalformedPacketError when it runs short."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def u8(self) -> int:
        if self.pos >= len(self.data):
            raise MalformedPacketError("truncated", "byte")
        self.pos += 1
        return self.data[self.pos - 1]

    def u16(self) -> int:
        if self.pos + 2 > len(self.data):
            raise MalformedPacketError("truncated", "two-byte integer")
        value: int = U16.unpack_from(self.data, self.pos)[0]
        self.pos += 2
        return value

    def binary(self) -> bytes:
        size = self.u16()
        if self.pos + size > len(self.data):
            raise MalformedPacketError("truncated", "length-prefixed field")
        self.pos += size
        return self.data[self.pos - size : self.pos]

    def string(self) -> str:
        return decode_utf8(self.binary())


def decode_utf8(raw: bytes) -> str:
    """Decode an MQTT UTF-8 string: strict UTF-8 and no U+0000."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPacketError("bad_utf8", str(exc)) from exc
    if "\x00" in text:
        raise MalformedPacketError("nul_in_string")
    return text


def _packet_id(value: int) -> int:
    if value == 0:
        raise MalformedPacketError("zero_packet_id")
    return value


def _decode_connect(body: bytes) -> Connect:
    r = _Reader(body)
    name = r.string()
    level = r.u8()
    if (name, level) not in PROTOCOLS:
        # Another protocol version (MQTT 5...): the rest may not parse; the server answers CONNACK 0x01.
        return Connect("", protocol_name=name, protocol_level=level)
    flags = r.u8()
    if flags & 0x01:
        raise MalformedPacketError("reserved_flag", "CONNECT flags bit 0")
    keepalive = r.u16()
    client_id = r.string()
    will: Will | None = None
    will_qos = (flags >> 3) & 0x03
    if flags & 0x04:
        if will_qos > 2:
            raise MalformedPacketError("bad_qos", "will QoS 3")
        will_topic = r.string()
        will = Will(will_topic, r.binary(), will_qos, bool(flags & 0x20))
    elif will_qos or flags & 0x20:
        raise MalformedPacketError("bad_will_flags", "will QoS/retain without will flag")
    username = r.string() if flags & 0x80 else None
    if flags & 0x40 and not flags & 0x80 and level >= 4:
        raise MalformedPacketError("password_without_username")
    password = r.binary() if flags & 0x40 else None
    if r.remaining():
        raise MalformedPacketError("trailing_bytes", "CONNECT")
    return Connect(client_id, bool(flags & 0x02), keepalive, will, username, password, name, level)


def decode_publish(flags: int, body: bytes) -> Publish:
    """Decode a PUBLISH body given the low nibble of its fixed header."""
    qos = (flags >> 1) & 0x03
    if qos == 3:
        raise MalformedPacketError("bad_qos", "PUBLISH QoS 3")
    dup = bool(flags & 0x08)
    if dup and not qos:
        raise MalformedPacketError("dup_on_qos0")
    if len(body) < 2:
        raise MalformedPacketError("truncated", "PUBLISH topic")
    size = (body[0] << 8) | body[1]
    end = 2 + size
    if end > len(body):
        raise MalformedPacketError("truncated", "PUBLISH topic")
    topic = decode_utf8(body[2:end])
    packet_id: int | None = None
    if qos:
        if end + 2 > len(body):
            raise MalformedPacketError("truncated", "PUBLISH packet id")
        packet_id = _packet_id((body[end] << 8) | body[end + 1])
        end += 2
    return Publish(topic, body[end:], qos, bool(flags & 0x01), dup, packet_id)


def _decode_subscribe(body: bytes) -> Subscribe:
    r = _Reader(body)
    packet_id = _packet_id(r.u16())
    topics: list[tuple[str, int]] = []
    while r.remaining():
        topic_filter = r.string()
        qos = r.u8()
        if qos > 2:
            raise MalformedPacketError("bad_qos", "SUBSCRIBE requested QoS")
        topics.append((topic_filter, qos))
    if not topics:
        raise MalformedPacketError("empty_subscribe")
    return Subscribe(packet_id, tuple(topics))


def _decode_unsubscribe(body: bytes) -> Unsubscribe:
    r = _Reader(body)
    packet_id = _packet_id(r.u16())
    topics: list[str] = []
    while r.remaining():
        topics.append(r.string())
    if not topics:
        raise MalformedPacketError("empty_unsubscribe")
    return Unsubscribe(packet_id, tuple(topics))


def _decode_suback(body: bytes) -> Suback:
    r = _Reader(body)
    packet_id = _packet_id(r.u16())
    codes = tuple(body[2:])
    if not codes or any(c not in (0, 1, 2, SUBACK_FAILURE) for c in codes):
        raise MalformedPacketError("bad_suback")
    return Suback(packet_id, codes)


_ID_ONLY: Final[dict[int, type[Puback | Pubrec | Pubrel | Pubcomp | Unsuback]]] = {
    PacketType.PUBACK: Puback,
    PacketType.PUBREC: Pubrec,
    PacketType.PUBREL: Pubrel,
    PacketType.PUBCOMP: Pubcomp,
    PacketType.UNSUBACK: Unsuback,
}
_EMPTY: Final[dict[int, Pingreq | Pingresp | Disconnect]] = {
    PacketType.PINGREQ: Pingreq(),
    PacketType.PINGRESP: Pingresp(),
    PacketType.DISCONNECT: Disconnect(),
}
#: Required low-nibble flags for every type except PUBLISH.
_FLAGS: Final[dict[int, int]] = {t: (0x02 if t in (6, 8, 10) else 0) for t in range(1, 15) if t != 3}


def decode_body(header: int, body: bytes) -> Packet:
    """Decode one packet from its fixed-header byte and its body (remaining-length bytes)."""
    kind = header >> 4
    flags = header & 0x0F
    if kind == PacketType.PUBLISH:
        return decode_publish(flags, body)
    if kind not in _FLAGS:
        raise MalformedPacketError("bad_packet_type", str(kind))
    if flags != _FLAGS[kind]:
        raise MalformedPacketError("bad_fixed_header_flags", f"type {kind} flags {flags:#x}")
    if kind in _ID_ONLY:
        if len(body) != 2:
            raise MalformedPacketError("bad_length", f"type {kind} needs 2 bytes")
        return _ID_ONLY[kind](_packet_id((body[0] << 8) | body[1]))
    if kind in _EMPTY:
        if body:
            raise MalformedPacketError("bad_length", f"type {kind} has no body")
        return _EMPTY[kind]
    if kind == PacketType.CONNECT:
        return _decode_connect(body)
    if kind == PacketType.SUBSCRIBE:
        return _decode_subscribe(body)
    if kind == PacketType.UNSUBSCRIBE:
        return _decode_unsubscribe(body)
    if kind == PacketType.SUBACK:
        return _decode_suback(body)
    # CONNACK is the one left.
    if len(body) != 2 or body[0] > 1:
        raise MalformedPacketError("bad_connack")
    return Connack(body[1], bool(body[0]))


def decode(data: bytes) -> tuple[Packet, int]:
    """Decode the first whole frame in ``data``; return it and the bytes it used."""
    if not data:
        raise MalformedPacketError("truncated", "fixed header")
    length, offset = decode_remaining_length(data, 1)
    end = offset + length
    if end > len(data):
        raise MalformedPacketError("truncated", f"body needs {length} bytes")
    return decode_body(data[0], data[offset:end]), end
