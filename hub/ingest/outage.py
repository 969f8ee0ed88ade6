"""One readable account of a dependency that keeps failing, instead of a traceback per retry.

A loop that retries something every fraction of a second (the state DB flush, the incident
worker) tells :class:`OutageLog` of each failure and success. The first failure is logged as an
error with its traceback (a bug stays diagnosable), repeats are counted and summed up once a
minute, and the first success after them says how long it lasted::

    ERROR   state DB unavailable (OperationalError: connection refused); retrying -- dead letters, ...
    ERROR   state DB still unavailable after 60 s (240 failed attempts; last: OperationalError: ...)
    WARNING state DB is back after 73.2 s (292 failed attempts)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

#: How often a continuing outage is summed up in the log.
REMIND_S: Final = 60.0


def describe(exc: BaseException) -> str:
    """``Type: first line of the message`` (drivers put the SQL and a URL on later lines)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class OutageLog:
    """Failures and recoveries of one dependency, logged once per outage (thread-safe)."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        meanwhile: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.what = what
        self.meanwhile = meanwhile
        self.clock = clock
        self._lock = threading.Lock()
        self._since: float | None = None
        self._failures = 0
        self._reminded = 0.0

    @property
    def down(self) -> bool:
        """True from the first failure until the next success."""
        return self._since is not None

    def failed(self, exc: BaseException) -> None:
        """One more failed attempt (call from the ``except`` block)."""
        now = self.clock()
        with self._lock:
            self._failures += 1
            if self._since is None:
                self._since = self._reminded = now
                first = True
            else:
                first = False
                if now - self._reminded < REMIND_S:
                    return
                self._reminded = now
            failures, since = self._failures, self._since
        if first:
            self.logger.error(
                "%s unavailable (%s); retrying -- %s", self.what, describe(exc), self.meanwhile, exc_info=exc
            )
        else:
            self.logger.error(
                "%s still unavailable after %.0f s (%d failed attempts; last: %s)",
                self.what,
                now - since,
                failures,
                describe(exc),
            )

    def ok(self) -> None:
        """An attempt succeeded: log the end of an outage, if there was one."""
        if self._since is None:  # the common case, without the lock
            return
        with self._lock:
            since, failures = self._since, self._failures
            if since is None:
                return
            self._since = None
            self._failures = 0
        self.logger.warning("%s is back after %.1f s (%d failed attempts)", self.what, self.clock() - since, failures)
