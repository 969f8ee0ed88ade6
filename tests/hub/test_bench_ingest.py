"""``gridsentinel bench ingest``: quick runs on real mosquitto with the embedded store and real influxd."""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from hub.series.base import SeriesPoint, SeriesRow
from simulators.bench import ingest as bench_ingest
from simulators.bench.ingest_setup import MEASUREMENT, AckTimingStore
from simulators.bench.ingest_table import print_table, table_rows
from simulators.bench.nodered import logged_errors
from tests.servers import require_binary

KEYS = ("msgs_per_s", "points_per_s", "sustained_msgs_per_s", "lag_p50_s", "lag_p99_s", "lost")


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench_ingest.configure(parser)
    return parser.parse_args(list(argv))


class _ListStore:
    """A stand-in store that keeps what it was given (pure logic of the probe only)."""

    name = "list"
    prefers_lines = True

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.points: list[SeriesPoint] = []

    def write(self, points: Sequence[SeriesPoint]) -> None:
        self.points.extend(points)

    def write_lines(self, lines: Sequence[str]) -> None:
        self.lines.extend(lines)

    def query(self, **_kw: object) -> list[SeriesRow]:
        return []

    def count(self, measurement: str, *, device: str | None = None, site: str | None = None) -> int:
        return sum(1 for line in self.lines if line.startswith(measurement + ","))

    def close(self) -> None:
        pass


def test_probe_counts_only_bench_points_and_their_lag() -> None:
    inner = _ListStore()
    probe = AckTimingStore(inner, track_lag=True)
    now_ms = 1_800_000_000_000
    probe.write_lines([f"{MEASUREMENT},device=a m0=1.0 {now_ms}", f"device_status,device=a state_code=2 {now_ms}"])
    probe.write([SeriesPoint(MEASUREMENT, {"device": "b"}, {"m0": 1.0}, now_ms), SeriesPoint("x", {}, {"v": 1}, 1)])
    assert probe.acked == 2
    assert len(probe.lags_ms) == 2 and probe.last_ack >= probe.first_ack > 0
    assert len(inner.lines) == 2 and len(inner.points) == 2  # everything is written through


def test_probe_counts_nothing_when_the_store_fails() -> None:
    class Failing(_ListStore):
        def write_lines(self, lines: Sequence[str]) -> None:
            raise RuntimeError("down")

    probe = AckTimingStore(Failing(), track_lag=False)
    with pytest.raises(RuntimeError):
        probe.write_lines([f"{MEASUREMENT},device=a m0=1.0 1"])
    assert probe.acked == 0


def test_table_marks_targets_only_where_they_apply() -> None:
    drain = {"msgs_per_s": 30_000.0, "points_per_s": 30_000.0, "messages": 10, "stored_points": 10, "points": 10}
    result = {"store": "influxdb-v1", "qos": 1, "batch": 1, "drain": {**drain, "lost": 0, "startup_s": 0.5}}
    rows = {r[0]: r for r in table_rows(result)}
    assert rows["drain msgs/s"][3] == "yes"
    assert rows["drain points/s"][3] == "-"  # the points target is for 10-point messages
    embedded = {**result, "store": "embedded"}
    assert {r[0]: r for r in table_rows(embedded)}["drain msgs/s"][3] == "-"  # targets are for a real server


def _check(result: dict[str, object], messages: int, batch: int = 1) -> None:
    for key in KEYS:
        assert key in result, key
    assert result["lost"] == 0
    drain = result["drain"]
    assert isinstance(drain, dict)
    assert drain["messages"] == messages and drain["stored_points"] == drain["points"] == messages * batch
    assert drain["received"] == messages and drain["duplicates"] == 0
    live = result["sustained"]
    assert isinstance(live, dict)
    assert live["connections"] == 20 and live["stored_points"] == live["points"] == batch * live["messages"] > 0
    assert 0 <= float(live["lag_p50_s"]) <= float(live["lag_p99_s"])
    assert math.isfinite(float(result["msgs_per_s"]))  # type: ignore[arg-type]


@pytest.mark.integration
def test_quick_run_embedded_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    require_binary("mosquitto", "mosquitto")
    args = _args("--quick", "--json", "--store", "embedded", "--skip", "compare", "--metrics", "2")
    assert args.func(args) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert "administrator token" not in err  # the throwaway hubs' once-only banner and its log line stay out
    assert "GRIDSENTINEL_ADMIN_TOKEN" not in os.environ
    assert result["store"] == "embedded" and result["metrics"] == 2
    _check(result, 2_000)
    alone = result["store_ceiling"]
    assert alone["points"] == alone["stored_points"] == 2_000 and alone["lost"] == 0
    assert alone["fields_per_point"] == 2
    assert alone["server_cpu_us_per_point"] is None  # the embedded store runs in the bench's own process
    assert result["store_ceiling_rounds"] == [alone["points_per_s"]]  # --quick: one round
    assert result["hub_over_store_alone"] == round(float(result["points_per_s"]) / alone["points_per_s"], 3)


@pytest.mark.integration
def test_quick_run_influxd_with_comparator(capsys: pytest.CaptureFixture[str]) -> None:
    require_binary("mosquitto", "mosquitto")
    require_binary("influxd", "influxdb")
    require_binary("victoria-metrics", "victoria-metrics")
    args = _args("--quick", "--json", "--store", "influxdb-v1", "--batch", "3", "--messages", "1000")
    args.skip.append("node-red")  # measured in its own test below
    assert args.func(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["store"] == "influxdb-v1" and result["batch"] == 3
    _check(result, 1_000, batch=3)
    assert result["metrics"] == 4
    cmp = result["comparator"]
    assert cmp["messages"] == 1_000 and cmp["received"] == 1_000
    assert cmp["stored_points"] + cmp["lost"] == 3_000  # the comparator's loss is counted, not assumed
    alone = result["store_ceiling"]  # the same lines by a bare writer, counted in their own database
    assert alone["points"] == alone["stored_points"] == 3_000 and alone["lost"] == 0
    assert alone["fields_per_point"] == 4 and alone["server_cpu_us_per_point"] > 0
    print_table(result)
    table = capsys.readouterr().out
    assert "influxd" in table and "drain lost" in table and "comparator drain msgs/s" in table
    assert "store alone points/s" in table and "store cores needed at 200,000 points/s" in table


@pytest.mark.integration
def test_node_red_comparator_drains_into_the_same_influxd(capsys: pytest.CaptureFixture[str]) -> None:
    """Node-RED (installed by the bench with npm on first use) drains the same kind of backlog into the
    bench's influxd; its points are counted there, and the table shows it beside the hub."""
    require_binary("mosquitto", "mosquitto")
    require_binary("influxd", "influxdb")
    require_binary("node", "nodejs")
    require_binary("npm", "npm")
    args = _args("--quick", "--json", "--store", "influxdb-v1", "--batch", "2", "--compare-messages", "500")
    args.skip += ["sustained", "compare"]
    assert args.func(args) == 0
    result = json.loads(capsys.readouterr().out)
    red = result["comparator_node_red"]
    assert "skipped" not in red, red
    assert red["messages"] == 500 and red["points"] == 1_000
    assert red["stored_points"] == 1_000 and red["lost"] == 0 and red["msgs_per_s"] > 0
    assert red["errors_logged"] == 0 and "first_error" not in red
    assert result["drain"]["stored_points"] == 4_000  # the hub's own database is not touched by it
    print_table(result)
    assert "comparator drain msgs/s (Node-RED, 500 msgs)" in capsys.readouterr().out


def test_bad_options_are_refused_before_any_server_starts(capsys: pytest.CaptureFixture[str]) -> None:
    args = _args("--batch", "0", "--store", "embedded")
    assert args.func(args) == 2
    assert "--batch must be 1..1000" in capsys.readouterr().err
    args = _args("--connections", "0", "--store", "embedded")
    assert args.func(args) == 2
    assert "--connections must be >= 1" in capsys.readouterr().err
    args = _args("--metrics", "0", "--store", "embedded")
    assert args.func(args) == 2
    assert "--metrics must be 1..128" in capsys.readouterr().err


def test_node_red_errors_are_read_from_its_log(tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    log.write_text(
        "30 Nov 20:22:46 - [info] Started flows\n"
        "30 Nov 20:23:01 - [error] [influxdb batch:write] Error: ESOCKETTIMEDOUT\n"
        "30 Nov 20:23:02 - [warn] something else\n"
        "30 Nov 20:23:03 - [error] [influxdb batch:write] Error: ECONNRESET\n"
    )
    assert logged_errors(log) == [
        "[error] [influxdb batch:write] Error: ESOCKETTIMEDOUT",
        "[error] [influxdb batch:write] Error: ECONNRESET",
    ]
    assert logged_errors(tmp_path / "missing.log") == []
