"""The replica's NATS connection on its own event-loop thread, and the way synchronous hub code uses it.

nats-py is asyncio; the hub is threads (ingest, HTTP routes, plug-in tasks). A replica runs one
event loop on a thread of its own (``hub-cluster``) holding the one NATS connection; its own
coroutines (leases, partition consumers) run there, and any other thread hands a coroutine to
:meth:`NatsBridge.call` and blocks until it finishes on the loop. Calling it *from* the loop
would wait on itself forever, so that is refused.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Any, Final, TypeVar

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds a JetStream API request waits for its answer.
JS_TIMEOUT_S: Final = 5.0


class BridgeError(RuntimeError):
    """The bridge cannot run the call (not connected, or called from its own loop)."""


class NatsBridge:
    """One NATS connection on an event loop of its own; :meth:`call` runs a coroutine there from any thread."""

    def __init__(self, servers: tuple[str, ...], name: str) -> None:
        self.servers = servers
        self.name = name
        self.loop = asyncio.new_event_loop()
        self.nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the loop's thread (connect with :meth:`connect`, on the loop)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="hub-cluster", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    async def connect(self) -> None:
        """Connect (on the loop) to the first server that answers; reconnect to any of them, forever."""
        self.nc = await nats.connect(
            servers=list(self.servers),
            name=self.name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=2,
            disconnected_cb=self._on_disconnect,
            reconnected_cb=self._on_reconnect,
        )
        self._js = self.nc.jetstream(timeout=JS_TIMEOUT_S)

    async def _on_disconnect(self) -> None:
        logger.warning("replica %s lost its NATS connection; reconnecting", self.name)

    async def _on_reconnect(self) -> None:
        assert self.nc is not None
        logger.info("replica %s reconnected to %s", self.name, self.nc.connected_url)

    async def close(self) -> None:
        """Close the connection (on the loop); everything fetched must be acknowledged by now (no drain)."""
        if self.nc is None:
            return
        try:  # a drain would wait on every subscription
            await asyncio.wait_for(self.nc.close(), 5)
        except Exception as exc:  # shutdown boundary
            logger.warning("NATS connection not closed cleanly: %s", exc or type(exc).__name__)

    def stop(self, timeout: float = 10.0) -> None:
        """Close the connection and end the loop's thread."""
        if self._thread is None:
            return
        if self.loop.is_running():
            try:
                self.call(self.close(), timeout)
            except Exception as exc:  # shutdown boundary
                logger.warning("NATS bridge stopped without closing: %s", exc or type(exc).__name__)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        self._thread = None

    # ------------------------------------------------------------ use

    @property
    def js(self) -> JetStreamContext:
        """The JetStream context of the connection (raises before :meth:`connect`)."""
        if self._js is None:
            raise BridgeError(f"replica {self.name} is not connected to NATS")
        return self._js

    @property
    def connected(self) -> bool:
        """True while the connection is up."""
        return self.nc is not None and self.nc.is_connected

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Schedule ``coro`` on the loop; its future."""
        if not self.loop.is_running():
            coro.close()
            raise BridgeError(f"replica {self.name}: the NATS loop is not running")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the loop and wait for it (``TimeoutError`` after ``timeout`` s, the coroutine cancelled)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            coro.close()
            raise BridgeError("NatsBridge.call from its own event loop would wait on itself")
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except FutureTimeoutError as exc:
            future.cancel()
            raise TimeoutError(f"NATS call did not finish within {timeout:g}s") from exc
