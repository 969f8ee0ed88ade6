"""The table ``gridsentinel bench ingest`` prints: each figure beside its target, and the store's ceiling."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any, Final

#: Targets from the issue (2-core machine, QoS 1, a real InfluxDB-API server).
TARGET_DRAIN_MSGS_S: Final = 25_000.0  # single-point messages
TARGET_DRAIN_POINTS_S: Final = 200_000.0  # 10-point messages
TARGET_SUSTAINED_MSGS_S: Final = 10_000.0
TARGET_LAG_P99_S: Final = 1.0


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else (f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3f}")
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table_rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(what, target, measured, met) rows for the table."""
    rows: list[tuple[str, str, str, str]] = []
    real = result["store"] != "embedded" and result["qos"] == 1

    def row(name: str, target: str, value: Any, ok: bool | None) -> None:
        rows.append((name, target, _fmt(value), "-" if ok is None else ("yes" if ok else "NO")))

    if "drain" in result:
        d = result["drain"]
        one, ten = result["batch"] == 1 and real, result["batch"] == 10 and real
        row(
            "drain msgs/s",
            ">= 25,000 (1 pt/msg)" if one else "",
            d["msgs_per_s"],
            d["msgs_per_s"] >= TARGET_DRAIN_MSGS_S if one else None,
        )
        row(
            "drain points/s",
            ">= 200,000 (10 pt/msg)" if ten else "",
            d["points_per_s"],
            d["points_per_s"] >= TARGET_DRAIN_POINTS_S if ten else None,
        )
        rounds = result.get("drain_rounds", [d])
        if len(rounds) > 1:
            row(f"drain msgs/s of the {len(rounds)} rounds", "", " ".join(_fmt(r["msgs_per_s"]) for r in rounds), None)
        row("drain messages", "", d["messages"], None)
        row("drain stored points", "= published", d["stored_points"], d["stored_points"] == d["points"])
        row("drain lost (all rounds)", "0", sum(r["lost"] for r in rounds), all(r["lost"] == 0 for r in rounds))
        row("hub start-up (not timed)", "", d["startup_s"], None)
        _cpu_row(row, "drain CPU-us per msg: hub / broker / store", d.get("cpu_us_per_msg"))
    if "store_ceiling" in result:
        c = result["store_ceiling"]
        row("store alone points/s (bare writer, no MQTT, no hub)", "", c["points_per_s"], None)
        alone = result.get("store_ceiling_rounds", [])
        if len(alone) > 1:
            row(f"store alone points/s of the {len(alone)} rounds", "", " ".join(_fmt(v) for v in alone), None)
        if c.get("server_cpu_us_per_point") is not None:
            row("store CPU-us per point", "", c["server_cpu_us_per_point"], None)
            row("store cores needed at 200,000 points/s", "", c["cores_for_200k_points_s"], None)
        row("store alone lost", "0", c["lost"], c["lost"] == 0)
        ratio = result.get("hub_over_store_alone")
        if ratio is not None:
            ten = result["batch"] == 10 and real
            row(
                "hub drain / store alone points/s (medians)",
                ">= 0.8 (10 pt/msg)" if ten else "",
                ratio,
                ratio >= 0.8 if ten else None,
            )
    if "soak" in result:
        k = result["soak"]
        growth = k["soak_rss_growth_pct"]
        row(
            f"soak: hub RSS MiB at start / end ({k['seconds']:,.0f} s)",
            "",
            f"{k['rss_start_mib']} / {k['rss_end_mib']}",
            None,
        )
        row(
            f"soak: hub RSS growth % from minute {k['rss_baseline_minute']} to the end",
            "< 10",
            "-" if growth is None else growth,
            None if growth is None else growth < 10.0,
        )
        row("soak: hub RSS MiB each minute", "", " ".join(f"{mib}" for _m, mib in k["rss_mib"]), None)
        row("soak: hub CPU-us per message", "", k["hub_cpu_us_per_msg"], None)
        row(
            "soak lag p99 s",
            "< 1",
            k["lag_p99_s"],
            None if k["lag_p99_s"] is None else k["lag_p99_s"] < TARGET_LAG_P99_S,
        )
        row("soak lost", "0", k["lost"], k["lost"] == 0)
    if "sustained" in result:
        s = result["sustained"]
        full = real and s["target_rate"] >= TARGET_SUSTAINED_MSGS_S and s["connections"] >= 500
        row(
            "sustained msgs/s published",
            f">= {s['target_rate']:,}",
            s["sustained_msgs_per_s"],
            s["sustained_msgs_per_s"] >= 0.97 * s["target_rate"],
        )
        row("sustained msgs/s stored (end to end)", "", s["stored_msgs_per_s"], None)
        row(
            "sustained connections",
            ">= 500" if full else "",
            s["connections"],
            s["connections"] >= 500 if full else None,
        )
        row("lag p50 s", "", s["lag_p50_s"], None)
        row("lag p99 s", "< 1", s["lag_p99_s"], s["lag_p99_s"] < TARGET_LAG_P99_S)
        row("sustained lost", "0", s["lost"], s["lost"] == 0)
    for key in ("comparator", "comparator_node_red"):
        c = result.get(key)
        if c is None:
            continue
        if "skipped" in c:
            row(f"comparator ({c['name']})", "", "not measured", None)
            continue
        row(f"comparator drain msgs/s ({c['name']}, {c['messages']:,} msgs)", "", c["msgs_per_s"], None)
        row(f"comparator points/s ({c['name']})", "", c["points_per_s"], None)
        row(f"comparator lost ({c['name']})", "", c["lost"], None)
        peer = "Node-RED" if key == "comparator_node_red" else c["name"]
        _cpu_row(row, f"comparator CPU-us per msg: {peer} / broker / store", c.get("cpu_us_per_msg"))
    if result.get("node_red_rounds"):
        rounds = result["node_red_rounds"]
        row(f"Node-RED msgs/s of the {len(rounds)} rounds", "", " ".join(_fmt(float(v)) for v in rounds), None)
    if "hub_over_node_red" in result:
        one = result["batch"] == 1 and real
        ratio = result["hub_over_node_red"]
        row(
            "hub / Node-RED drain msgs/s (medians, same run)",
            ">= 1.5 (1 pt/msg)" if one else "",
            ratio,
            ratio >= 1.5 if one else None,
        )
    return rows


def _cpu_row(row: Callable[[str, str, Any, bool | None], None], name: str, cpu: dict[str, Any] | None) -> None:
    if cpu:
        row(
            name,
            "",
            " / ".join("-" if cpu.get(k) is None else f"{cpu[k]:.1f}" for k in ("pipeline", "broker", "store")),
            None,
        )


def print_table(result: dict[str, Any]) -> None:
    """The human-readable summary."""
    print(
        f"gridsentinel bench ingest: store {result['store']} ({result['store_server']}), QoS {result['qos']}, "
        f"{result['batch']} point(s)/message of {result['metrics']} metric(s), plug-ins {result['plugins']}"
    )
    rows = [("measure", "target", "measured", "met"), *table_rows(result)]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, r in enumerate(rows):
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}")
        if i == 0:
            print("  ".join("-" * w for w in widths))
    for key in ("comparator", "comparator_node_red"):
        c = result.get(key)
        if c is not None:
            print(f"comparator {c['name']}: {c.get('description') or c.get('skipped')}")
            if c.get("first_error"):
                print(f"comparator {c['name']}: {c['errors_logged']:,} errors logged; the first: {c['first_error']}")
    note = ceiling_note(result)
    if note:
        print(note)


def ceiling_note(result: dict[str, Any]) -> str | None:
    """What the store's own CPU per point leaves of this machine at the points target (None when the
    store's CPU was not measured, or the run is not the 10-point one the target is for)."""
    c = result.get("store_ceiling")
    if not c or c.get("cores_for_200k_points_s") is None or result["batch"] != 10:
        return None
    cores = os.cpu_count() or 1
    need = c["cores_for_200k_points_s"]
    head = (
        f"store alone: {c['server_cpu_us_per_point']} CPU-us per point of {c['fields_per_point']} fields: "
        f"{TARGET_DRAIN_POINTS_S:,.0f} points/s take {need} of this machine's {cores} cores in the store alone"
    )
    left = cores - need
    if left <= 0:
        return head + ", more than there are"
    msgs = TARGET_DRAIN_POINTS_S / result["batch"]
    return (
        f"{head}, leaving {left:.2f} cores -- {left / msgs * 1e6:.0f} CPU-us per {result['batch']}-point message at "
        f"{msgs:,.0f} msgs/s -- for the broker and the whole hub"
    )
