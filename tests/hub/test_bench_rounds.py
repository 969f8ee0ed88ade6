"""The tuned Node-RED flow's shape and the median of alternating rounds (no servers needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulators.bench.ingest import _median_round
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
    assert _median_round(rounds)["n"] == 2
    assert _median_round(rounds[:2])["n"] == 1  # the lower of two: never flatters


def test_a_flow_node_red_could_not_start_is_reported(tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    log.write_text(
        "5 Dec 12:34:52 - [info] Starting flows\n"
        "Error: Circular config node dependency detected: join\n"
        "    at Flow.start (Flow.js:227:43)\n"
        "5 Dec 12:34:52 - [info] Started flows\n"
    )
    assert logged_errors(log) == ["Error: Circular config node dependency detected: join"]
