"""Generate GridSentinel's Grafana dashboards and provisioning files.

Run ``python dashboards/generate.py`` after changing a panel; the JSON it writes is
committed, and a test checks that it is up to date. Building dashboards from code
keeps panel ids and uids unique, the grid layout free of overlaps, and every query
in the one dialect all InfluxDB versions answer (InfluxQL), with Grafana's
``$timeFilter`` and ``$__interval`` macros.

Schema (DESIGN.md section 5): one measurement per device kind (``sensor``,
``kiosk``, ``camera``), tags ``site``, ``grid``, ``device``; ``device_status``
(field ``state_code``: 0 offline, 1 stale, 2 online); ``incident`` (fields
``state_code``, ``repeats``; tags also ``category``, ``severity``); ``case_eval``
(rates per grid).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
DATASOURCE_UID = "gridsentinel-influxql"
DATASOURCE = {"type": "influxdb", "uid": DATASOURCE_UID}
GRID_FILTER = '"grid" =~ /^$grid$/'


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


def mean_by_device(measurement: str, field: str) -> str:
    """Mean of one field per device per interval, filtered by the grid variable."""
    return (
        f'SELECT mean("{field}") FROM "{measurement}" WHERE $timeFilter AND {GRID_FILTER} '
        'GROUP BY time($__interval), "device" fill(none)'
    )


def field_panel(measurement: str, field: str, title: str, unit: str = "short") -> Panel:
    """A time-series panel of one field per device."""
    return Panel(title, ((mean_by_device(measurement, field), "$tag_device"),), unit=unit)


def last_by_grid(measurement: str, field: str) -> str:
    """The latest value of one field per grid."""
    return f'SELECT last("{field}") FROM "{measurement}" WHERE $timeFilter GROUP BY "grid"'


DEVICE_STATES = (
    'SELECT count("s") FROM (SELECT last("state_code") AS "s" FROM "device_status" '
    'WHERE $timeFilter AND {grid} GROUP BY "device") WHERE "s" {op} {value}'
)


def state_count(op: str, value: int) -> str:
    """How many devices' latest state compares to ``value``."""
    return DEVICE_STATES.format(grid=GRID_FILTER, op=op, value=value)


DASHBOARDS: dict[str, tuple[str, list[Panel]]] = {
    "gridsentinel-overview": (
        "GridSentinel · Community overview",
        [
            Panel("Devices online", ((state_count("=", 2), "online"),), kind="stat", width=6, height=4),
            Panel("Devices offline", ((state_count("=", 0), "offline"),), kind="stat", width=6, height=4),
            Panel(
                "Incidents raised",
                (('SELECT count("state_code") FROM "incident" WHERE $timeFilter AND "state_code" = 1', "incidents"),),
                kind="stat",
                width=6,
                height=4,
            ),
            Panel(
                "Readings stored",
                (('SELECT count("temp_c") FROM "sensor" WHERE $timeFilter AND ' + GRID_FILTER, "sensor readings"),),
                kind="stat",
                width=6,
                height=4,
            ),
            Panel(
                "Incidents by category",
                (
                    (
                        'SELECT count("state_code") FROM "incident" WHERE $timeFilter AND "state_code" = 1 '
                        'GROUP BY time($__interval), "category" fill(0)',
                        "$tag_category",
                    ),
                ),
                width=12,
            ),
            Panel(
                "Devices online per grid",
                (
                    (
                        'SELECT count("s") FROM (SELECT last("state_code") AS "s" FROM "device_status" '
                        f'WHERE $timeFilter AND {GRID_FILTER} GROUP BY "device", "grid") WHERE "s" = 2 GROUP BY "grid"',
                        "$tag_grid",
                    ),
                ),
                kind="bargauge",
                width=12,
            ),
        ],
    ),
    "gridsentinel-device-health": (
        "GridSentinel · Device health",
        [
            Panel("Online", ((state_count("=", 2), "online"),), kind="stat", width=8, height=4),
            Panel("Stale", ((state_count("=", 1), "stale"),), kind="stat", width=8, height=4),
            Panel("Offline", ((state_count("=", 0), "offline"),), kind="stat", width=8, height=4),
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
            ),
        ],
    ),
    "gridsentinel-sensors": (
        "GridSentinel · Sensors",
        [
            field_panel("sensor", "temp_c", "Temperature", "celsius"),
            field_panel("sensor", "humidity_pct", "Humidity", "percent"),
            field_panel("sensor", "pm25", "PM2.5", "conμgm3"),
            field_panel("sensor", "co2_ppm", "CO₂", "ppm"),
            field_panel("sensor", "noise_db", "Noise", "dB"),
            field_panel("sensor", "battery_pct", "Battery", "percent"),
        ],
    ),
    "gridsentinel-kiosks": (
        "GridSentinel · Self-service kiosks",
        [
            field_panel("kiosk", "cpu_pct", "CPU", "percent"),
            field_panel("kiosk", "mem_pct", "Memory", "percent"),
            field_panel("kiosk", "paper_pct", "Paper level", "percent"),
            field_panel("kiosk", "transactions", "Transactions"),
            field_panel("kiosk", "errors", "Errors"),
            field_panel("kiosk", "latency_ms", "Network latency", "ms"),
        ],
    ),
    "gridsentinel-cameras": (
        "GridSentinel · Camera boxes",
        [
            field_panel("camera", "fps", "Frames per second"),
            field_panel("camera", "latency_ms", "Processing latency", "ms"),
            field_panel("camera", "people_total", "People in view"),
            field_panel("camera", "motion_ratio", "Motion ratio", "percentunit"),
            field_panel("camera", "brightness", "Brightness"),
            field_panel("camera", "sharpness", "Sharpness"),
        ],
    ),
    "gridsentinel-incidents": (
        "GridSentinel · Incidents and cases",
        [
            Panel(
                "Incidents by severity",
                (
                    (
                        'SELECT count("state_code") FROM "incident" WHERE $timeFilter AND "state_code" = 1 '
                        'GROUP BY time($__interval), "severity" fill(0)',
                        "$tag_severity",
                    ),
                ),
            ),
            Panel(
                "Incident repeats per device",
                (
                    (
                        'SELECT max("repeats") FROM "incident" WHERE $timeFilter AND '
                        f'{GRID_FILTER} GROUP BY time($__interval), "device" fill(none)',
                        "$tag_device",
                    ),
                ),
            ),
            Panel(
                "Case on-time and closure rates",
                (
                    (
                        'SELECT last("on_time_rate") FROM "case_eval" WHERE $timeFilter GROUP BY "grid"',
                        "on time $tag_grid",
                    ),
                    (
                        'SELECT last("closure_rate") FROM "case_eval" WHERE $timeFilter GROUP BY "grid"',
                        "closed $tag_grid",
                    ),
                ),
                kind="bargauge",
                width=24,
                unit="percentunit",
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
        out.append(
            {
                "id": panel_id,
                "type": panel.kind,
                "title": panel.title,
                "description": panel.description,
                "datasource": DATASOURCE,
                "gridPos": {"x": x, "y": y, "w": panel.width, "h": panel.height},
                "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                "options": {},
                "targets": targets,
            }
        )
        x += panel.width
        row_height = max(row_height, panel.height)
    return out


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
        "templating": {
            "list": [
                {
                    "name": "grid",
                    "label": "Grid",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "query": 'SHOW TAG VALUES FROM "device_status" WITH KEY = "grid"',
                    "refresh": 2,
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "current": {"text": "All", "value": "$__all"},
                }
            ]
        },
        "annotations": {
            "list": [
                {
                    "name": "Incidents",
                    "datasource": DATASOURCE,
                    "enable": True,
                    "iconColor": "red",
                    "query": (
                        'SELECT "repeats", "category", "severity", "device" FROM "incident" '
                        'WHERE $timeFilter AND "state_code" = 1'
                    ),
                    "textColumn": "category",
                    "tagsColumn": "severity",
                }
            ]
        },
        "panels": layout(panels),
    }


DATASOURCE_YAML = f"""\
# Grafana datasource provisioning for GridSentinel (InfluxQL, which InfluxDB 1.x, 2.x and 3.x all answer).
# Environment variables are expanded by Grafana at start-up:
#   INFLUX_URL    e.g. http://influxdb:8086 (1.x/2.x) or https://<region>.cloud2.influxdata.com (Cloud/3.x)
#   INFLUX_DB     the 1.x database, or for 2.x/3.x the database name mapped to your bucket (DBRP mapping)
#   INFLUX_TOKEN  2.x/3.x API token with read access (leave empty for 1.x without auth)
# InfluxDB 2.x: map a database name to the bucket once:
#   influx v1 dbrp create --db gridsentinel --rp autogen --bucket-id <id> --default
# InfluxDB 3.x: the database name is the bucket name; InfluxQL is answered on /query with the token.
apiVersion: 1
datasources:
  - name: GridSentinel InfluxDB
    uid: {DATASOURCE_UID}
    type: influxdb
    access: proxy
    url: $INFLUX_URL
    jsonData:
      dbName: $INFLUX_DB
      httpMode: GET
      httpHeaderName1: Authorization
    secureJsonData:
      httpHeaderValue1: Token $INFLUX_TOKEN
    editable: false
"""

PROVIDER_YAML = """\
# Grafana dashboard provider: loads every GridSentinel dashboard JSON from this folder.
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
