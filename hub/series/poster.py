"""One kept-alive HTTP connection that POSTs line-protocol bodies: the series writer's hot request.

httpx (which the stores keep for everything else) spent ~1.0 – 1.3 ms of client CPU per 5,000-line
write to influxd here, against ~0.4 – 0.6 ms for the standard library's ``http.client`` on one
persistent connection (40 writes each, alternating; ``docs/benchmarks.md``). The writer posts one
batch at a time, so that time is also time the store waits for the next batch. A write that fails
on a connection the server had closed while idle is sent once more on a new one: line-protocol
writes carry their timestamps, so writing a batch twice stores it once.
"""

from __future__ import annotations

import base64
import http.client
import threading
from typing import Final
from urllib.parse import urlencode, urlsplit

from hub.series.base import StoreError

#: Answered on a connection the server closed while it was idle: try once more on a new connection.
_STALE: Final = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class LinePoster:
    """POSTs bodies to ``url`` + ``path`` with ``params`` on one persistent connection (thread-safe)."""

    def __init__(
        self,
        url: str,
        path: str,
        params: dict[str, str],
        *,
        timeout_s: float,
        authorization: str | None = None,
        content_type: str = "text/plain; charset=utf-8",
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"series store URL {url!r} is not http(s)://host[:port][/path]")
        self.url = url
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._target = parts.path.rstrip("/") + path + "?" + urlencode(params)
        self._timeout = timeout_s
        self._headers = {"Content-Type": content_type}
        if authorization:
            self._headers["Authorization"] = authorization
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    @staticmethod
    def basic(username: str, password: str) -> str:
        """An ``Authorization`` value for HTTP basic auth."""
        return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")

    def post(self, body: bytes) -> tuple[int, bytes, str | None]:
        """(status, body, Retry-After) of the answer; a connection error raises a retryable StoreError."""
        with self._lock:
            for attempt in (1, 2):
                conn = self._conn or self._connect()
                try:
                    conn.request("POST", self._target, body=body, headers=self._headers)
                    response = conn.getresponse()
                    content = response.read()
                except _STALE as exc:
                    self._close()
                    if attempt == 1:
                        continue  # the server closed the idle connection: once more on a new one
                    raise StoreError(f"write to {self.url}: {exc!r}", retryable=True) from exc
                except (OSError, http.client.HTTPException) as exc:
                    self._close()
                    raise StoreError(f"write to {self.url}: {exc!r}", retryable=True) from exc
                if response.will_close:
                    self._close()
                return response.status, content, response.getheader("Retry-After")
        raise AssertionError("unreachable")  # pragma: no cover

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        self._conn = cls(self._host, self._port, timeout=self._timeout)
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        """Close the connection (the next post opens a new one)."""
        with self._lock:
            self._close()
