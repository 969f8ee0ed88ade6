"""A tiny real HTTP proxy for the series tests: v2 -> v1 path rewriting and scripted 429/503 faults.

``/api/v2/write?org=&bucket=&precision=`` is forwarded as ``/write?db=BUCKET&precision=``
so the real influxd (1.x API only) can stand behind the v2 client; ``/query`` and
``/write`` pass through. ``fail_next(n, status, retry_after)`` answers the next
``n`` write requests itself, then forwards again.
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from simulators.servers import free_port


@dataclass
class Seen:
    """One request the proxy answered: when, path and the status it returned."""

    at: float
    path: str
    status: int


class FaultProxy:
    """Forward to ``upstream_port``; rewrite the v2 write path; inject failures on demand."""

    def __init__(self, upstream_port: int, port: int | None = None) -> None:
        self.upstream_port = upstream_port
        self.port = port or free_port()
        self.seen: list[Seen] = []
        self._faults: list[tuple[int, str | None]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                proxy._handle(self, "GET")

            def do_POST(self) -> None:
                proxy._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        """Serve on a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down."""
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, count: int, status: int, retry_after: str | None = None) -> None:
        """Answer the next ``count`` write requests with ``status`` (and Retry-After) instead of forwarding."""
        with self._lock:
            self._faults.extend([(status, retry_after)] * count)

    def writes(self) -> list[Seen]:
        """Write requests seen so far."""
        with self._lock:
            return [s for s in self.seen if "write" in s.path]

    def _rewrite(self, path: str) -> str:
        parsed = urllib.parse.urlsplit(path)
        if parsed.path != "/api/v2/write":
            return path
        query = urllib.parse.parse_qs(parsed.query)
        params = {"db": query.get("bucket", [""])[0], "precision": query.get("precision", ["ns"])[0]}
        return "/write?" + urllib.parse.urlencode(params)

    def _handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        fault: tuple[int, str | None] | None = None
        with self._lock:
            if "write" in req.path and self._faults:
                fault = self._faults.pop(0)
        if fault is not None:
            status, retry_after = fault
            payload = b'{"error":"injected fault"}'
            req.send_response(status)
            if retry_after is not None:
                req.send_header("Retry-After", retry_after)
            req.send_header("Content-Type", "application/json")
            req.send_header("Content-Length", str(len(payload)))
            req.end_headers()
            req.wfile.write(payload)
            self._record(req.path, status)
            return
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        try:
            headers = {"Content-Type": req.headers.get("Content-Type", "text/plain")}
            conn.request(method, self._rewrite(req.path), body=body, headers=headers)
            upstream = conn.getresponse()
            data = upstream.read()
            req.send_response(upstream.status)
            for name in ("Content-Type", "Retry-After"):
                value = upstream.getheader(name)
                if value:
                    req.send_header(name, value)
            req.send_header("Content-Length", str(len(data)))
            req.end_headers()
            req.wfile.write(data)
            self._record(req.path, upstream.status)
        except OSError:
            # Upstream down: behave like a gateway.
            req.send_response(502)
            req.send_header("Content-Length", "0")
            req.end_headers()
            self._record(req.path, 502)
        finally:
            conn.close()

    def _record(self, path: str, status: int) -> None:
        with self._lock:
            self.seen.append(Seen(time.monotonic(), path, status))
