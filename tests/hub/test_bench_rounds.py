"""The tuned Node-RED flow's shape and the median of alternating rounds (no servers needed)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from simulators.bench import ingest as bench_ingest
from simulators.bench.ingest import _median_of
from simulators.bench.nodered import JOIN_COUNT, JOIN_TIMEOUT_S, flows, logged_errors


def test_node_red_flow_batches_with_a_join_before_influx_batch() -> None:
    flow = {node["id"]: node for node in flows("mqtt://127.0.0.1:1883", "http://127.0.0.1:8086", "unknown", 1)}
    path, node = [], flow["in"]
    while node["type"] != "influxdb batch":
        path.append(node["type"])
        node = flow[node["wires"][0][0]]
    assert path == ["mqtt in", "function", "join", "function"]
    join = next(n for n in flow.values() if n["type"] == "join")
    assert (join["mode"], join["build"], join["count"], join["timeout"]) == (
        "custom",
        "array",
        str(JOIN_COUNT),
        str(JOIN_TIMEOUT_S),
    )
    assert (JOIN_COUNT, JOIN_TIMEOUT_S) == (1000, 1)
    assert flow["in"]["qos"] == "1" and flow["broker"]["cleansession"] is False
    # Node-RED 4.1 would not start the flow with the join node's id "join" ("Circular config node dependency
    # detected: join") and then drained nothing, silently: keep the id apart from the type
    assert "join" not in flow


def test_median_round_is_a_real_round() -> None:
    rounds: list[dict[str, Any]] = [{"msgs_per_s": v, "n": i} for i, v in enumerate([30.0, 10.0, 20.0])]
    assert _median_of(rounds, "msgs_per_s")["n"] == 2
    assert _median_of(rounds[:2], "msgs_per_s")["n"] == 1  # the lower of two: never flatters


def test_a_flow_node_red_could_not_start_is_reported(tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    log.write_text(
        "5 Dec 12:34:52 - [info] Starting flows\n"
        "Error: Circular config node dependency detected: join\n"
        "    at Flow.start (Flow.js:227:43)\n"
        "5 Dec 12:34:52 - [info] Started flows\n"
    )
    assert logged_errors(log) == ["Error: Circular config node dependency detected: join"]


def test_rounds_alternate_the_drain_and_the_store_alone_and_compare_medians(monkeypatch: pytest.MonkeyPatch) -> None:
    """The store-alone ceiling is measured once per round between the drains, not once after them all: a
    store compacting the drains' data, or a busy machine, then weighs on both sides of the ratio alike."""
    order: list[str] = []
    drains = iter([100.0, 300.0, 200.0])
    alones = iter([250.0, 400.0, 150.0])

    def drain(_a: object, _s: object, _w: object, r: int) -> dict[str, object]:
        order.append(f"drain{r}")
        pps = next(drains)
        return {"msgs_per_s": pps / 10, "points_per_s": pps, "lost": 0}

    def alone(_a: object, _s: object, _w: object, r: int) -> dict[str, object]:
        order.append(f"alone{r}")
        return {"points_per_s": next(alones), "lost": 0}

    monkeypatch.setattr(bench_ingest, "run_drain", drain)
    monkeypatch.setattr(bench_ingest, "run_store_ceiling", alone)
    result: dict[str, object] = {}
    parser = argparse.ArgumentParser()
    bench_ingest.configure(parser)
    args = parser.parse_args(["--rounds", "3", "--skip", "node-red"])
    bench_ingest.run_rounds(args, object(), Path("."), result)  # type: ignore[arg-type]
    assert order == ["drain0", "alone0", "drain1", "alone1", "drain2", "alone2"]
    assert result["points_per_s"] == 200.0 and result["store_ceiling_rounds"] == [250.0, 400.0, 150.0]
    assert result["store_ceiling"] == {"points_per_s": 250.0, "lost": 0}  # the median round, not the last
    assert result["hub_over_store_alone"] == 0.8  # median over median
