"""A faster paho client for the edge publisher's hot path (the hub has its own client, ``hub.ingest.link``).

Stock paho 2.x makes three ``recv`` calls per incoming packet (command byte, length,
body) and builds a ``Properties`` and a ``ReasonCode`` object for every PUBACK, even on
MQTT 3.1.1 where a PUBACK is just a two-byte message id. Profiling the edge drain showed
those two costs at about a third of the publisher thread's time. :class:`FastMqttClient`

- serves ``recv`` from a user-space buffer filled :data:`RECV_CHUNK` bytes at a time
  (the buffer belongs to one socket and is dropped with it, as the kernel's would be);
- decodes a 3.1.1 PUBACK's message id directly and hands ``on_publish`` shared,
  read-only success objects;
- lets a caller handle every buffered packet per wake-up (:meth:`buffered`);
- with :attr:`defer_writes` (for a client driven by one thread that owns its loop, like
  the edge publisher), queues publishes instead of writing each at once, and writes
  queued QoS 1 PUBLISH and PUBACK packets coalesced, up to :data:`WRITE_CHUNK` bytes per
  ``send`` (paho sends every packet on its own).

Packet order, acknowledgement and reconnect behaviour stay paho's own. It relies on paho
2.x internals (``_sock_recv``, ``_in_packet``, ``_out_messages``, ``_do_on_publish``),
which pyproject pins (``paho-mqtt>=2.1,<3``); ``tests/edge/test_mqttio.py`` checks them.

Why private methods and not public API (checked against paho-mqtt 2.2.0): paho offers no
hook for any of the three. ``_packet_read`` reads the command byte, each length byte and
the body with separate ``_sock_recv`` calls, and the socket is paho's own (``connect()``
creates it; ``socket()`` only exposes it), so buffering reads means overriding
``_sock_recv``. ``on_publish`` is called with the ``ReasonCode`` and ``Properties`` that
``_handle_pubackcomp`` builds per PUBACK before any callback runs. ``publish()`` queues
and ``loop_write()`` writes one packet per ``send``; there is no batching option. The
alternative is a client of our own: the hub has one (:mod:`hub.ingest.link`, over the
codec in :mod:`hub.mqtt`), but the edge installs without the hub and keeps paho for its
sessions, reconnects and TLS; this file decodes no MQTT packet beyond a PUBACK's
two-byte message id.
"""

from __future__ import annotations

import collections
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

#: Bytes read from the socket at a time.
RECV_CHUNK: Final = 256 * 1024
#: Bytes of queued packets joined into one ``send``.
WRITE_CHUNK: Final = 64 * 1024
_PUBLISH: Final = 0x30
_PUBACK: Final = 0x40

_PUBACK_OK: Final = ReasonCode(PacketTypes.PUBACK, "Success")
_NO_PROPERTIES: Final = Properties(PacketTypes.PUBACK)  # type: ignore[no-untyped-call]


class FastMqttClient(mqtt.Client):
    """``paho.mqtt.client.Client`` with buffered reads and a cheap MQTT 3.1.1 PUBACK."""

    #: Queue publishes without writing them; the owner's loop calls ``loop_write`` (one thread only).
    defer_writes: bool = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0
        self._rsock: object = None

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._sock is not self._rsock:  # a new connection: nothing buffered belongs to it
            self._rsock, self._rbuf, self._rpos = self._sock, b"", 0
        pos = self._rpos
        if pos >= len(self._rbuf):
            data: bytes = super()._sock_recv(max(bufsize, RECV_CHUNK))
            if len(data) <= bufsize:
                return data
            self._rbuf, pos = data, 0
        end = pos + bufsize
        self._rpos = end
        return self._rbuf[pos:end]

    def buffered(self) -> bool:
        """True while received bytes wait in the user-space buffer (select() cannot see them)."""
        return self._rpos < len(self._rbuf) and self._sock is self._rsock and self._sock is not None

    def _handle_pubackcomp(self, cmd: Any) -> MQTTErrorCode:
        packet = self._in_packet["packet"]
        if cmd != "PUBACK" or self._protocol == mqtt.MQTTv5 or len(packet) != 2:
            return super()._handle_pubackcomp(cmd)
        mid = (packet[0] << 8) | packet[1]
        with self._out_message_mutex:
            if mid in self._out_messages:
                return self._do_on_publish(mid, _PUBACK_OK, _NO_PROPERTIES)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _packet_queue(
        self, command: int, packet: bytes | bytearray, mid: int, qos: int, info: Any = None
    ) -> MQTTErrorCode:
        kind = command & 0xF0
        if not self.defer_writes or not ((kind == _PUBLISH and qos > 0) or kind == _PUBACK):
            return super()._packet_queue(command, packet, mid, qos, info)  # CONNECT, DISCONNECT...: at once
        self._out_packet.append(
            {
                "command": command,
                "mid": mid,
                "qos": qos,
                "pos": 0,
                "to_process": len(packet),
                "packet": packet,
                "info": info,
            }
        )
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _packet_write(self) -> MQTTErrorCode:
        if not self.defer_writes:
            return super()._packet_write()
        out = self._out_packet
        while out:
            batch, size = [], 0
            for pkt in out:
                kind = pkt["command"] & 0xF0
                if pkt["pos"] or not ((kind == _PUBLISH and pkt["qos"] > 0) or kind == _PUBACK):
                    break
                batch.append(pkt)
                size += pkt["to_process"]
                if size >= WRITE_CHUNK:
                    break
            if not batch:
                rc = self._write_head_paho_way()
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or (out and out[0]["pos"]):
                    return rc
                continue
            try:
                sent = self._sock_send(b"".join(p["packet"] for p in batch))
            except (AttributeError, ValueError):
                return MQTTErrorCode.MQTT_ERR_SUCCESS
            except BlockingIOError:
                return MQTTErrorCode.MQTT_ERR_AGAIN
            except OSError:
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            for pkt in batch:  # QoS 1 publishes and PUBACKs need nothing once written
                take = min(sent, pkt["to_process"])
                pkt["pos"] += take
                pkt["to_process"] -= take
                sent -= take
                if pkt["to_process"]:
                    break  # partly written: it stays at the head and is finished paho's way
                out.popleft()
            with self._msgtime_mutex:
                self._last_msg_out = mqtt.time_func()
            if out and out[0]["pos"]:
                return MQTTErrorCode.MQTT_ERR_SUCCESS  # the socket is full; select() says when to go on
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _write_head_paho_way(self) -> MQTTErrorCode:
        """Write the head packet (a partial one, QoS 0, CONNECT, DISCONNECT...) with paho's own code."""
        out = self._out_packet
        single = collections.deque([out.popleft()])
        self._out_packet = single
        try:
            rc = super()._packet_write()
        finally:
            self._out_packet = out
        if single:
            out.appendleft(single[0])
        return rc
