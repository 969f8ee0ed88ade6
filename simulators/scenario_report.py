"""What a scenario run produced (:class:`RunReport`, one :class:`Check` per assertion), its live progress
(rich, on stderr) and its end-of-run summary."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from simulators.scenario import Scenario

#: progress callback: (fraction done, what is happening)
ProgressFn = Callable[[float, str], None]


@dataclass(slots=True)
class Check:
    """One assertion's outcome."""

    at: str
    what: str
    ok: bool
    detail: str


@dataclass(slots=True)
class RunReport:
    """What a run produced."""

    scenario: str
    seed: int
    speed: float
    devices: int
    elapsed_s: float = 0.0
    messages: int = 0
    incidents: list[dict[str, Any]] = field(default_factory=list)
    cases: list[dict[str, Any]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    losses: list[dict[str, Any]] = field(default_factory=list)
    store: str = "embedded"
    #: influxdb-v1: distinct points stored at the end, and delivered points not stored (None: not counted)
    stored_points: int | None = None
    missing_points: int | None = None

    @property
    def ok(self) -> bool:
        """Every assertion held."""
        return all(c.ok for c in self.checks)

    def canonical(self) -> dict[str, Any]:
        """What must be equal for the same seed: incident rules per device, cases per grid/category/state."""
        incidents = Counter(f"{i['rule_id']}@{i['device_id'] or i['grid']}" for i in self.incidents)
        cases = Counter(f"{c['grid']}/{c['category']}/{c['state']}" for c in self.cases)
        return {"incidents": dict(sorted(incidents.items())), "cases": dict(sorted(cases.items()))}


@contextmanager
def progress_display(scenario: Scenario, *, enabled: bool = True) -> Iterator[ProgressFn | None]:
    """A progress callback drawing a bar over scenario time on stderr (None when disabled)."""
    if not enabled:
        yield None
        return
    console = Console(stderr=True)
    columns = (
        TextColumn("[bold]{task.fields[name]}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[label]}"),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("scenario", total=1.0, name=scenario.name, label="starting hub and agents")

        def update(fraction: float, label: str) -> None:
            bar.update(task, completed=fraction, label=label)

        yield update


def print_report(report: RunReport, console: Console | None = None) -> None:
    """Summary tables: what happened and whether each assertion held."""
    console = console or Console()
    head = Table(title=f"scenario {report.scenario} (seed {report.seed}, speed {report.speed:g})")
    for col in ("devices", "messages", "incidents", "cases", "assertions", "elapsed"):
        head.add_column(col, justify="right")
    passed = sum(c.ok for c in report.checks)
    head.add_row(
        str(report.devices),
        str(report.messages),
        str(len(report.incidents)),
        str(len(report.cases)),
        f"{passed}/{len(report.checks)} passed",
        f"{report.elapsed_s:.1f}s",
    )
    console.print(head)
    if report.stored_points is not None:
        missing = "not counted" if report.missing_points is None else str(report.missing_points)
        console.print(
            f"series store {report.store}: {report.stored_points} points stored, {missing} delivered points missing"
        )
    if report.incidents:
        inc = Table(title="incidents by rule")
        inc.add_column("rule")
        inc.add_column("count", justify="right")
        for rule, n in sorted(Counter(i["rule_id"] for i in report.incidents).items()):
            inc.add_row(rule, str(n))
        console.print(inc)
    if report.cases:
        cases = Table(title="cases")
        for col in ("grid", "category", "state", "escalated", "rework"):
            cases.add_column(col)
        for case in sorted(report.cases, key=lambda c: c["id"]):
            cases.add_row(
                case["grid"] or "-",
                case["category"],
                case["state"],
                case["escalated_to"] if case["escalation_level"] else "-",
                str(case["rework_count"]),
            )
        console.print(cases)
    checks = Table(title="assertions")
    for col in ("at", "assertion", "result", "detail"):
        checks.add_column(col)
    for c in report.checks:
        checks.add_row(c.at, c.what, "[green]pass[/]" if c.ok else "[red]FAIL[/]", c.detail)
    console.print(checks)


def report_json(report: RunReport) -> str:
    """The report as one JSON object."""
    return json.dumps(
        {
            "scenario": report.scenario,
            "seed": report.seed,
            "speed": report.speed,
            "ok": report.ok,
            "devices": report.devices,
            "messages": report.messages,
            "elapsed_s": round(report.elapsed_s, 2),
            "store": report.store,
            "stored_points": report.stored_points,
            "missing_points": report.missing_points,
            "incidents": len(report.incidents),
            "cases": len(report.cases),
            "canonical": report.canonical(),
            "checks": [asdict(c) for c in report.checks],
            "steps": report.steps,
        }
    )
