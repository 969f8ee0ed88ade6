"""A scripted storm and a flapping sensor against a running hub, compared with what an operator should see.

``python -m hub.incidents.check --mqtt-url mqtt://127.0.0.1:1883 --api http://127.0.0.1:8080``
publishes, over real MQTT and only through :mod:`edge.wire`: ``--cameras`` camera births
then their offline statuses within a few seconds (a site losing power), and one water
sensor whose leak alarm flaps ``--flaps`` times. An operator should then see one
device-offline incident per camera, all in ONE group (so one case), and ONE water-leak
incident carrying the flap count, not a hundred.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge import wire
from edge.wire import Channel, DeviceKind, DeviceState, Event, EventState, Severity, Status

GRID_PREFIX = "110101001001"


def _publisher(url: str) -> Any:
    host, port = url.removeprefix("mqtt://").rsplit(":", 1)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"gs-check-{int(time.time())}")
    client.connect(host, int(port), keepalive=60)
    client.loop_start()
    return client


def _status(state: DeviceState, kind: DeviceKind, grid: str, epoch: int) -> bytes:
    return wire.encode(Status(state=state, epoch=epoch, ts=int(time.time() * 1000), kind=kind, grid=grid))


def run_check(
    mqtt_url: str,
    api_url: str,
    *,
    site: str,
    cameras: int,
    flaps: int,
    timeout_s: float,
    token: str | None = None,
) -> dict[str, Any]:
    """Publish the scenario, wait for the hub to settle and return seen vs expected counts."""
    client = _publisher(mqtt_url)
    epoch = int(time.time())
    pubs: list[Any] = []
    try:
        cams = [f"cam-{i:03d}" for i in range(cameras)]
        for i, cam in enumerate(cams):
            grid = f"{GRID_PREFIX}{i % 10:03d}"
            pubs.append(
                client.publish(
                    wire.topic(site, cam, Channel.STATUS),
                    _status(DeviceState.ONLINE, DeviceKind.CAMERA, grid, epoch),
                    qos=1,
                )
            )
        water = "water-1"
        pubs.append(
            client.publish(
                wire.topic(site, water, Channel.STATUS),
                _status(DeviceState.ONLINE, DeviceKind.SENSOR, f"{GRID_PREFIX}001", epoch),
                qos=1,
            )
        )
        time.sleep(1.0)  # births first, as in the field
        for i, cam in enumerate(cams):
            grid = f"{GRID_PREFIX}{i % 10:03d}"
            pubs.append(
                client.publish(
                    wire.topic(site, cam, Channel.STATUS),
                    _status(DeviceState.OFFLINE, DeviceKind.CAMERA, grid, epoch),
                    qos=1,
                )
            )
        for n in range(flaps):
            for k, state in enumerate((EventState.ACTIVE, EventState.CLEARED)):
                seq = epoch * 1000 + 2 * n + k
                ev = Event(seq, int(time.time() * 1000), f"leak-{seq}", "water_leak", state, Severity.MAJOR)
                pubs.append(client.publish(wire.topic(site, water, Channel.EVENT), wire.encode(ev), qos=1))
                time.sleep(0.05)
        for info in pubs:
            info.wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()
    return _observe(api_url, site, cameras, flaps, timeout_s, token or os.environ.get("GRIDSENTINEL_ADMIN_TOKEN"))


def _observe(  # noqa: PLR0917 - internal
    api_url: str, site: str, cameras: int, flaps: int, timeout_s: float, token: str | None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    api = httpx.Client(base_url=api_url, timeout=10, headers=headers)
    deadline = time.monotonic() + timeout_s
    seen: dict[str, Any] = {}
    expected = {
        "offline_incidents": cameras,
        "offline_groups": 1,
        "water_leak_incidents": 1,
        "water_leak_flaps": flaps - 1,
    }
    while True:
        offline = api.get("/api/v1/incidents", params={"site": site, "rule": "device_offline", "limit": 1000}).json()
        leaks = api.get("/api/v1/incidents", params={"site": site, "rule": "water_leak", "limit": 1000}).json()
        seen = {
            "offline_incidents": len(offline),
            "offline_groups": len({i["group_id"] for i in offline}),
            "water_leak_incidents": len(leaks),
            "water_leak_flaps": sum(i["flap_count"] for i in leaks),
        }
        if seen == expected or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    return {"site": site, "expected": expected, "seen": seen, "ok": seen == expected}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mqtt-url", required=True, help="broker the hub ingests from (mqtt://host:port)")
    parser.add_argument("--api", required=True, help="hub API base URL (http://host:port)")
    parser.add_argument("--site", default=f"storm-{int(time.time())}", help="site id for the scripted devices")
    parser.add_argument("--cameras", type=int, default=200)
    parser.add_argument("--flaps", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--token", help="API token that may read incidents (default: $GRIDSENTINEL_ADMIN_TOKEN)")
    args = parser.parse_args(argv)
    result = run_check(
        args.mqtt_url,
        args.api,
        site=args.site,
        cameras=args.cameras,
        flaps=args.flaps,
        timeout_s=args.timeout,
        token=args.token,
    )
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
