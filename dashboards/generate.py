"""Generate GridSentinel's Grafana dashboards and provisioning files.

Run ``python dashboards/generate.py`` after changing a panel; the JSON it writes is
committed, and a test checks that it is up to date. Building dashboards from code
keeps panel ids and uids unique, the grid layout free of overlaps, and every query
in the one dialect all InfluxDB versions answer (InfluxQL), with Grafana's
``$timeFilter`` and ``$__interval`` macros. ``tests/dashboards`` runs every query
against a real InfluxDB filled by the hub.

Series the hub writes (see docs/dashboards.md), all tagged ``site``, ``grid``, ``device``:

- ``sensor``, ``kiosk``, ``camera``: one measurement per device kind, the drivers'
  metrics as float fields (sensor fields depend on the profile: ``temp_c``, ``pm25``,
  ``smoke_obscuration``, ``leak``, ``tilt_deg``, ``battery_pct``, ``rssi_dbm``...);
- ``device_status``: ``state_code`` (0 offline, 1 stale, 2 online), written on every
  health change only;
- ``incident``: ``state_code`` (1 open, 0 closed), ``repeats``; tags also ``category``,
  ``severity``; one point per open, repeat and close;
- ``case_stats`` (tags ``grid``, ``state``): ``open``, ``yellow``, ``red`` open-case
  counts every 30 s; ``case_eval`` (tags ``by``, ``key``, ``period``): rates, each
  time the case evaluation is run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

HERE = Path(__file__).parent
DATASOURCE_UID: Final = "gridsentinel-influxql"
DATASOURCE: Final = {"type": "influxdb", "uid": DATASOURCE_UID}
GRID_FILTER: Final = '"grid" =~ /^$grid$/'
#: How far back the "current state" panels look for each device's last status change. The hub writes
#: ``device_status`` only when health changes, so these panels cannot use the dashboard range; bounded
#: so InfluxDB 3 does not scan every file of the table.
STATUS_LOOKBACK: Final = "7d"
#: Minimum interval of the case panels: ``case_stats`` is written every 30 s (hub.cases.series).
CASE_INTERVAL: Final = "1m"


@dataclass(frozen=True)
class Panel:
    """One panel: a title, its InfluxQL queries (with their legend aliases) and its size."""

    title: str
    queries: tuple[tuple[str, str], ...]
    kind: str = "timeseries"
    width: int = 12
    height: int = 8
    unit: str = "short"
    description: str = ""
    interval: str | None = None
    no_value: str | None = None


def per_device(measurement: str, field: str, fn: str = "mean") -> str:
    """``fn`` of one field per device per interval, filtered by the grid variable."""
    return (
        f'SELECT {fn}("{field}") FROM "{measurement}" WHERE $timeFilter AND {GRID_FILTER} '
        'GROUP BY time($__interval), "device" fill(none)'
    )


def field_panel(
    measurement: str, field: str, title: str, *, unit: str = "short", description: str = "", fn: str = "mean"
) -> Panel:
    """A time-series panel of one field per device."""
    return Panel(title, ((per_device(measurement, field, fn), "$tag_device"),), unit=unit, description=description)


def latest_states(group_by: str = '"device"') -> str:
    """Each device's latest ``state_code`` (as ``s``) within the status lookback."""
    return (
        f'SELECT last("state_code") AS "s" FROM "device_status" '
        f"WHERE time > now() - {STATUS_LOOKBACK} AND {GRID_FILTER} GROUP BY {group_by}"
    )


def state_count(value: int) -> str:
    """How many devices' latest state is ``value``."""
    return f'SELECT count("s") FROM ({latest_states()}) WHERE "s" = {value}'


def state_stat(title: str, value: int, width: int) -> Panel:
    """A stat panel counting the devices in one state."""
    return Panel(
        title,
        ((state_count(value), title.lower()),),
        kind="stat",
        width=width,
        height=4,
        no_value="0",
        description=f"Devices whose latest status change (last {STATUS_LOOKBACK}) was to this state.",
    )


def incidents_by(tag: str, state_code: int) -> str:
    """Incident points of one state per interval, by ``tag``."""
    return (
        f'SELECT count("repeats") FROM "incident" WHERE $timeFilter AND {GRID_FILTER} AND "state_code" = {state_code} '
        f'GROUP BY time($__interval), "{tag}" fill(none)'
    )


def open_cases(field: str, group_by: tuple[str, ...], *, per_interval: bool) -> str:
    """Open-case counts from ``case_stats``: the latest count of each (grid, state), summed by ``group_by``."""
    inner_groups = ['"grid"', '"state"']
    outer_groups = [f'"{tag}"' for tag in group_by]
    if per_interval:
        inner_groups.insert(0, "time($__interval)")
        outer_groups.insert(0, "time($__interval)")
    inner = (
        f'SELECT last("{field}") AS "n" FROM "case_stats" WHERE $timeFilter AND {GRID_FILTER} '
        f"GROUP BY {', '.join(inner_groups)}"
    )
    query = f'SELECT sum("n") FROM ({inner}) WHERE $timeFilter'
    if outer_groups:
        query += f" GROUP BY {', '.join(outer_groups)}"
    return query + (" fill(none)" if per_interval else "")


RAISED: Final = "opened, reopened or repeated"
DEVICE_AND_GRID: Final = '"device", "grid"'

DASHBOARDS: dict[str, tuple[str, list[Panel]]] = {
    "gridsentinel-overview": (
        "GridSentinel · Community overview",
        [
            state_stat("Online", 2, 6),
            state_stat("Offline", 0, 6),
            Panel(
                "Incidents raised",
                (
                    (
                        f'SELECT count("repeats") FROM "incident" WHERE $timeFilter AND {GRID_FILTER} '
                        'AND "state_code" = 1',
                        "incidents",
                    ),
                ),
                kind="stat",
                width=6,
                height=4,
                no_value="0",
                description=f"Incident points in the range ({RAISED}).",
            ),
            Panel(
                "Open cases",
                ((open_cases("open", (), per_interval=False), "open cases"),),
                kind="stat",
                width=6,
                height=4,
                no_value="0",
                interval=CASE_INTERVAL,
                description="Open cases at the latest count (every 30 s).",
            ),
            Panel("Incidents by category", ((incidents_by("category", 1), "$tag_category"),), description=RAISED),
            Panel(
                "Devices online per grid",
                (
                    (
                        f'SELECT count("s") FROM ({latest_states(DEVICE_AND_GRID)}) WHERE "s" = 2 GROUP BY "grid"',
                        "$tag_grid",
                    ),
                ),
                kind="bargauge",
            ),
        ],
    ),
    "gridsentinel-device-health": (
        "GridSentinel · Device health",
        [
            state_stat("Online", 2, 8),
            state_stat("Stale", 1, 8),
            state_stat("Offline", 0, 8),
            Panel(
                "State per device (2 online, 1 stale, 0 offline)",
                (
                    (
                        'SELECT last("state_code") FROM "device_status" WHERE $timeFilter AND '
                        f'{GRID_FILTER} GROUP BY time($__interval), "device" fill(previous)',
                        "$tag_device",
                    ),
                ),
                kind="state-timeline",
                width=24,
                height=10,
                description="Health changes in the range; a device that did not change in the range shows no bar.",
            ),
            Panel(
                "Health changes per device",
                (
                    (
                        f'SELECT count("state_code") FROM "device_status" WHERE $timeFilter AND {GRID_FILTER} '
                        'GROUP BY "device"',
                        "$tag_device",
                    ),
                ),
                kind="bargauge",
                width=24,
                description="How often each device changed health in the range: flapping devices stand out.",
            ),
        ],
    ),
    "gridsentinel-sensors": (
        "GridSentinel · Sensors",
        [
            field_panel(
                "sensor", "temp_c", "Temperature", unit="celsius", description="Profiles: env, smoke, charger."
            ),
            field_panel("sensor", "humidity_pct", "Humidity", unit="percent", description="Profile: env."),
            field_panel("sensor", "pm25", "PM2.5", unit="conμgm3", description="Profile: env."),
            field_panel("sensor", "co2_ppm", "CO₂", unit="ppm", description="Profile: env."),
            field_panel("sensor", "noise_db", "Noise", unit="dB", description="Profile: env."),
            field_panel(
                "sensor",
                "smoke_obscuration",
                "Smoke obscuration",
                unit="percent",
                description="Profile: smoke.",
                fn="max",
            ),
            field_panel(
                "sensor",
                "gas_lel_pct",
                "Combustible gas (% LEL)",
                unit="percent",
                description="Profile: gas.",
                fn="max",
            ),
            field_panel(
                "sensor", "leak", "Water leak (1 = wet)", unit="short", description="Profile: water.", fn="max"
            ),
            field_panel(
                "sensor", "tilt_deg", "Manhole cover tilt", unit="degree", description="Profile: manhole.", fn="max"
            ),
            field_panel("sensor", "current_a", "E-bike charger current", unit="amp", description="Profile: charger."),
            field_panel(
                "sensor",
                "pressure_kpa",
                "Hydrant pressure",
                unit="pressurekpa",
                description="Profile: hydrant.",
                fn="min",
            ),
            field_panel("sensor", "fill_pct", "Bin fill level", unit="percent", description="Profile: bin."),
            field_panel(
                "sensor",
                "battery_pct",
                "Battery",
                unit="percent",
                description="Battery-powered profiles: smoke, water, manhole, hydrant.",
                fn="min",
            ),
            field_panel("sensor", "rssi_dbm", "Signal strength", unit="dBm", description="Every profile."),
        ],
    ),
    "gridsentinel-kiosks": (
        "GridSentinel · Self-service kiosks",
        [
            field_panel("kiosk", "cpu_pct", "CPU", unit="percent"),
            field_panel("kiosk", "mem_pct", "Memory", unit="percent"),
            field_panel("kiosk", "disk_pct", "Disk", unit="percent"),
            field_panel("kiosk", "paper_pct", "Paper level", unit="percent", fn="min"),
            field_panel("kiosk", "transactions", "Transactions", description="Per interval.", fn="sum"),
            Panel(
                "Errors",
                (
                    (
                        'SELECT non_negative_difference(max("errors_total")) FROM "kiosk" WHERE $timeFilter AND '
                        f'{GRID_FILTER} GROUP BY time($__interval), "device" fill(none)',
                        "$tag_device",
                    ),
                ),
                description="New errors per interval (from the errors_total counter).",
            ),
            field_panel("kiosk", "latency_ms", "Network latency", unit="ms"),
            field_panel("kiosk", "temp_c", "Temperature", unit="celsius"),
            field_panel("kiosk", "uptime_s", "Uptime", unit="s", fn="last"),
        ],
    ),
    "gridsentinel-cameras": (
        "GridSentinel · Camera boxes",
        [
            field_panel("camera", "fps", "Frames per second", unit="fps"),
            field_panel("camera", "latency_ms", "Analytics latency per frame", unit="ms"),
            field_panel(
                "camera", "people", "People in view", description="Zone counts: fields people_<zone>.", fn="max"
            ),
            field_panel("camera", "motion_ratio", "Motion ratio", unit="percentunit"),
            field_panel("camera", "brightness", "Brightness", description="Mean grey level 0-255."),
            field_panel("camera", "sharpness", "Sharpness", description="Variance of the Laplacian."),
            field_panel("camera", "stream_failures", "Stream failures (total)", fn="max"),
            field_panel("camera", "stream_reconnects", "Stream reconnects (total)", fn="max"),
        ],
    ),
    "gridsentinel-incidents": (
        "GridSentinel · Incidents and cases",
        [
            Panel(
                "Incidents raised by severity", ((incidents_by("severity", 1), "$tag_severity"),), description=RAISED
            ),
            Panel("Incidents closed by category", ((incidents_by("category", 0), "$tag_category"),)),
            Panel(
                "Incident repeats per device",
                (
                    (
                        'SELECT max("repeats") FROM "incident" WHERE $timeFilter AND '
                        f'{GRID_FILTER} GROUP BY time($__interval), "device" fill(none)',
                        "$tag_device",
                    ),
                ),
                description="How often an open incident's condition fired again.",
            ),
            Panel(
                "Open cases by state",
                ((open_cases("open", ("state",), per_interval=True), "$tag_state"),),
                interval=CASE_INTERVAL,
            ),
            Panel(
                "Cases near (yellow) and past (red) their time limit",
                (
                    (open_cases("yellow", (), per_interval=True), "yellow"),
                    (open_cases("red", (), per_interval=True), "red"),
                ),
                interval=CASE_INTERVAL,
            ),
            Panel(
                "Overdue cases per grid",
                ((open_cases("red", ("grid",), per_interval=False), "$tag_grid"),),
                kind="bargauge",
                interval=CASE_INTERVAL,
                description="Open cases past their stage limit at the latest count.",
            ),
            Panel(
                "Case closure rate per grid",
                (
                    (
                        'SELECT last("closure_rate") FROM "case_eval" WHERE $timeFilter AND "by" = \'grid\' '
                        'AND "key" =~ /^$grid$/ GROUP BY "key"',
                        "$tag_key",
                    ),
                ),
                kind="bargauge",
                width=24,
                unit="percentunit",
                description="From the latest case evaluation (GET /api/v1/evaluation?by=grid writes it).",
            ),
        ],
    ),
}


def layout(panels: list[Panel]) -> list[dict[str, Any]]:
    """Place panels left to right on Grafana's 24-column grid and give them unique ids."""
    out: list[dict[str, Any]] = []
    x = y = row_height = 0
    for panel_id, panel in enumerate(panels, start=1):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        targets = [
            {
                "refId": chr(ord("A") + i),
                "datasource": DATASOURCE,
                "rawQuery": True,
                "resultFormat": "time_series",
                "query": query,
                "alias": alias,
            }
            for i, (query, alias) in enumerate(panel.queries)
        ]
        defaults: dict[str, Any] = {"unit": panel.unit}
        if panel.no_value is not None:
            defaults["noValue"] = panel.no_value
        out.append(
            {
                "id": panel_id,
                "type": panel.kind,
                "title": panel.title,
                "description": panel.description,
                "datasource": DATASOURCE,
                "gridPos": {"x": x, "y": y, "w": panel.width, "h": panel.height},
                "fieldConfig": {"defaults": defaults, "overrides": []},
                "options": {},
                "targets": targets,
            }
        )
        if panel.interval is not None:
            out[-1]["interval"] = panel.interval
        x += panel.width
        row_height = max(row_height, panel.height)
    return out


GRID_VARIABLE: Final = {
    "name": "grid",
    "label": "Grid",
    "type": "query",
    "datasource": DATASOURCE,
    "query": 'SHOW TAG VALUES FROM "device_status" WITH KEY = "grid"',
    "definition": 'SHOW TAG VALUES FROM "device_status" WITH KEY = "grid"',
    "refresh": 2,
    "includeAll": True,
    "multi": True,
    "allValue": ".*",
    "sort": 1,
    "current": {"text": "All", "value": "$__all"},
}

INCIDENT_ANNOTATIONS: Final = {
    "name": "Incidents",
    "datasource": DATASOURCE,
    "enable": True,
    "iconColor": "red",
    "query": (
        'SELECT "repeats", "category", "severity", "device" FROM "incident" '
        f'WHERE $timeFilter AND {GRID_FILTER} AND "state_code" = 1'
    ),
    "textColumn": "category",
    "tagsColumn": "severity,device",
}


def dashboard(uid: str, title: str, panels: list[Panel]) -> dict[str, Any]:
    """A whole dashboard with the grid variable and incident annotations."""
    return {
        "uid": uid,
        "title": title,
        "tags": ["gridsentinel"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [GRID_VARIABLE]},
        "annotations": {"list": [INCIDENT_ANNOTATIONS]},
        "panels": layout(panels),
    }


DATASOURCE_YAML: Final = f"""\
# Grafana datasource provisioning for GridSentinel: InfluxQL, which InfluxDB 1.x, 2.x and 3.x all answer.
# See docs/dashboards.md. Grafana expands the environment variables at start-up:
#   INFLUX_URL    1.x/2.x: http://influxdb:8086; 3.x Core/Enterprise: http://influxdb3:8181; Cloud: region URL
#   INFLUX_DB     1.x: the database; 2.x: the database name mapped to the bucket (DBRP); 3.x: the database
#   INFLUX_TOKEN  2.x/3.x: a token that can read it; 1.x without auth: empty (1.x ignores the header)
# InfluxDB 1.x with auth enabled: use basicAuth/user/password instead of the header (docs/dashboards.md).
# InfluxDB 2.x maps a bucket named like INFLUX_DB by itself (virtual DBRP); any other bucket, once:
#   influx v1 dbrp create --db gridsentinel --rp autogen --bucket-id <bucket id> --default
apiVersion: 1
datasources:
  - name: GridSentinel InfluxDB
    uid: {DATASOURCE_UID}
    type: influxdb
    access: proxy
    url: ${{INFLUX_URL}}
    jsonData:
      version: InfluxQL
      dbName: ${{INFLUX_DB}}
      httpMode: GET
      timeInterval: 10s
      httpHeaderName1: Authorization
    secureJsonData:
      httpHeaderValue1: Token ${{INFLUX_TOKEN}}
    editable: false
"""

PROVIDER_YAML: Final = """\
# Grafana dashboard provider: loads every GridSentinel dashboard JSON from this folder
# (mount or copy dashboards/json/ there; see docs/dashboards.md).
apiVersion: 1
providers:
  - name: gridsentinel
    folder: GridSentinel
    type: file
    disableDeletion: false
    updateIntervalSeconds: 60
    allowUiUpdates: false
    options:
      path: /etc/grafana/dashboards/gridsentinel
"""


def render() -> dict[Path, str]:
    """Every generated file, path -> text."""
    files = {
        HERE / "provisioning" / "datasources" / "gridsentinel.yaml": DATASOURCE_YAML,
        HERE / "provisioning" / "dashboards" / "gridsentinel.yaml": PROVIDER_YAML,
    }
    for uid, (title, panels) in DASHBOARDS.items():
        text = json.dumps(dashboard(uid, title, panels), indent=2, ensure_ascii=False) + "\n"
        files[HERE / "json" / f"{uid.removeprefix('gridsentinel-')}.json"] = text
    return files


def main() -> None:
    """Write every file."""
    for path, text in render().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(path.relative_to(HERE))


if __name__ == "__main__":
    main()
