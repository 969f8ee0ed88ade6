"""Judging a scenario's expectations: the hub's REST API and ``/metrics``, and the series store against
what every device delivered.

:class:`Expectations` answers each :class:`~simulators.scenario.Expectation` with a
:class:`~simulators.scenario_report.Check`; ``series_missing`` compares the broker-acknowledged telemetry
each agent keeps in its SQLite outbox with the timestamps stored in influxd. ``hub_up`` is the runner's
own (it watches the hub process and its health probes).
"""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from edge import wire
from simulators.community import Community
from simulators.scenario import Expectation
from simulators.scenario_report import Check, RunReport
from simulators.servers import Influxd, ServerError

logger = logging.getLogger(__name__)
#: ``series_missing`` ignores telemetry acknowledged by the broker less than this long ago (still in flight).
IN_FLIGHT_GRACE_MS = 3000


class Expectations:
    """The checks of one running scenario, against its hub (``api``) and series store (``store``)."""

    def __init__(
        self,
        api: httpx.Client,
        community: Community,
        grid_code: Callable[[str], str],
        *,
        store: Influxd | None = None,
        outboxes: Path | None = None,
        clocks: Mapping[str, Callable[[], float]] | None = None,
    ) -> None:
        self.api = api
        self.community = community
        self.grid_code = grid_code
        self._store = store
        self.outboxes = outboxes or Path()
        self.clocks = clocks or {}

    @property
    def store(self) -> Influxd:
        """The series store the scenario runs (``store: influxdb-v1``)."""
        if self._store is None:
            raise ServerError("this scenario runs no series store (store: influxdb-v1)")
        return self._store

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path`` from the hub's API as JSON; raises on an HTTP error."""
        r = self.api.get(path, params=params)
        r.raise_for_status()
        return r.json()

    def check(self, e: Expectation, at: str) -> Check:
        """``e``'s outcome now; an unreachable hub or store is a failed check that says so."""
        try:
            return self._judge(e, at)
        except httpx.HTTPError as exc:
            return Check(at, e.kind, False, f"hub API: {exc}")
        except ServerError as exc:
            return Check(at, e.kind, False, f"series store: {exc}")

    def _judge(self, e: Expectation, at: str) -> Check:
        if e.incidents is not None:
            q = e.incidents
            params = {"rule": q.rule, "device": q.device, "category": q.category, "state": q.state}
            if q.grid:
                params["grid"] = self.grid_code(q.grid)
            found = self.get("/api/v1/incidents", limit=1000, **{k: v for k, v in params.items() if v})
            label = "incidents " + " ".join(f"{k}={v}" for k, v in params.items() if v)
            return Check(at, f"{label} {q.text()}", q.holds(len(found)), f"{len(found)} found")
        if e.cases is not None:
            c = e.cases
            cases = self.get("/api/v1/cases", limit=1000)
            grid = self.grid_code(c.grid) if c.grid else None
            match = [
                x
                for x in cases
                if (c.category is None or x["category"] == c.category)
                and (grid is None or x["grid"] == grid)
                and (c.state is None or x["state"] == c.state)
                and (c.escalated is None or (x["escalation_level"] > 0) == c.escalated)
                and (c.min_rework is None or x["rework_count"] >= c.min_rework)
            ]
            label = "cases " + " ".join(
                f"{k}={v}" for k, v in c.model_dump(exclude={"count", "min", "max"}).items() if v is not None
            )
            states = Counter(x["state"] for x in match)
            return Check(at, f"{label} {c.text()}", c.holds(len(match)), f"{len(match)} found {dict(states)}")
        if e.devices is not None:
            d = e.devices
            devices = self.get("/api/v1/devices")
            grid = self.grid_code(d.grid) if d.grid else None
            match = [
                x
                for x in devices
                if x["state"] == d.state
                and (d.device is None or x["id"] == d.device)
                and (grid is None or x["grid"] == grid)
            ]
            where = d.device or (f"grid {d.grid}" if d.grid else "all")
            return Check(at, f"devices {where} {d.state} {d.text()}", d.holds(len(match)), f"{len(match)} found")
        if e.deadletters is not None:
            total = int(self.get("/api/v1/deadletters", limit=1)["total"])
            return Check(at, f"dead letters {e.deadletters.text()}", e.deadletters.holds(total), f"{total} stored")
        if e.data_loss is not None:
            loss = e.data_loss
            page = self.get("/api/v1/gaps", limit=1000)
            lost = sum(int(item["count"]) for item in page["items"] if loss.device in (None, item["device_id"]))
            # a gap still open may yet be filled or become a loss: the count is only final once none is open
            still_open = sum(1 for g in page["open"] if loss.device in (None, g["device_id"]))
            where = f" of {loss.device}" if loss.device else ""
            ok = loss.holds(lost) and still_open == 0
            return Check(at, f"data loss{where} {loss.text()}", ok, f"{lost} seqs lost, {still_open} gaps open")
        if e.series_points is not None:
            sp = e.series_points
            times = self.store.point_times(sp.device, sp.measurement)
            n = sum(len(t) for t in times.values())
            where = " ".join(f"{k}={v}" for k, v in (("device", sp.device), ("measurement", sp.measurement)) if v)
            return Check(at, f"series points {where} {sp.text()}".replace("  ", " "), sp.holds(n), f"{n} stored")
        if e.series_missing is not None:
            m = e.series_missing
            delivered, stored, missing = self.series_missing(m.device)
            where = f" of {m.device}" if m.device else ""
            detail = f"{delivered} delivered, {stored} of them stored, {len(missing)} missing"
            if missing:
                detail += " (first: " + ", ".join(f"{d} seq {seq}" for d, seq in missing[:3]) + ")"
            return Check(at, f"series missing{where} {m.text()}", m.holds(len(missing)), detail)
        if e.alerts is not None:
            a = e.alerts
            n = self.alerts().get(a.kind, 0)
            return Check(at, f"hub alerts {a.kind} {a.text()}", a.holds(n), f"{n} since the hub started")
        devices = self.get("/api/v1/devices")
        online = sum(1 for x in devices if x["state"] == "online")
        want = len(self.community.devices)
        return Check(at, "all devices online", online == want, f"{online}/{want} online")

    def alerts(self) -> dict[str, int]:
        """``gs_alerts_total`` by kind from the hub's ``/metrics``."""
        r = self.api.get("/metrics")
        r.raise_for_status()
        counts: dict[str, int] = {}
        for family in text_string_to_metric_families(r.text):
            for sample in family.samples:
                if sample.name == "gs_alerts_total":
                    counts[sample.labels["kind"]] = int(sample.value)
        return counts

    def delivered(self, device: str) -> dict[int, int]:
        """Point timestamp (ms) -> seq of every telemetry point ``device`` delivered at least
        IN_FLIGHT_GRACE_MS ago: the broker-acknowledged items its SQLite outbox keeps for replay."""
        path = self.outboxes / f"{device}.db"
        cutoff = int(self.clocks[device]() * 1000) - IN_FLIGHT_GRACE_MS
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
        try:
            rows = db.execute(
                "SELECT seq, payload FROM items WHERE channel = ? AND sent_ms IS NOT NULL AND sent_ms <= ?",
                (wire.Channel.TELEMETRY.value, cutoff),
            ).fetchall()
        finally:
            db.close()
        points: dict[int, int] = {}
        for seq, payload in rows:
            msg = wire.decode(wire.Channel.TELEMETRY, bytes(payload))
            assert isinstance(msg, wire.Telemetry)
            for point in msg.points:
                points[point.ts] = int(seq)
        return points

    def series_missing(self, device: str | None) -> tuple[int, int, list[tuple[str, int]]]:
        """(points delivered, of them stored, [(device, seq) of each missing one]) over one or every device."""
        ids = [device] if device else [d["device"]["id"] for d in self.community.devices]
        stored_times = self.store.point_times(device)
        delivered = stored = 0
        missing: list[tuple[str, int]] = []
        for device_id in ids:
            sent = self.delivered(device_id)
            have = stored_times.get(device_id, set())
            lost = missing_points(sent, have)
            delivered += len(sent)
            stored += len(sent) - len(lost)
            missing += [(device_id, seq) for seq in lost]
        return delivered, stored, missing

    def count_series(self, report: RunReport) -> None:
        try:
            report.stored_points = sum(len(t) for t in self.store.point_times().values())
            report.missing_points = len(self.series_missing(None)[2])
        except (ServerError, sqlite3.Error) as exc:
            logger.warning("could not count the stored series: %s", exc)


def missing_points(delivered: dict[int, int], stored: set[int]) -> list[int]:
    """The seq of each delivered point (timestamp -> seq) whose timestamp is not stored, in order."""
    return sorted(seq for ts, seq in delivered.items() if ts not in stored)
