"""``sim_kiosk``: a simulated self-service government kiosk for the real edge agent.

Transactions follow an hour-of-day profile (none at night, peaks mid-morning and
mid-afternoon); printing uses up paper, raising ``paper_low`` then ``paper_out``
until someone refills it; printer jams, card/ID reader faults and app crashes
happen at configured rates (or by ``trigger``), and a jammed printer, a faulty
reader or a crashed app turns transactions into errors. Host metrics (cpu, mem,
disk, temperature, latency) come from seeded signals. State advances with the
``now_ms`` of each poll and a ``random.Random(seed)``, so a seed and a poll
schedule give the same run every time.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from typing import Final, Literal

from pydantic import Field

from edge.drivers import DriverConfigBase, DriverEvent, Sample, register_driver
from edge.drivers.conditions import ConditionTracker, alarm, with_hysteresis
from edge.vocabulary import EVENT_TYPES, EventType, event_types_of
from edge.wire import DeviceKind, MetricValue, Severity
from simulators.drivers import UnknownTriggerError, remember
from simulators.signals import Diurnal, Drift, Noise, Spikes, Sum, local_hour, mix, uniform

logger = logging.getLogger(__name__)

#: Relative transaction rate per local hour of day (1.0 = ``txn_peak_per_h``).
HOURLY_PROFILE: Final = (
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.05,
    0.4, 0.9, 1.0, 0.8, 0.5, 0.6, 0.9, 1.0,
    0.8, 0.5, 0.3, 0.2, 0.1, 0.0, 0.0, 0.0,
)  # fmt: skip
#: Every alarm the vocabulary gives kiosks can be forced (memory_high and overheat come from the
#: deployer's local rules on a real kiosk; here they are forced conditions like the rest).
TRIGGERS: Final = tuple(event_types_of(DeviceKind.KIOSK))
#: Triggers without a simulated cause: forced is all they are.
_FORCED_ONLY: Final = frozenset({EventType.MEMORY_HIGH, EventType.OVERHEAT})


class SimKioskConfig(DriverConfigBase):
    """Config of a simulated kiosk."""

    type: Literal["sim_kiosk"] = Field(description="Driver key.")
    seed: int = Field(default=0, ge=0, description="Seed: the same seed and poll times give the same run.")
    handle: str = Field(default="", max_length=64, description="Name scenarios use to find this instance (find_sim).")
    paper_sheets: int = Field(default=500, ge=1, le=100_000, description="Sheets in a full paper roll/tray.")
    paper_start_pct: float = Field(default=100.0, ge=0, le=100, description="Paper level at start, percent.")
    paper_low_pct: float = Field(default=15.0, gt=0, lt=100, description="paper_low is raised below this level.")
    sheets_per_txn: float = Field(
        default=1.5, gt=0, le=50, description="Mean sheets printed by a printing transaction."
    )
    print_ratio: float = Field(default=0.7, ge=0, le=1, description="Share of transactions that print.")
    txn_peak_per_h: float = Field(
        default=40.0, ge=0, le=100_000, description="Transactions per hour at the busiest hour."
    )
    jam_per_1000_prints: float = Field(default=2.0, ge=0, description="Printer jams per 1,000 printed sheets.")
    reader_faults_per_day: float = Field(default=0.2, ge=0, description="Card/ID reader faults per day.")
    app_crashes_per_day: float = Field(default=0.1, ge=0, description="Kiosk application crashes per day.")
    app_restart_s: float = Field(default=60.0, gt=0, description="Seconds until a crashed app is back.")
    fault_clear_s: float = Field(
        default=1800.0, gt=0, description="Seconds until a spontaneous jam or reader fault is fixed."
    )
    refill_after_s: float | None = Field(
        14_400.0, gt=0, description="Seconds after paper_out until a refill; null: never."
    )


class SimKioskDriver:
    """A simulated kiosk with paper, printer, reader, app and host state."""

    def __init__(self, config: SimKioskConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()
        self._sheets = round(config.paper_sheets * config.paper_start_pct / 100.0)
        self._txn_total = 0
        self._err_total = 0
        self._last_t: float | None = None
        self._boot_t: float | None = None
        #: condition -> Unix seconds when it ends (inf: until released); absent: not faulted
        self._faults: dict[str, float] = {}
        self._pending: dict[str, float] = {}
        self._paper_out_since: float | None = None
        self._tracker = ConditionTracker()
        s = config.seed
        self._cpu = Sum((Diurnal(18.0, 8.0, 11.0), Noise(3.0, mix(s, 1), 5.0), Spikes(2.0, 40.0, mix(s, 2), 15.0)))
        self._mem = Sum((Diurnal(48.0, 4.0, 16.0), Noise(1.0, mix(s, 3), 10.0)))
        self._disk_base = 35.0 + 30.0 * uniform(s, 4)
        self._temp = Sum((Diurnal(36.0, 4.0, 15.0), Noise(0.4, mix(s, 5), 10.0)))
        self._latency = Sum((Diurnal(45.0, 10.0, 10.0), Noise(6.0, mix(s, 6)), Spikes(1.0, 400.0, mix(s, 7), 20.0)))
        remember(config.handle, self)

    # ------------------------------------------------------------ scenario control

    def trigger(self, name: str, duration_s: float | None = None) -> None:
        """Force condition ``name`` (one of :data:`TRIGGERS`) from the next poll on."""
        if name not in TRIGGERS:
            raise UnknownTriggerError(f"sim_kiosk has no trigger {name!r}; has {', '.join(TRIGGERS)}")
        with self._lock:
            if name == "paper_out":
                self._sheets = 0
            elif name == "paper_low":
                self._sheets = min(self._sheets, max(1, math.floor(self._low_sheets()) - 1))
            else:
                self._pending[name] = math.inf if duration_s is None else duration_s

    def release(self, name: str) -> None:
        """End a forced condition; for paper it means a refill."""
        if name not in TRIGGERS:
            raise UnknownTriggerError(f"sim_kiosk has no trigger {name!r}; has {', '.join(TRIGGERS)}")
        if name in ("paper_low", "paper_out"):
            self.refill()
            return
        with self._lock:
            self._faults.pop(name, None)
            self._pending.pop(name, None)

    def refill(self) -> None:
        """Put a full paper roll in."""
        with self._lock:
            self._sheets = self.config.paper_sheets
            self._paper_out_since = None

    # ----------------------------------------------------------------- simulation

    def _low_sheets(self) -> float:
        return self.config.paper_sheets * self.config.paper_low_pct / 100.0

    def _poisson(self, lam: float) -> int:
        if lam <= 0:
            return 0
        if lam > 50:  # normal approximation keeps big bursts cheap
            return max(0, round(self._rng.gauss(lam, math.sqrt(lam))))
        limit, k, p = math.exp(-lam), 0, self._rng.random()
        while p > limit:
            k += 1
            p *= self._rng.random()
        return k

    def _chance(self, per_day: float, dt_s: float) -> bool:
        return per_day > 0 and self._rng.random() < 1.0 - math.exp(-per_day * dt_s / 86_400.0)

    def _faulted(self, name: str, t_s: float) -> bool:
        end = self._faults.get(name)
        if end is not None and t_s >= end:
            del self._faults[name]
            return False
        return end is not None

    def _advance(self, t_s: float, dt_s: float) -> int:
        cfg = self.config
        for name, duration in self._pending.items():
            self._faults[name] = t_s + duration
        self._pending.clear()
        if self._chance(cfg.app_crashes_per_day, dt_s) and not self._faulted("app_crash", t_s):
            self._faults["app_crash"] = t_s + cfg.app_restart_s
        if self._chance(cfg.reader_faults_per_day, dt_s) and not self._faulted("reader_fault", t_s):
            self._faults["reader_fault"] = t_s + cfg.fault_clear_s
        if self._faulted("app_crash", t_s):
            self._boot_t = None  # uptime restarts when the app is back
            return 0
        if self._boot_t is None:
            self._boot_t = t_s
        rate = cfg.txn_peak_per_h * HOURLY_PROFILE[int(local_hour(t_s)) % 24]
        count = self._poisson(rate * dt_s / 3600.0)
        jammed, reader_bad = self._faulted("printer_jam", t_s), self._faulted("reader_fault", t_s)
        for _ in range(count):
            self._txn_total += 1
            if reader_bad and self._rng.random() < 0.5:
                self._err_total += 1
                continue
            if self._rng.random() >= cfg.print_ratio:
                continue
            sheets = max(1, round(self._rng.expovariate(1.0 / cfg.sheets_per_txn)))
            if jammed or self._sheets < sheets:
                self._err_total += 1
                continue
            self._sheets -= sheets
            if self._rng.random() < 1.0 - (1.0 - cfg.jam_per_1000_prints / 1000.0) ** sheets:
                jammed = True
                self._faults["printer_jam"] = t_s + cfg.fault_clear_s
        if self._sheets == 0:
            if self._paper_out_since is None:
                self._paper_out_since = t_s
            elif cfg.refill_after_s is not None and t_s - self._paper_out_since >= cfg.refill_after_s:
                self._sheets, self._paper_out_since = cfg.paper_sheets, None
        return count

    def poll(self, now_ms: int) -> Sample:
        """Advance the kiosk to ``now_ms`` and report its metrics and alarm changes."""
        t_s = now_ms / 1000.0
        with self._lock:
            dt_s = 0.0 if self._last_t is None else max(0.0, t_s - self._last_t)
            self._last_t = t_s
            count = self._advance(t_s, dt_s)
            app_up = not self._faulted("app_crash", t_s)
            jammed, reader_bad = self._faulted("printer_jam", t_s), self._faulted("reader_fault", t_s)
            door_open = self._faulted("door_open", t_s)
            cpu = min(100.0, max(0.0, self._cpu.at(t_s) + 2.0 * count))
            disk = self._disk_base + Drift(0.01).at(t_s % 86_400.0)
            if self._faulted("disk_full", t_s):
                disk = 97.0
            paper_pct = 100.0 * self._sheets / self.config.paper_sheets
            metrics: dict[str, MetricValue] = {
                "cpu_pct": round(cpu, 1),
                "mem_pct": round(min(100.0, max(0.0, self._mem.at(t_s))), 1),
                "disk_pct": round(min(100.0, disk), 1),
                "temp_c": round(self._temp.at(t_s) + cpu * 0.05, 1),
                "latency_ms": round(max(1.0, self._latency.at(t_s)), 1),
                "uptime_s": 0 if self._boot_t is None else int(t_s - self._boot_t),
                "paper_pct": round(paper_pct, 1),
                "transactions": count,
                "transactions_total": self._txn_total,
                "errors_total": self._err_total,
                "printer_ok": not jammed and self._sheets > 0,
                "reader_ok": not reader_bad,
                "app_up": app_up,
                "door_open": door_open,
            }
            current: dict[str, DriverEvent] = {}
            if self._sheets == 0:
                current[EventType.PAPER_OUT] = alarm(
                    EventType.PAPER_OUT, Severity.MAJOR, "printer is out of paper", 0.0
                )
            if paper_pct < self.config.paper_low_pct:
                current[EventType.PAPER_LOW] = alarm(
                    EventType.PAPER_LOW, Severity.MINOR, f"paper at {paper_pct:.0f}%", paper_pct
                )
            if jammed:
                current[EventType.PRINTER_JAM] = alarm(EventType.PRINTER_JAM, Severity.MAJOR, "printer jammed")
            if reader_bad:
                current[EventType.READER_FAULT] = alarm(
                    EventType.READER_FAULT, Severity.MAJOR, "card/ID reader not responding"
                )
            if not app_up:
                current[EventType.APP_CRASH] = alarm(EventType.APP_CRASH, Severity.MAJOR, "kiosk application crashed")
            if door_open:
                current[EventType.DOOR_OPEN] = alarm(EventType.DOOR_OPEN, Severity.CRITICAL, "service door opened")
            if with_hysteresis(self._tracker, "disk_full", disk, above=95.0, clear_below=90.0):
                current[EventType.DISK_FULL] = alarm(EventType.DISK_FULL, Severity.MAJOR, f"disk at {disk:.0f}%", disk)
            for name in _FORCED_ONLY:
                if self._faulted(name, t_s):
                    current[name] = alarm(name, EVENT_TYPES[name].severity, f"{name} (forced)")
            events = self._tracker.update(current)
        return Sample(metrics, events)

    def close(self) -> None:
        """Nothing to release."""


register_driver("sim_kiosk", SimKioskConfig, SimKioskDriver, "simulated self-service kiosk")
