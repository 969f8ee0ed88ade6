"""Every Grafana query runs against a real ``influxd`` filled by the hub and a simulated community.

The module fixture starts influxd, a hub writing to it (``influxdb-v1``), and one
real edge agent per simulated device (a camera, a kiosk and one sensor of every
profile in each of two grids), forces alarms so incidents open, close and become
cases, stops one agent (offline), keeps one device silent (stale), then writes
the open-case counts and a case evaluation as the hub's own tasks do. Each panel
query, the grid variable and the incident annotations are then run the way
Grafana runs them (``$timeFilter``, ``$__interval`` and ``$grid`` expanded) and
must return at least one non-null value.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.agent import Agent
from edge.wire import Channel, DeviceKind, DeviceState, Status, encode, topic
from hub.cases.evaluation import run_evaluation
from hub.config import HubSettings
from hub.context import need
from hub.service import Hub
from simulators.community import generate_community, write_community
from simulators.community_workflow import write_workflow
from simulators.demo import agent_configs
from simulators.drivers import find_sim
from simulators.servers import Influxd, wait_until

pytestmark = pytest.mark.integration

JSON_DIR = Path(__file__).parents[2] / "dashboards" / "json"
DB = "gridsentinel"
TIME_FILTER = "time > now() - 1h"
#: What Grafana makes of $__interval for a 1 h range on a panel about 700 px wide.
DEFAULT_INTERVAL = "5s"
SENSOR_PROFILES = ("env", "smoke", "water", "manhole", "charger", "hydrant", "bin", "gas")
#: (device, trigger) pairs forced on, and the ones released again so their incidents close.
TRIGGERS = (("smoke-001-01", "smoke"), ("kiosk-001-01", "paper_out"), ("water-002-01", "water_leak"))
RELEASED = (("kiosk-001-01", "paper_out"), ("water-002-01", "water_leak"))
OFFLINE_DEVICE = "bin-002-01"
SILENT_DEVICE = "silent-001"


def load_dashboards() -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(JSON_DIR.glob("*.json"))]


@dataclass(frozen=True)
class Target:
    """One panel query of one dashboard."""

    dashboard: str
    panel: str
    query: str
    alias: str
    interval: str


def targets() -> list[Target]:
    out = []
    for dash in load_dashboards():
        for panel in dash["panels"]:
            for t in panel["targets"]:
                interval = panel.get("interval", DEFAULT_INTERVAL)
                out.append(Target(dash["uid"], f"{panel['id']}:{panel['title']}", t["query"], t["alias"], interval))
    return out


@dataclass
class Filled:
    """The filled influxd and the grids the community has."""

    influxd: Influxd
    grids: list[str]


def influxql(server: Influxd, query: str) -> dict[str, Any]:
    """GET /query as Grafana's proxy sends it; the one statement's result (raises on an error)."""
    params = urllib.parse.urlencode({"db": DB, "q": query, "epoch": "ms"})
    with urllib.request.urlopen(f"{server.url}/query?{params}", timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
    result: dict[str, Any] = body["results"][0]
    assert "error" not in result, f"{query}\n-> {result['error']}"
    return result


def count(server: Influxd, query: str) -> int:
    series = influxql(server, query).get("series") or []
    return int(series[0]["values"][0][1]) if series else 0


def expand(query: str, grid: str, interval: str = DEFAULT_INTERVAL) -> str:
    """Grafana's macros and the grid variable (a regex value, as Grafana formats it for InfluxQL)."""
    return query.replace("$timeFilter", TIME_FILTER).replace("$__interval", interval).replace("$grid", grid)


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Filled]:
    work = tmp_path_factory.mktemp("dash")
    server = Influxd(work / "influxd")
    server.start()
    server.create_db(DB)
    mix = dict.fromkeys(("camera", "kiosk", *SENSOR_PROFILES), 1.0)
    community = generate_community(2, seed=7, mix_per_grid=mix, interval_s=1.0)
    grids = [g.code for g in community.grids]
    data = work / "hub"
    write_community(data / "community.yaml", community)
    write_workflow(data / "cases.yaml", community)
    settings = HubSettings(
        broker_port=0,
        http_port=0,
        data_dir=data,
        demo=True,
        default_interval_s=1.0,
        series_backend="influxdb-v1",
        series_url=server.url,
        series_db=DB,
        series_flush_interval_s=0.5,
    )
    hub = Hub(settings)
    agents: list[Agent] = []
    silent = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=SILENT_DEVICE)
    try:
        hub.start()
        assert hub.registry is not None and hub.ctx is not None
        registry, services = hub.registry, hub.ctx.services
        agents = [Agent(c) for c in agent_configs(community, f"mqtt://127.0.0.1:{hub.mqtt_port}", data / "outbox")]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda a: a.start(), agents))
        # A device that says hello once and then nothing: it turns stale.
        silent.connect("127.0.0.1", hub.mqtt_port)
        silent.loop_start()
        hello = Status(
            DeviceState.ONLINE, 1, int(time.time() * 1000), kind=DeviceKind.SENSOR, grid=grids[0], interval_s=1.0
        )
        silent.publish(topic(community.site, SILENT_DEVICE, Channel.STATUS), encode(hello), qos=1).wait_for_publish(5)

        def state(device: str) -> str | None:
            public = registry.get_public(device)
            return None if public is None else str(public["state"])

        ids = [e["device"]["id"] for e in community.devices]
        wait_until(lambda: all(state(d) == "online" for d in ids), 20, 0.1, "every device online")
        for device, trigger in TRIGGERS:
            find_sim(device).trigger(trigger)
        cases = need(services.cases, "cases")
        wait_until(lambda: len(cases.list_cases()) >= len(TRIGGERS), 20, 0.1, "a case per forced alarm")
        for device, trigger in RELEASED:
            find_sim(device).release(trigger)
        offline = next(a for a in agents if a.config.device.id == OFFLINE_DEVICE)
        offline.stop(timeout=3)
        agents.remove(offline)
        wait_until(lambda: state(OFFLINE_DEVICE) == "offline", 10, 0.1, "the stopped agent offline")
        wait_until(lambda: state(SILENT_DEVICE) == "stale", 25, 0.1, "the silent device stale")
        closed = 'SELECT count("repeats") FROM "incident" WHERE "state_code" = 0'
        wait_until(lambda: count(server, closed) >= len(RELEASED), 20, 0.2, "closed incidents in influxd")
        # What the hub's case tasks do every 30 s and on GET /api/v1/evaluation, done now.
        assert need(services.case_stats, "case_stats").write() > 0
        run_evaluation(cases, "grid")
        assert hub.writer.flush(15), "series writer did not flush"
        yield Filled(server, grids)
    finally:
        silent.loop_stop()
        silent.disconnect()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda a: a.stop(timeout=3), agents))
        hub.stop()
        server.stop()


def non_null_values(result: dict[str, Any]) -> int:
    return sum(1 for series in result.get("series") or [] for row in series["values"] for v in row[1:] if v is not None)


@pytest.mark.parametrize("target", targets(), ids=lambda t: f"{t.dashboard}/{t.panel}")
def test_panel_query_returns_data(filled: Filled, target: Target) -> None:
    result = influxql(filled.influxd, expand(target.query, ".*", target.interval))
    assert non_null_values(result), f"no data for {target.query}"
    for tag in re.findall(r"\$tag_(\w+)", target.alias):
        for series in result["series"]:
            assert tag in (series.get("tags") or {}), f"alias {target.alias} names tag {tag} the query does not return"
    # One grid picked in the variable: the query must still be valid InfluxQL.
    influxql(filled.influxd, expand(target.query, re.escape(filled.grids[0]), target.interval))


def test_grid_variable_lists_the_grids(filled: Filled) -> None:
    for dash in load_dashboards():
        for variable in dash["templating"]["list"]:
            result = influxql(filled.influxd, variable["query"])
            values = {row[1] for series in result.get("series") or [] for row in series["values"]}
            assert values == set(filled.grids), dash["uid"]


def test_incident_annotations_return_incidents(filled: Filled) -> None:
    for dash in load_dashboards():
        for annotation in dash["annotations"]["list"]:
            result = influxql(filled.influxd, expand(annotation["query"], ".*"))
            assert result.get("series"), dash["uid"]
            columns = result["series"][0]["columns"]
            for key in ("textColumn", "tagsColumn"):
                for column in annotation[key].split(","):
                    assert column in columns, f"{dash['uid']}: annotation {key} {column} not in {columns}"


def test_device_states_seen(filled: Filled) -> None:
    """The fill reached every state the health panels count (so their queries prove something)."""
    for value in (0, 1, 2):
        assert count(filled.influxd, f'SELECT count("state_code") FROM "device_status" WHERE "state_code" = {value}')
