"""System driver: real host readings and the disk_full condition."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from edge.drivers import DriverError
from edge.drivers.system import SystemConfig, SystemDriver
from edge.wire import EventState


def scfg(**fields: Any) -> SystemConfig:
    return SystemConfig.model_validate({"type": "system", **fields})


def test_reads_the_host() -> None:
    driver = SystemDriver(scfg())
    sample = driver.poll(0)
    m = sample.metrics
    for key in ("cpu_pct", "mem_pct", "disk_pct", "uptime_s", "load1", "net_rx_bytes", "net_tx_bytes"):
        assert key in m, key
    assert 0.0 <= float(m["cpu_pct"]) <= 100.0
    assert 0.0 < float(m["mem_pct"]) <= 100.0
    assert 0.0 <= float(m["disk_pct"]) <= 100.0
    assert int(m["uptime_s"]) > 0
    assert sample.events == ()


def test_disk_full_raises_once_and_clears() -> None:
    driver = SystemDriver(scfg(disk_full_pct=0.001, disk_clear_margin_pct=0))
    first = driver.poll(0)
    assert [(e.type, e.state) for e in first.events] == [("disk_full", EventState.ACTIVE)]
    assert driver.poll(1).events == ()  # still full: no repeated alarm
    driver.config = scfg(disk_full_pct=100.0, disk_clear_margin_pct=50.0)
    cleared = driver.poll(2).events
    assert [(e.type, e.state) for e in cleared] == [("disk_full", EventState.CLEARED)]


def test_missing_disk_path_and_nic() -> None:
    with pytest.raises(DriverError, match="cannot stat disk path '/nonexistent/x'"):
        SystemDriver(scfg(disk_path="/nonexistent/x")).poll(0)
    with pytest.raises(DriverError, match="network interface 'nope0' not found"):
        SystemDriver(scfg(nic="nope0")).poll(0)


def test_config_rejects_unknown_and_bad_values() -> None:
    with pytest.raises(ValidationError) as info:
        SystemConfig.model_validate({"type": "system", "disk_ful_pct": 90})
    assert info.value.errors()[0]["loc"] == ("disk_ful_pct",)
    with pytest.raises(ValidationError) as info:
        SystemConfig.model_validate({"type": "system", "disk_full_pct": 120})
    assert info.value.errors()[0]["loc"] == ("disk_full_pct",)
