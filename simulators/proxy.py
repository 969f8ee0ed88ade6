"""Per-device TCP proxies that can cut a device's network, for partition faults in scenarios.

Each simulated device connects to its own loopback port; :class:`ProxyPool` forwards
the bytes to the broker. ``cut(name)`` drops the device's open connections at once
(the broker sees the socket close and publishes the device's LWT) and refuses new
ones until ``restore(name)``. The agent is untouched: what it sees is exactly a
network that went away and came back. All proxies run on one asyncio loop in a
background thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine, Iterable
from typing import Any

logger = logging.getLogger(__name__)
_CHUNK = 65536


class _Proxy:
    def __init__(self, name: str) -> None:
        self.name = name
        self.server: asyncio.Server | None = None
        self.port = 0
        self.cut = False
        self.writers: set[asyncio.StreamWriter] = set()
        self.connections = 0


class ProxyPool:
    """Many named loopback proxies in front of one upstream address."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._proxies: dict[str, _Proxy] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sim-proxy", daemon=True)
        self._thread.start()

    def _call(self, coro: Coroutine[Any, Any, None], timeout: float = 10.0) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def add(self, name: str) -> int:
        """Open the proxy ``name`` on a free loopback port and return the port."""
        proxy = _Proxy(name)
        self._call(self._listen(proxy))
        self._proxies[name] = proxy
        return proxy.port

    def port(self, name: str) -> int:
        """The local port of proxy ``name``."""
        return self._proxies[name].port

    async def _listen(self, proxy: _Proxy) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._serve(proxy, reader, writer)

        proxy.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        proxy.port = proxy.server.sockets[0].getsockname()[1]

    async def _serve(self, proxy: _Proxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if proxy.cut:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()  # the broker is down: the device sees a refused connection
            return
        proxy.connections += 1
        proxy.writers.update((writer, up_writer))
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                proxy.writers.discard(w)
                w.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(_CHUNK):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def cut(self, names: Iterable[str]) -> None:
        """Drop the open connections of ``names`` and refuse new ones."""

        async def run() -> None:
            for name in names:
                proxy = self._proxies[name]
                proxy.cut = True
                for w in list(proxy.writers):
                    w.transport.abort()

        self._call(run())

    def restore(self, names: Iterable[str]) -> None:
        """Let ``names`` connect again."""
        for name in names:
            self._proxies[name].cut = False

    def is_cut(self, name: str) -> bool:
        """Whether ``name`` is partitioned now."""
        return self._proxies[name].cut

    def close(self) -> None:
        """Close every proxy and stop the loop."""

        async def run() -> None:
            for proxy in self._proxies.values():
                if proxy.server is not None:
                    proxy.server.close()
                for w in list(proxy.writers):
                    w.transport.abort()

        if self._loop.is_running():
            self._call(run())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._loop.close()
