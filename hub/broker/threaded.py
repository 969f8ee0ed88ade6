"""Run the :class:`~hub.broker.server.EmbeddedBroker` on its own thread with its own event loop."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from hub.broker.server import EmbeddedBroker

logger = logging.getLogger(__name__)

#: Seconds ``start()`` and ``stop()`` wait for the broker thread.
THREAD_TIMEOUT = 10.0


class BrokerStartError(RuntimeError):
    """The broker thread could not start listening (port in use, bad address)."""


class ThreadedBroker:
    """Synchronous wrapper: ``start()`` returns once the broker listens; ``.port`` is the real port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883, **options: Any) -> None:
        self.broker = EmbeddedBroker(host, port, **options)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        """The port the broker listens on (real one once started)."""
        return self.broker.port

    @property
    def host(self) -> str:
        """The address the broker listens on."""
        return self.broker.host

    @property
    def url(self) -> str:
        """``mqtt://HOST:PORT``."""
        return f"mqtt://{self.broker.host}:{self.broker.port}"

    def start(self) -> None:
        """Start the broker thread and wait until it accepts connections."""
        if self._thread is not None:
            raise RuntimeError("broker already started")
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name=f"mqtt-broker-{self.broker.port}", daemon=True)
        self._thread.start()
        if not self._ready.wait(THREAD_TIMEOUT):
            raise BrokerStartError(f"broker did not start within {THREAD_TIMEOUT}s")
        if self._error is not None:
            self._thread.join(THREAD_TIMEOUT)
            self._thread = None
            raise BrokerStartError(f"broker failed to start: {self._error}") from self._error

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.broker.start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.broker.stop())
            leftovers = asyncio.all_tasks(loop)
            for task in leftovers:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            loop.close()

    def stop(self) -> None:
        """Stop the broker and join its thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(THREAD_TIMEOUT)
        if thread.is_alive():
            logger.warning("broker thread on port %s did not stop within %ss", self.port, THREAD_TIMEOUT)
        self._thread = None
        self._loop = None

    def __enter__(self) -> ThreadedBroker:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
