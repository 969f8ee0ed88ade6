"""Leases in a NATS KV bucket whose entries expire (the bucket's TTL): partitions, singleton jobs, members.

A lease is a key created with compare-and-set (``create`` fails when the key exists) and kept by
updating it with the revision last written (``update(last=...)`` fails when someone else wrote it
since). A holder that stops renewing -- killed, cut off -- loses the key when the bucket's TTL
removes it, and another replica's ``create`` succeeds. A holder that cannot renew for a whole TTL
treats the lease as lost before anyone else can claim it (its clock runs from the last renewal that
succeeded, not from the server's expiry), so two replicas never act on one lease knowingly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Final

from nats.js import JetStreamContext
from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

logger = logging.getLogger(__name__)

#: Bucket of the cluster's leases.
LEASE_BUCKET: Final = "gs_leases"
#: Seconds a lease lives without renewal (the bucket's TTL): the bound on a takeover, with the claim poll.
DEFAULT_LEASE_TTL_S: Final = 4.0
#: Seconds one lease operation may take (a renewal stuck behind a leader election must not hold the others).
OP_TIMEOUT_S: Final = 1.0


@dataclass
class Lease:
    """One key this replica holds: its revision and when it was last renewed (monotonic)."""

    key: str
    revision: int
    renewed: float


class LeaseLost(Exception):
    """A lease is no longer this replica's (someone else holds it, or it could not be renewed in time)."""


class LeaseTable:
    """The leases one replica holds in the bucket, claimed, renewed and released through ``kv``."""

    def __init__(self, js: JetStreamContext, kv: KeyValue, holder: str, ttl_s: float = DEFAULT_LEASE_TTL_S) -> None:
        self.js = js
        self.kv = kv
        self.holder = holder
        self.ttl_s = ttl_s
        self.held: dict[str, Lease] = {}

    def valid(self, key: str) -> bool:
        """True while ``key`` is held and was renewed less than a TTL ago (by this replica's clock)."""
        lease = self.held.get(key)
        # A margin of a fifth of the TTL: the server's expiry clock started when it stored the update.
        return lease is not None and time.monotonic() - lease.renewed < self.ttl_s * 0.8

    async def is_free(self, key: str) -> bool:
        """True when nobody holds ``key``."""
        try:
            entry = await asyncio.wait_for(self.kv.get(key), OP_TIMEOUT_S)
        except (KeyNotFoundError, KeyDeletedError):  # never held, or released
            return True
        return entry.value is None or entry.value == b""

    async def claim(self, key: str) -> bool:
        """Try to take ``key``; True when this replica holds it now."""
        started = time.monotonic()
        try:
            revision = await asyncio.wait_for(self.kv.create(key, self.holder.encode()), OP_TIMEOUT_S)
        except KeyWrongLastSequenceError:
            return False
        self.held[key] = Lease(key, revision, started)
        return True

    async def renew(self, key: str) -> None:
        """Renew ``key``; raise :class:`LeaseLost` when it is no longer ours."""
        lease = self.held.get(key)
        if lease is None:
            raise LeaseLost(key)
        started = time.monotonic()
        try:
            revision = await asyncio.wait_for(
                self.kv.update(key, self.holder.encode(), last=lease.revision), OP_TIMEOUT_S
            )
        except KeyWrongLastSequenceError as exc:
            # An update whose answer was lost (a node went away) moved the revision on: still ours if it says so.
            try:
                entry = await asyncio.wait_for(self.kv.get(key), OP_TIMEOUT_S)
            except (KeyNotFoundError, KeyDeletedError):
                entry = None
            if entry is None or entry.value != self.holder.encode() or entry.revision is None:
                self.held.pop(key, None)
                raise LeaseLost(f"{key} was taken over") from exc
            revision = entry.revision
        lease.revision = revision
        lease.renewed = started

    async def release(self, key: str) -> None:
        """Give ``key`` back at once (another replica may claim it on its next poll)."""
        lease = self.held.pop(key, None)
        if lease is not None:
            try:
                await asyncio.wait_for(self.kv.delete(key, last=lease.revision), OP_TIMEOUT_S)
            except KeyWrongLastSequenceError:
                pass  # already someone else's: nothing to give back
            except Exception as exc:  # the TTL gives it back anyway
                logger.warning("lease %s not released (%s): free after its TTL", key, exc)

    def expired(self) -> list[str]:
        """Keys held but not renewed within a TTL: lost, whatever the bucket says."""
        return [key for key in self.held if not self.valid(key)]

    async def live_keys(self, bucket: str = LEASE_BUCKET) -> set[str]:
        """Keys written within a TTL: held, or released not long ago (a released key leaves a delete marker
        until the TTL removes it; :meth:`is_free` tells the two apart). One stream-info request, no consumer."""
        info = await asyncio.wait_for(
            self.js.stream_info(f"KV_{bucket}", subjects_filter=f"$KV.{bucket}.>"), OP_TIMEOUT_S
        )
        subjects = info.state.subjects or {}
        head = f"$KV.{bucket}."
        return {s[len(head) :] for s in subjects if s.startswith(head)}
