"""LinePoster: the writer's kept-alive connection, against a loopback server that closes it when idle."""

from __future__ import annotations

import socket
import threading

import pytest

from hub.series.base import StoreError
from hub.series.poster import LinePoster
from simulators.servers import free_port


def _serve(server: socket.socket, requests: list[bytes], connections: list[int]) -> None:
    """Answer one request per connection with 204 (keep-alive promised), then close it: what a server
    does to a connection it finds idle."""
    for _ in range(2):
        conn, _addr = server.accept()
        connections.append(1)
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(next(h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")))
            while len(body) < length:
                body += conn.recv(65536)
            requests.append(head + b"\n" + body)
            conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")


def test_a_connection_the_server_closed_while_idle_is_replaced_once() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    requests: list[bytes] = []
    connections: list[int] = []
    thread = threading.Thread(target=_serve, args=(server, requests, connections), daemon=True)
    thread.start()
    poster = LinePoster(
        f"http://127.0.0.1:{port}/influx/",
        "/write",
        {"db": "gs", "precision": "ms"},
        timeout_s=5,
        authorization=LinePoster.basic("hub", "pw"),
    )
    try:
        assert poster.post(b"m f=1.0 1")[0] == 204
        assert poster.post(b"m f=2.0 2")[0] == 204  # the first connection is gone: one retry, a new one
    finally:
        poster.close()
        thread.join(5)
        server.close()
    assert len(connections) == 2 and len(requests) == 2
    first = requests[0].decode()
    assert first.startswith("POST /influx/write?db=gs&precision=ms HTTP/1.1")
    assert "Authorization: Basic aHViOnB3" in first and first.endswith("m f=1.0 1")
    assert requests[1].decode().endswith("m f=2.0 2")


def test_a_store_that_is_not_there_is_a_retryable_error() -> None:
    poster = LinePoster(f"http://127.0.0.1:{free_port()}", "/write", {"db": "gs"}, timeout_s=2)
    with pytest.raises(StoreError) as caught:
        poster.post(b"m f=1.0 1")
    assert caught.value.retryable and "write to http://127.0.0.1:" in str(caught.value)


def test_only_http_urls_are_taken() -> None:
    with pytest.raises(ValueError, match="is not http"):
        LinePoster("influx.local:8086", "/write", {}, timeout_s=1)
