"""Live-stream fan-out through a real nats-server: live views see every replica, listeners only their own."""

from __future__ import annotations

import asyncio
import threading

import nats
import pytest

from hub.bus import EventBus
from hub.cluster.live import LiveRelay
from simulators.servers import wait_until

pytestmark = pytest.mark.integration


def test_a_change_on_one_replica_reaches_the_others_live_views_only(nats_url: str) -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def on_loop(coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(10)  # type: ignore[arg-type]

    buses = {name: EventBus() for name in ("a", "b")}
    relays = []
    try:
        for name, bus in buses.items():
            nc = on_loop(nats.connect(nats_url))
            relay = LiveRelay(bus, nc, loop, name)  # type: ignore[arg-type]
            on_loop(relay.start())
            relays.append(relay)
        view_b = buses["b"].subscribe(remote=True)  # an operator page on replica b
        listener_b = buses["b"].subscribe()  # e.g. the data-loss listener of replica b
        view_a = buses["a"].subscribe(remote=True)
        buses["a"].publish("incident", {"id": 7, "device_id": "smoke-001-01"})
        buses["a"].publish("shutdown", {})
        got: list[tuple[str, dict[str, object]]] = []

        def relayed() -> bool:
            got.extend((e.kind, e.data) for e in view_b.get(0.05))
            return bool(got)

        wait_until(relayed, 5, what="relayed change")
        assert got == [("incident", {"id": 7, "device_id": "smoke-001-01"})]
        assert listener_b.get(0.3) == [], "a listener that acts on changes must not see another replica's"
        own = [e.kind for e in view_a.get(0.3)]
        assert own == ["incident", "shutdown"], "a replica's own changes reach its views once, not echoed back"
    finally:
        for relay in relays:
            relay.stop()
            on_loop(relay.nc.close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
