"""Per-device token buckets: bursts, steady rate, payload-weighted cost, one incident per episode, bounded memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.config import HubSettings
from hub.ingest.ratelimit import DeviceRateLimiter
from hub.service import Hub
from simulators.servers import wait_until
from tests.hub.conftest import api
from tests.hub.device import FakeDevice


def test_burst_then_refusal_then_refill() -> None:
    lim = DeviceRateLimiter(rate_per_s=10, burst=5)
    verdicts = [lim.admit("a", 100, 0.0) for _ in range(8)]
    assert [v.allowed for v in verdicts] == [True] * 5 + [False] * 3
    assert [v.started for v in verdicts] == [False] * 5 + [True, False, False]  # one incident per episode
    assert lim.dropped("a") == 3 and lim.refused == 3 and lim.episodes == 1
    assert lim.limited() == ["a"]
    assert lim.admit("a", 100, 0.1).allowed  # 0.1 s at 10/s = one token back
    assert not lim.admit("a", 100, 0.1).allowed
    assert lim.episodes == 1  # still the same episode


def test_other_devices_are_not_affected() -> None:
    lim = DeviceRateLimiter(rate_per_s=1, burst=2)
    for _ in range(50):
        lim.admit("noisy", 10, 0.0)
    assert all(lim.admit("quiet", 10, 0.0).allowed for _ in range(2))
    assert lim.dropped("quiet") == 0 and lim.dropped("noisy") == 48


def test_episode_ends_once_the_bucket_refills() -> None:
    lim = DeviceRateLimiter(rate_per_s=10, burst=5)
    for _ in range(6):
        lim.admit("a", 0, 0.0)
    assert lim.admit("a", 0, 0.2).allowed  # partly refilled: admitted, still in the episode
    assert lim.limited() == ["a"]
    ended = lim.admit("a", 0, 10.0)
    assert ended.allowed and ended.ended and lim.limited() == []
    for _ in range(4):
        assert lim.admit("a", 0, 10.0).allowed
    assert lim.admit("a", 0, 10.0).started and lim.episodes == 2  # a new flood is a new incident


def test_large_payloads_cost_more() -> None:
    lim = DeviceRateLimiter(rate_per_s=1, burst=10, bytes_per_token=1000)
    assert lim.cost(999) == 1 and lim.cost(1000) == 2 and lim.cost(256_000) == 257
    assert lim.admit("a", 8999, 0.0).allowed  # costs 9 of 10
    assert not lim.admit("a", 1000, 0.0).allowed  # costs 2, one left


def test_memory_is_bounded_by_evicting_idle_devices() -> None:
    lim = DeviceRateLimiter(rate_per_s=1, burst=2, max_devices=100)
    lim.admit("flooder", 0, 0.0)
    lim.admit("flooder", 0, 0.0)
    lim.admit("flooder", 0, 0.0)
    for i in range(1000):
        lim.admit(f"random-{i}", 0, float(i))
    assert len(lim) <= 100


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        DeviceRateLimiter(rate_per_s=0)
    with pytest.raises(ValueError):
        DeviceRateLimiter(burst=0.5)


@given(
    rate=st.floats(0.5, 1000),
    burst=st.integers(1, 200),
    gaps=st.lists(st.floats(0, 2), min_size=1, max_size=300),
)
def test_never_admits_more_than_burst_plus_rate_times_time(rate: float, burst: int, gaps: list[float]) -> None:
    lim = DeviceRateLimiter(rate_per_s=rate, burst=burst)
    now, admitted = 0.0, 0
    for gap in gaps:
        now += gap
        admitted += lim.admit("d", 0, now).allowed
    assert admitted <= burst + rate * now + 1e-6
    assert admitted + lim.dropped("d") == len(gaps)


# ------------------------------------------------------------------ wired into a running hub


@pytest.mark.integration
def test_flooding_device_is_dead_lettered_with_one_incident(mosquitto: Any, tmp_path: Path) -> None:
    settings = HubSettings(
        mqtt_url=mosquitto.url,
        http_port=0,
        data_dir=tmp_path / "hub",
        demo=True,
        rate_limit_per_s=1,
        rate_limit_burst=10,
    )
    hub = Hub(settings, plugins=("hub.incidents.plugin",))
    hub.start()
    try:
        wait_until(lambda: hub.ingest is not None and hub.ingest.connected, what="hub connected")
        flood, calm = FakeDevice(mosquitto.port, "kiosk-flood"), FakeDevice(mosquitto.port, "kiosk-calm")
        flood.connect()  # the birth costs a token too
        calm.connect()
        for seq in range(1, 41):
            flood.telemetry(seq, temp_c=20.0)
        for seq in range(1, 6):
            calm.telemetry(seq, temp_c=20.0)
        assert hub.deadletters is not None
        wait_until(lambda: hub.stats.dead_letters.get("rate_limited", 0) >= 25, 10, what="rate-limited dead letters")
        with api(hub, token=None) as client:  # the demo viewer may read incidents and dead letters
            wait_until(
                lambda: any(i["rule_id"] == "device_rate_limited" for i in client.get("/api/v1/incidents").json()),
                10,
                what="one rate-limit incident",
            )
            incidents = [i for i in client.get("/api/v1/incidents").json() if i["rule_id"] == "device_rate_limited"]
            page = client.get("/api/v1/deadletters", params={"reason": "rate_limited", "limit": 100}).json()
        assert len(incidents) == 1 and incidents[0]["device_id"] == "kiosk-flood"
        assert {i["device_id"] for i in page["items"]} == {"kiosk-flood"}
        assert hub.writer is not None and hub.writer.flush(10)
        assert hub.store is not None and hub.store.count("kiosk", device="kiosk-calm") == 5
        assert hub.store.count("kiosk", device="kiosk-flood") + page["total"] == 40
        flood.close()
        calm.close()
    finally:
        hub.stop()
