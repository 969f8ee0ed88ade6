"""Leases in a real NATS KV bucket: one holder at a time, renewal, expiry by TTL, release, ambiguous updates."""

from __future__ import annotations

import asyncio
import time

import nats
import pytest
from nats.js.api import KeyValueConfig

from hub.cluster.leases import LeaseLost, LeaseTable

pytestmark = pytest.mark.integration

TTL_S = 1.5


async def _tables(url: str, *holders: str) -> tuple[object, list[LeaseTable]]:
    nc = await nats.connect(url)
    js = nc.jetstream(timeout=5)
    kv = await js.create_key_value(KeyValueConfig(bucket="gs_leases", history=1, ttl=TTL_S))
    return nc, [LeaseTable(js, kv, h, TTL_S) for h in holders]


def test_one_holder_renewal_release_and_expiry(nats_url: str) -> None:
    async def scenario() -> None:
        nc, (a, b) = await _tables(nats_url, "a", "b")
        try:
            assert await a.claim("part.0")
            assert not await b.claim("part.0"), "a second claim of a held lease must fail"
            assert a.valid("part.0") and not await b.is_free("part.0")
            for _ in range(3):  # kept past its TTL by renewals
                await asyncio.sleep(TTL_S / 2)
                await a.renew("part.0")
            assert not await b.claim("part.0")
            await a.release("part.0")
            assert await b.is_free("part.0") and await b.claim("part.0"), "a released lease is free at once"
            assert "part.0" in await b.live_keys()
            # b stops renewing (killed): the bucket's TTL frees the key, and a takes it
            b.held.clear()
            started = time.monotonic()
            while not await a.claim("part.0"):
                assert time.monotonic() - started < TTL_S * 4, "the TTL did not free the lease"
                await asyncio.sleep(0.1)
            assert time.monotonic() - started >= TTL_S * 0.5
        finally:
            await nc.close()  # type: ignore[attr-defined]

    asyncio.run(scenario())


def test_a_taken_over_lease_is_lost_and_a_lost_answer_is_still_ours(nats_url: str) -> None:
    async def scenario() -> None:
        nc, (a, b) = await _tables(nats_url, "a", "b")
        try:
            assert await a.claim("part.1")
            # an update whose answer was lost: the server moved the revision on, a's copy is behind
            await a.kv.update("part.1", b"a", last=a.held["part.1"].revision)
            await a.renew("part.1")  # recognised as a's own write
            assert a.valid("part.1")
            # now someone else really holds it (after an expiry a did not notice)
            await a.kv.delete("part.1")
            assert await b.claim("part.1")
            with pytest.raises(LeaseLost):
                await a.renew("part.1")
            assert "part.1" not in a.held
            # not renewed within the TTL by a's own clock: not valid, whatever the bucket says
            assert await a.claim("part.2")
            a.held["part.2"].renewed -= TTL_S
            assert not a.valid("part.2") and a.expired() == ["part.2"]
        finally:
            await nc.close()  # type: ignore[attr-defined]

    asyncio.run(scenario())
