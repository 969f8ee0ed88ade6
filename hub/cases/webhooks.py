"""Transactional outbox → signed webhook deliveries, retried with backoff, in order per case.

Outbox rows are written in the same transaction as the audit entry they describe,
so an event is never lost nor sent for a rolled-back change. The dispatcher sends
the oldest undelivered row of each (target, case) and never overtakes a failing
one, so a receiver sees each case's events in order. Headers:

- ``X-GridSentinel-Signature: sha256=<hex>`` — HMAC-SHA256 with the target secret
  over ``<timestamp>.<body>``; ``X-GridSentinel-Timestamp`` carries the timestamp;
- ``Idempotency-Key`` / ``X-GridSentinel-Delivery`` — the stable delivery key
  (``case-<id>-<seq>-<target>``), identical on every retry, so receivers dedupe.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Final

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.cases.models import OutboxRow
from hub.cases.service import WebhookTarget

logger = logging.getLogger(__name__)

DEFAULT_BACKOFF_S: Final = 0.5
DEFAULT_MAX_BACKOFF_S: Final = 300.0
DEFAULT_POLL_S: Final = 0.5


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def backoff_s(attempts: int, base: float = DEFAULT_BACKOFF_S, cap: float = DEFAULT_MAX_BACKOFF_S) -> float:
    """Exponential backoff after ``attempts`` failures: base, 2·base, 4·base, ... up to ``cap``."""
    return float(min(cap, base * (2 ** max(0, attempts - 1))))


class WebhookDispatcher:
    """Delivers outbox rows to their targets; run :meth:`task` as a ctx task or call :meth:`deliver_due`."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        targets: Sequence[WebhookTarget],
        *,
        clock: Callable[[], float] = time.time,
        base_backoff_s: float = DEFAULT_BACKOFF_S,
        max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
        timeout_s: float = 5.0,
        batch: int = 200,
    ) -> None:
        self.sessions = sessions
        self.targets = {t.name: t for t in targets}
        self.clock = clock
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.batch = batch
        self.client = httpx.Client(timeout=timeout_s)

    def pending(self) -> int:
        """Undelivered rows."""
        with self.sessions() as s:
            return len(list(s.scalars(select(OutboxRow.id).where(OutboxRow.delivered_ms.is_(None)))))

    def deliver_due(self) -> int:
        """One pass: send what is due, oldest first per (target, case); returns how many were delivered."""
        now_ms = int(self.clock() * 1000)
        with self.sessions() as s:
            rows = list(
                s.scalars(
                    select(OutboxRow)
                    .where(OutboxRow.delivered_ms.is_(None))
                    .order_by(OutboxRow.case_id, OutboxRow.event_seq, OutboxRow.id)
                    .limit(self.batch)
                )
            )
        blocked: set[tuple[str, int]] = set()
        delivered = 0
        for row in rows:
            lane = (row.target, row.case_id)
            if lane in blocked:
                continue
            if row.next_attempt_ms > now_ms:
                blocked.add(lane)  # an earlier event of this case is waiting: keep the order
                continue
            error = self._send(row)
            with self.sessions() as s, s.begin():
                fresh = s.get(OutboxRow, row.id)
                if fresh is None or fresh.delivered_ms is not None:
                    continue
                if error is None:
                    fresh.delivered_ms = int(self.clock() * 1000)
                    delivered += 1
                else:
                    fresh.attempts += 1
                    fresh.last_error = error[:500]
                    wait = backoff_s(fresh.attempts, self.base_backoff_s, self.max_backoff_s)
                    fresh.next_attempt_ms = int((self.clock() + wait) * 1000)
                    blocked.add(lane)
                    logger.warning("webhook %s failed (attempt %s): %s", row.delivery_key, fresh.attempts, error)
        return delivered

    def _send(self, row: OutboxRow) -> str | None:
        """POST one row; None on a 2xx, else the error text."""
        target = self.targets.get(row.target)
        if target is None:
            return f"no webhook target named {row.target!r}"
        body = row.payload.encode()
        timestamp = str(int(self.clock()))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": row.delivery_key,
            "X-GridSentinel-Delivery": row.delivery_key,
            "X-GridSentinel-Timestamp": timestamp,
            "X-GridSentinel-Signature": sign(target.secret, timestamp, body),
        }
        try:
            response = self.client.post(target.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"

    def task(self, stop: threading.Event, poll_s: float = DEFAULT_POLL_S) -> None:
        """Deliver until ``stop`` is set."""
        while not stop.is_set():
            try:
                sent = self.deliver_due()
            except Exception:
                logger.exception("webhook delivery pass failed")
                sent = 0
            if not sent:
                stop.wait(poll_s)
        self.client.close()
