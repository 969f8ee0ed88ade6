"""``system`` driver: host health of the edge box itself via psutil.

Metrics: ``cpu_pct`` (since the previous poll), ``mem_pct``, ``disk_pct`` of a
configurable path, ``temp_c`` (hottest sensor, only where the kernel exposes
one), ``uptime_s``, ``load1``, and ``net_rx_bytes`` / ``net_tx_bytes`` (counters,
all interfaces or one). Event: ``disk_full`` raised at ``disk_full_pct`` and
cleared ``disk_clear_margin_pct`` below it.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Literal

import psutil
from pydantic import Field

from edge.drivers import DriverConfigBase, DriverError, DriverEvent, Sample, register_driver
from edge.drivers.conditions import ConditionTracker, alarm, with_hysteresis
from edge.vocabulary import EventType
from edge.wire import MetricValue, Severity

logger = logging.getLogger(__name__)


class SystemConfig(DriverConfigBase):
    """Config of the host health driver."""

    type: Literal["system"] = Field(description="Driver key.")
    disk_path: str = Field(default="/", min_length=1, description="Mount point whose usage is disk_pct.")
    disk_full_pct: float = Field(default=95.0, gt=0, le=100, description="disk_full is raised at this usage.")
    disk_clear_margin_pct: float = Field(
        default=5.0, ge=0, lt=100, description="disk_full clears this many points below disk_full_pct."
    )
    nic: str | None = Field(default=None, description="Count bytes of this interface only; null: all interfaces.")
    temperature: bool = Field(default=True, description="Report temp_c when the host has a temperature sensor.")


def hottest_temperature() -> float | None:
    """Highest current temperature over all sensors psutil sees, or None where there are none."""
    reader = getattr(psutil, "sensors_temperatures", None)
    if reader is None:
        return None
    try:
        sensors = reader()
    except (OSError, RuntimeError) as exc:  # some kernels expose unreadable hwmon files
        logger.debug("temperature sensors unreadable: %s", exc)
        return None
    readings = [entry.current for entries in sensors.values() for entry in entries if entry.current is not None]
    return max(readings) if readings else None


class SystemDriver:
    """Reads cpu, memory, disk, temperature, uptime, load and network counters."""

    def __init__(self, config: SystemConfig) -> None:
        self.config = config
        self._tracker = ConditionTracker()
        psutil.cpu_percent(interval=None)  # prime: the first call has no interval to measure
        self._boot = psutil.boot_time()

    def _net(self) -> tuple[int, int] | None:
        if self.config.nic is None:
            counters = psutil.net_io_counters()
            return None if counters is None else (counters.bytes_recv, counters.bytes_sent)
        per_nic = psutil.net_io_counters(pernic=True)
        nic = per_nic.get(self.config.nic)
        if nic is None:
            raise DriverError(f"network interface {self.config.nic!r} not found; have {sorted(per_nic)}")
        return nic.bytes_recv, nic.bytes_sent

    def poll(self, now_ms: int) -> Sample:
        """Read the host now."""
        try:
            disk = psutil.disk_usage(self.config.disk_path).percent
        except OSError as exc:
            raise DriverError(f"cannot stat disk path {self.config.disk_path!r}: {exc}", retryable=False) from exc
        metrics: dict[str, MetricValue] = {
            "cpu_pct": float(psutil.cpu_percent(interval=None)),
            "mem_pct": float(psutil.virtual_memory().percent),
            "disk_pct": float(disk),
            "uptime_s": max(0, int(time.time() - self._boot)),
            "load1": round(os.getloadavg()[0], 3),
        }
        if self.config.temperature:
            temp = hottest_temperature()
            if temp is not None:
                metrics["temp_c"] = round(temp, 1)
        net = self._net()
        if net is not None:
            metrics["net_rx_bytes"], metrics["net_tx_bytes"] = net
        current: dict[str, DriverEvent] = {}
        clear_below = self.config.disk_full_pct - self.config.disk_clear_margin_pct
        if with_hysteresis(self._tracker, "disk_full", disk, above=self.config.disk_full_pct, clear_below=clear_below):
            message = f"{self.config.disk_path} is {disk:.1f}% full"
            current[EventType.DISK_FULL] = alarm(EventType.DISK_FULL, Severity.MAJOR, message, disk)
        return Sample(metrics, self._tracker.update(current))

    def close(self) -> None:
        """Nothing to release."""


register_driver("system", SystemConfig, SystemDriver, "host health of the edge box (cpu, memory, disk, temperature...)")
