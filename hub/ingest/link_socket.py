"""The sockets of :class:`~hub.ingest.link.MqttLink`: connecting that ``stop()`` can interrupt, reading, closing.

The link's I/O thread owns one broker socket at a time. Connecting (TCP, then the TLS
handshake) is non-blocking and also watches the link's wake-up socket, so a broker that
does not answer never holds up ``stop()``; once connected the socket is blocking with a
send timeout (the link's selector says when to read). The MQTT side of the link is in
:mod:`hub.ingest.link`; its packets in :mod:`hub.mqtt.codec`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import socket
import ssl
import threading
import time


class LinkDown(Exception):
    """The connection ended or could not be made; the text is the reason given to ``on_disconnect``."""


class Stopping(Exception):
    """stop() was called while the I/O thread waited."""


def open_socket(
    host: str,
    port: int,
    *,
    tls: ssl.SSLContext | None,
    wake: socket.socket,
    stopping: threading.Event,
    connect_timeout_s: float,
    send_timeout_s: float,
) -> socket.socket:
    """TCP connect (and TLS handshake) within ``connect_timeout_s``; raise Stopping when ``stopping`` is set.

    ``wake`` is the link's wake-up socket: stop() writes to it, which ends any wait here.
    """
    deadline = time.monotonic() + connect_timeout_s

    def wait(sock: socket.socket, events: int, what: str) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(sock, events)
            sel.register(wake, selectors.EVENT_READ)
            sel.select(max(0.0, deadline - time.monotonic()))
        if stopping.is_set():
            raise Stopping
        if time.monotonic() >= deadline:
            raise LinkDown(f"{what} to {host}:{port} timed out after {connect_timeout_s:g} s")

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise LinkDown(f"cannot resolve {host}: {exc}") from exc
    error: OSError | LinkDown = LinkDown("no address")
    for family, kind, proto, _, addr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            code = sock.connect_ex(addr)
            if code in (errno.EINPROGRESS, errno.EWOULDBLOCK):
                wait(sock, selectors.EVENT_WRITE, "TCP connect")
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, os.strerror(code))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls is not None:
                sock = tls.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
                while True:
                    try:
                        sock.do_handshake()
                        break
                    except ssl.SSLWantReadError:
                        wait(sock, selectors.EVENT_READ, "TLS handshake")
                    except ssl.SSLWantWriteError:
                        wait(sock, selectors.EVENT_WRITE, "TLS handshake")
            sock.settimeout(send_timeout_s)
            return sock
        except (OSError, LinkDown, Stopping) as exc:
            sock.close()
            if isinstance(exc, Stopping | ssl.SSLError):
                raise
            error = exc
    raise LinkDown(f"cannot connect to {host}:{port}: {error}")


def recv_chunk(sock: socket.socket, size: int) -> bytes:
    """Up to ``size`` bytes, plus on TLS whatever the TLS layer already decrypted (select() cannot see it)."""
    data = sock.recv(size)
    if data and isinstance(sock, ssl.SSLSocket) and sock.pending():
        parts = [data]
        while sock.pending():
            parts.append(sock.recv(sock.pending()))
        data = b"".join(parts)
    return data


def await_close(sock: socket.socket, wait_s: float, size: int) -> None:
    """Wait (up to ``wait_s``) for the broker to close after DISCONNECT, discarding what it still sends.

    Closing a socket with unread bytes makes the kernel send RST, and a broker that gets RST
    drops the PUBACKs it has not read yet -- it would then deliver those messages again.
    """
    deadline = time.monotonic() + wait_s
    with contextlib.suppress(OSError):
        sock.settimeout(wait_s)
        while time.monotonic() < deadline:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            if not sock.recv(size):
                return
