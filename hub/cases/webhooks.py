"""Transactional outbox → signed webhook deliveries, retried with backoff, in order per case.

Outbox rows are written in the same transaction as the audit entry they describe,
so an event is never lost nor sent for a rolled-back change. The dispatcher sends
the oldest undelivered row of each (target, case) and never overtakes a failing
one, so a receiver sees each case's events in order; targets take turns and are
backed off one by one, and a claim (lease) lets several hubs share one state DB
and still send each row once (see :class:`WebhookDispatcher`). Headers:

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
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

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


#: How long a claimed row stays reserved for its hub (beyond the HTTP timeout): the lease.
DEFAULT_LEASE_S: Final = 60.0


class WebhookDispatcher:
    """Delivers outbox rows to their targets; run :meth:`task` as a ctx task or call :meth:`deliver_due`.

    Fair: each pass takes every target's due rows on its own and sends them in turn,
    one row per target at a time, so a receiver that stays down (with any number of
    rows pending) never holds up the others; a receiver that is down (no answer, 5xx,
    429) is backed off as a whole, so it costs one attempt per back-off, not one per row.

    Single delivery across hubs on one state DB: a row is sent only by the hub that
    claimed it. The claim is a compare-and-set on ``next_attempt_ms`` (the row's
    lease): ``UPDATE ... SET next_attempt_ms = now + lease WHERE id = ? AND
    delivered_ms IS NULL AND next_attempt_ms = <value read>`` — exactly one hub's
    update matches (PostgreSQL re-checks the condition after the row lock; SQLite
    serialises writers), and while the lease runs the row and the rest of its lane are
    not due for anyone. A hub that dies mid-send leaves the row to be retried when the
    lease ends (receivers dedupe on the delivery key).
    """

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
        lease_s: float = DEFAULT_LEASE_S,
    ) -> None:
        if lease_s <= timeout_s:
            raise ValueError(f"lease_s ({lease_s}) must exceed timeout_s ({timeout_s}): a send must end in its lease")
        self.sessions = sessions
        self.targets = {t.name: t for t in targets}
        self.clock = clock
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.batch = batch
        self.lease_ms = int(lease_s * 1000)
        self.client = httpx.Client(timeout=timeout_s)
        #: Per target: consecutive "receiver down" failures and when it may be tried again (clock ms).
        self._down: dict[str, tuple[int, int]] = {}
        #: Rows this dispatcher delivered, and rows it left to another hub that had claimed them.
        self.delivered = 0
        self.claimed_elsewhere = 0

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def pending(self) -> int:
        """Undelivered rows."""
        with self.sessions() as s:
            return s.scalar(select(func.count(OutboxRow.id)).where(OutboxRow.delivered_ms.is_(None))) or 0

    def backed_off(self) -> dict[str, float]:
        """Targets resting after failures: name → seconds until the next try."""
        now = self._now_ms()
        return {name: (until - now) / 1000 for name, (_n, until) in self._down.items() if until > now}

    def _due(self, target: str, now_ms: int) -> list[OutboxRow]:
        """The oldest undelivered row of each of ``target``'s cases, when it is due (never overtake a waiting one)."""
        earlier = aliased(OutboxRow)
        waiting_before = (
            select(earlier.id)
            .where(
                earlier.target == OutboxRow.target,
                earlier.case_id == OutboxRow.case_id,
                earlier.delivered_ms.is_(None),
                or_(
                    earlier.event_seq < OutboxRow.event_seq,
                    and_(earlier.event_seq == OutboxRow.event_seq, earlier.id < OutboxRow.id),
                ),
            )
            .exists()
        )
        stmt = (
            select(OutboxRow)
            .where(
                OutboxRow.target == target,
                OutboxRow.delivered_ms.is_(None),
                OutboxRow.next_attempt_ms <= now_ms,
                ~waiting_before,
            )
            .order_by(OutboxRow.id)
            .limit(self.batch)
        )
        with self.sessions() as s:
            return list(s.scalars(stmt))

    def _claim(self, row: OutboxRow) -> int | None:
        """Take the row's lease; its end (ms) when this hub won it, None when another hub did."""
        lease_end = self._now_ms() + self.lease_ms
        with self.sessions() as s, s.begin():
            won = s.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.id == row.id,
                    OutboxRow.delivered_ms.is_(None),
                    OutboxRow.next_attempt_ms == row.next_attempt_ms,
                )
                .values(next_attempt_ms=lease_end)
                .execution_options(synchronize_session=False)
            )
        return lease_end if won.rowcount == 1 else None  # type: ignore[attr-defined]

    def _settle(self, row: OutboxRow, lease_end: int, error: str | None) -> bool:
        """Record the outcome of a send made under the lease; True when it was a delivery."""
        with self.sessions() as s, s.begin():
            fresh = s.get(OutboxRow, row.id, with_for_update=True)
            if fresh is None or fresh.delivered_ms is not None or fresh.next_attempt_ms != lease_end:
                logger.warning("webhook %s: lease lost during the send", row.delivery_key)
                return False
            if error is None:
                fresh.delivered_ms = self._now_ms()
                return True
            fresh.attempts += 1
            fresh.last_error = error[:500]
            wait = backoff_s(fresh.attempts, self.base_backoff_s, self.max_backoff_s)
            fresh.next_attempt_ms = int((self.clock() + wait) * 1000)
            logger.warning("webhook %s failed (attempt %s): %s", row.delivery_key, fresh.attempts, error)
            return False

    def _target_failed(self, name: str) -> None:
        failures = self._down.get(name, (0, 0))[0] + 1
        wait = backoff_s(failures, self.base_backoff_s, self.max_backoff_s)
        self._down[name] = (failures, self._now_ms() + int(wait * 1000))
        logger.warning("webhook target %s is down (%s in a row): next try in %.1f s", name, failures, wait)

    def deliver_due(self) -> int:
        """One pass: each target's due rows, one target after the other in turn; returns how many were delivered."""
        now_ms = self._now_ms()
        queues = {name: self._due(name, now_ms) for name in self.targets if self._down.get(name, (0, 0))[1] <= now_ms}
        delivered = 0
        while queues:
            for name in list(queues):
                queue = queues[name]
                if not queue:
                    del queues[name]
                    continue
                row = queue.pop(0)
                lease_end = self._claim(row)
                if lease_end is None:
                    self.claimed_elsewhere += 1  # another hub has it
                    continue
                error, receiver_down = self._send(row)
                if self._settle(row, lease_end, error):
                    delivered += 1
                    self._down.pop(name, None)
                elif receiver_down:
                    self._target_failed(name)
                    del queues[name]  # the rest waits for the target's back-off
        self.delivered += delivered
        return delivered

    def _send(self, row: OutboxRow) -> tuple[str | None, bool]:
        """POST one row: (None, False) on a 2xx, else (the error, whether the receiver is down as a whole)."""
        target = self.targets[row.target]
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
            return f"{type(exc).__name__}: {exc}", True
        if 200 <= response.status_code < 300:
            return None, False
        # 5xx and 429: the receiver is unwell; another 4xx is about this row
        return f"HTTP {response.status_code}", response.status_code >= 500 or response.status_code == 429

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
