"""The MQTT 3.1.1 codec: framing a byte stream, decoding and encoding packets (pure, no I/O).

The one packet codec of the project: the embedded broker, the hub's link
(:mod:`hub.ingest.link`), the load generator and the benches all frame, decode and
encode through it.

- **Framing.** A frame is *fixed header byte + remaining length + body*.
  :func:`next_frame` locates the frame at an offset of a buffer without copying;
  :class:`FrameBuffer` carries the incomplete rest of one connection's stream from one
  received chunk to the next (hot paths scan its buffer with :func:`next_frame`; others
  take whole ``(header, body)`` frames from :meth:`FrameBuffer.frames`).
- **Decoding.** :func:`decode_body` turns a header byte and body into a typed packet
  (:mod:`hub.mqtt.packets`); :func:`decode` does the same for a whole frame in memory;
  :func:`publish_layout` gives the fields of a PUBLISH without building one (the link's
  hot path). Malformed input raises :class:`~hub.mqtt.packets.MalformedPacketError`.
- **Encoding.** :func:`encode` gives the wire bytes of a packet; :func:`publish_header`
  everything of a PUBLISH before its payload (the broker's and the publishers' hot path).
"""

from __future__ import annotations

from typing import Final

from hub.mqtt.packets import (
    MAX_REMAINING_LENGTH,
    PROTOCOLS,
    SUBACK_FAILURE,
    U16,
    Connack,
    Connect,
    Disconnect,
    MalformedPacketError,
    Packet,
    PacketTooLargeError,
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

# --------------------------------------------------------------------------- framing


def _remaining_length(data: bytes, offset: int) -> tuple[int, int]:
    """The varint at ``offset``: (value, offset just past it), or (0, -1) when ``data`` ends inside it."""
    value = 0
    shift = 0
    n = len(data)
    while True:
        if offset >= n:
            return 0, -1
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7
        if shift > 21:
            raise MalformedPacketError("bad_remaining_length", "more than 4 bytes")


def decode_remaining_length(data: bytes, offset: int = 0) -> tuple[int, int]:
    """Decode the varint at ``offset``; return (value, offset just past it)."""
    value, end = _remaining_length(data, offset)
    if end < 0:
        raise MalformedPacketError("truncated", "remaining length")
    return value, end


def next_frame(buf: bytes, pos: int, max_length: int = MAX_REMAINING_LENGTH) -> tuple[int, int]:
    """Locate the frame whose header byte is ``buf[pos]``: return (body start, body end).

    A body end past ``len(buf)`` means the frame is not all there yet: it needs
    ``body end - pos`` bytes from ``pos`` (when even its remaining length is cut off, one
    more byte than ``buf`` has). Raises MalformedPacketError for a remaining length
    longer than 4 bytes and PacketTooLargeError for one over ``max_length``.
    """
    n = len(buf)
    if pos + 2 > n:
        return n + 1, n + 1
    length = buf[pos + 1]
    start = pos + 2
    if length & 0x80:
        length, start = _remaining_length(buf, pos + 1)
        if start < 0:
            return n + 1, n + 1
    if length > max_length:
        raise PacketTooLargeError(length, max_length)
    return start, start + length


class FrameBuffer:
    """One connection's inbound stream between received chunks: the incomplete frame it ends with.

    :meth:`feed` a received chunk and get the buffer to scan (what was kept, then the
    chunk), or ``b""`` while a frame larger than the chunks is still arriving: its pieces
    are joined once, when it is whole, never re-copied per chunk. Scan the buffer with
    :func:`next_frame` and :meth:`keep` what was not used; or let :meth:`split` do both
    (:meth:`frames` feeds and splits).
    """

    __slots__ = ("_have", "_need", "_pieces", "_tail", "max_length")

    def __init__(self, max_length: int = MAX_REMAINING_LENGTH) -> None:
        self.max_length = max_length
        self.clear()

    def clear(self) -> None:
        """Forget what was kept (a new connection)."""
        self._tail = b""
        self._pieces: list[bytes] = []
        self._have = 0
        self._need = 0

    def feed(self, data: bytes) -> bytes:
        """The bytes to scan now that ``data`` arrived (``b""``: a large frame is still incomplete)."""
        if self._need:
            self._pieces.append(data)
            self._have += len(data)
            if self._have < self._need:
                return b""
            buf = b"".join(self._pieces)
            self._pieces, self._have, self._need = [], 0, 0
            return buf
        if self._tail:
            buf, self._tail = self._tail + data, b""
            return buf
        return data

    def keep(self, buf: bytes, pos: int, need: int = 0) -> None:
        """Keep ``buf[pos:]`` for the next :meth:`feed`; ``need``: the bytes its first frame needs, if known."""
        tail = buf[pos:] if pos < len(buf) else b""
        if need > len(tail):
            self._pieces, self._have, self._need = [tail], len(tail), need
        else:
            self._tail = tail

    def frames(self, data: bytes) -> list[tuple[int, bytes]]:
        """Feed ``data``; return (fixed header byte, body) of every frame now whole, keeping the rest."""
        return self.split(self.feed(data))

    def split(self, buf: bytes) -> list[tuple[int, bytes]]:
        """(fixed header byte, body) of every whole frame in ``buf`` (from :meth:`feed`), keeping the rest."""
        frames: list[tuple[int, bytes]] = []
        pos, n, need = 0, len(buf), 0
        max_length = self.max_length
        while pos < n:
            start, end = next_frame(buf, pos, max_length)
            if end > n:
                need = end - pos
                break
            frames.append((buf[pos], buf[start:end]))
            pos = end
        self.keep(buf, pos, need)
        return frames


# --------------------------------------------------------------------------- decoding


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


def publish_layout(buf: bytes, start: int, end: int, qos: int) -> tuple[bytes, int]:
    """The PUBLISH body ``buf[start:end]`` at QoS ``qos``: (topic bytes, where the payload starts).

    With QoS > 0 the packet id is the two bytes before the payload. Only checks that the
    fields fit in the body; :func:`decode_publish` validates the rest.
    """
    if end - start < 2:
        raise MalformedPacketError("truncated", "PUBLISH topic")
    topic_end = start + 2 + ((buf[start] << 8) | buf[start + 1])
    if topic_end > end:
        raise MalformedPacketError("truncated", "PUBLISH topic")
    if qos:
        if topic_end + 2 > end:
            raise MalformedPacketError("truncated", "PUBLISH packet id")
        return buf[start + 2 : topic_end], topic_end + 2
    return buf[start + 2 : topic_end], topic_end


def decode_publish(flags: int, body: bytes) -> Publish:
    """Decode a PUBLISH body given the low nibble of its fixed header."""
    qos = (flags >> 1) & 0x03
    if qos == 3:
        raise MalformedPacketError("bad_qos", "PUBLISH QoS 3")
    dup = bool(flags & 0x08)
    if dup and not qos:
        raise MalformedPacketError("dup_on_qos0")
    topic, payload_start = publish_layout(body, 0, len(body), qos)
    packet_id = _packet_id((body[payload_start - 2] << 8) | body[payload_start - 1]) if qos else None
    return Publish(decode_utf8(topic), body[payload_start:], qos, bool(flags & 0x01), dup, packet_id)


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


# --------------------------------------------------------------------------- encoding


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


#: The fixed header of PUBACK, PUBREC, PUBREL and PUBCOMP: followed by the packet id's two bytes, they are the
#: whole packet (hot paths append the id straight from the PUBLISH they answer).
PUBACK_HEAD: Final = b"\x40\x02"
PUBREC_HEAD: Final = b"\x50\x02"
PUBREL_HEAD: Final = b"\x62\x02"
PUBCOMP_HEAD: Final = b"\x70\x02"


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
            return PUBACK_HEAD + U16.pack(pid)
        case Pubrec(packet_id=pid):
            return PUBREC_HEAD + U16.pack(pid)
        case Pubrel(packet_id=pid):
            return PUBREL_HEAD + U16.pack(pid)
        case Pubcomp(packet_id=pid):
            return PUBCOMP_HEAD + U16.pack(pid)
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
