"""Operator commands end to end: real mosquitto, the real edge agent process, the real hub and its API.

A kiosk agent (``gridsentinel edge run`` with the simulated kiosk driver) answers a
``ping`` sent through ``POST /api/v1/devices/{id}/commands``; once the agent is stopped
the same command times out after its ttl plus the hub's ack margin; a supervisor, and
an operator whose areas do not hold the kiosk's grid, are refused with a reason; the
access audit holds every command, refusal and ack.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hub.context import need
from hub.service import Hub
from simulators.community import generate_community
from simulators.community_workflow import to_workflow
from simulators.servers import Mosquitto, wait_until
from tests.hub.conftest import HubFactory, api

pytestmark = pytest.mark.integration

DEVICE = "kiosk-cmd-01"
MARGIN_S = 1.0


@dataclass
class Site:
    """A hub with the case directory (for people), its grids and a token per person."""

    hub: Hub
    grids: list[str]
    tokens: dict[str, str]

    def client(self, person: str | None = None) -> httpx.Client:
        return api(self.hub) if person is None else api(self.hub, self.tokens[person])


@pytest.fixture
def site(tmp_path: Path, make_hub: HubFactory) -> Site:
    community = generate_community(2, seed=5, mix_per_grid={"kiosk": 1.0})
    grids = community.grid_codes()
    workflow = to_workflow(community)
    # an operator of the second grid only: may see the kiosk (operators see all) but not command it
    workflow["people"].append(
        {
            "id": "operator-far",
            "name": "Far Operator",
            "roles": ["operator"],
            "responsibilities": [{"grids": [grids[1]], "categories": ["*"]}],
        }
    )
    data_dir = tmp_path / "hub"
    data_dir.mkdir()
    (data_dir / "cases.yaml").write_text(yaml.safe_dump(workflow, allow_unicode=True))
    hub = make_hub(
        data_dir=data_dir,
        plugins=("hub.incidents.plugin", "hub.cases.plugin", "hub.evidence.plugin", "hub.commands.plugin"),
        command_ack_margin_s=MARGIN_S,
    )
    assert hub.ctx is not None
    tokens = need(hub.ctx.services.tokens, "tokens")
    people = ("operator-01", "operator-far", "sup-01")
    return Site(hub, grids, {p: tokens.issue_token(p, "command test") for p in people})


@pytest.fixture
def kiosk(tmp_path: Path, site: Site, mosquitto: Mosquitto) -> Iterator[subprocess.Popen[bytes]]:
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f"""
[device]
id = "{DEVICE}"
site = "cmdsite"
kind = "kiosk"
grid = "{site.grids[0]}"

[mqtt]
url = "{mosquitto.url}"
keepalive_s = 2

[outbox]
backend = "sqlite"
path = "{tmp_path / "outbox.db"}"

[[drivers]]
type = "sim_kiosk"
seed = 3
interval_s = 0.5
"""
    )
    log = (tmp_path / "agent.log").open("wb")
    agent = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "edge", "run", "--config", str(config)], stdout=log, stderr=log
    )
    try:
        with site.client() as client:
            wait_until(
                lambda: client.get(f"/api/v1/devices/{DEVICE}").json().get("state") == "online",
                timeout=30,
                what="kiosk agent online",
            )
        yield agent
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        log.close()


def _command(client: httpx.Client, cid: str) -> dict[str, Any]:
    resp = client.get(f"/api/v1/devices/{DEVICE}/commands/{cid}")
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_ping_to_a_kiosk_is_acked_with_its_result(site: Site, kiosk: subprocess.Popen[bytes]) -> None:
    with site.client("operator-01") as client:
        resp = client.post(f"/api/v1/devices/{DEVICE}/commands", json={"op": "ping", "ttl_s": 30})
        assert resp.status_code == 201, resp.text
        cid = resp.json()["id"]
        assert resp.headers["location"].endswith(f"/commands/{cid}")
        assert resp.json()["state"] in {"queued", "sent", "acked"}
        started = time.monotonic()
        wait_until(lambda: _command(client, cid)["state"] == "acked", timeout=10, what="ping acked")
        print(f"acked {time.monotonic() - started:.2f} s after the POST")
        done = _command(client, cid)
        assert done["op"] == "ping" and done["requested_by"] == "operator-01"
        assert done["ack"]["result"] == "ok" and done["ack"]["detail"] == "pong"
        assert "epoch" in done["ack"]["data"]
        assert [c["id"] for c in client.get(f"/api/v1/devices/{DEVICE}/commands").json()] == [cid]
    with site.client() as admin:  # the trail: who asked, and what the device answered
        rows = admin.get("/api/v1/access-audit", params={"device": DEVICE}).json()
    trail = {(r["action"], r["outcome"], r["person_id"]) for r in rows if r["event_id"] == cid}
    assert ("command:ping", "queued", "operator-01") in trail
    assert ("ack:ping", "ok", DEVICE) in trail


def test_idempotency_key_sends_once(site: Site, kiosk: subprocess.Popen[bytes]) -> None:
    url = f"/api/v1/devices/{DEVICE}/commands"
    with site.client("operator-01") as client:
        first = client.post(url, json={"op": "get_config"}, headers={"Idempotency-Key": "k-1"})
        again = client.post(url, json={"op": "get_config"}, headers={"Idempotency-Key": "k-1"})
        other = client.post(url, json={"op": "ping"}, headers={"Idempotency-Key": "k-1"})
        assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
        assert again.json()["id"] == first.json()["id"]
        cid = first.json()["id"]
        wait_until(lambda: _command(client, cid)["state"] == "acked", timeout=10, what="get_config acked")
        assert "config" in _command(client, cid)["ack"]["data"]
        assert len(client.get(url).json()) == 1


def test_command_to_a_stopped_agent_times_out_after_its_ttl(site: Site, kiosk: subprocess.Popen[bytes]) -> None:
    kiosk.terminate()
    kiosk.wait(20)
    with site.client("operator-01") as client:
        wait_until(
            lambda: client.get(f"/api/v1/devices/{DEVICE}").json().get("state") == "offline",
            timeout=10,
            what="kiosk offline",
        )
        resp = client.post(f"/api/v1/devices/{DEVICE}/commands", json={"op": "ping", "ttl_s": 1})
        assert resp.status_code == 201, resp.text
        cid = resp.json()["id"]
        posted = time.monotonic()
        wait_until(lambda: _command(client, cid)["state"] == "sent", timeout=5, what="sent to the broker")
        wait_until(lambda: _command(client, cid)["state"] == "timed_out", timeout=10, what="timed out")
        waited = time.monotonic() - posted
        assert waited >= 1 + MARGIN_S - 0.1, waited  # never before ttl + margin
        done = _command(client, cid)
        assert done["ack"] is None and done["finished_ms"] >= done["deadline_ms"]
        # kiosks say they always answer: the silence is a device-fault incident
        incidents = client.get("/api/v1/incidents", params={"device": DEVICE}).json()
    assert any(i["rule_id"] == "command_timeout" and i["category"] == "device_fault" for i in incidents), incidents


def test_who_may_command(site: Site, kiosk: subprocess.Popen[bytes]) -> None:
    url = f"/api/v1/devices/{DEVICE}/commands"
    with site.client("sup-01") as client:
        resp = client.post(url, json={"op": "ping"})
        assert resp.status_code == 403 and resp.json()["detail"]["reason"] == "role_not_allowed", resp.text
    with site.client("operator-far") as client:
        resp = client.post(url, json={"op": "ping"})
        assert resp.status_code == 403, resp.text
        assert resp.json()["detail"]["reason"] == "outside_area"
        assert site.grids[0] in resp.json()["detail"]["message"]
    with site.client("operator-01") as client:
        bad = client.post(url, json={"op": "reboot"})
        assert bad.status_code == 422 and "reboot" in bad.text and "ping" in bad.text
        not_offered = client.post(url, json={"op": "snapshot"})
        assert not_offered.status_code == 422 and not_offered.json()["detail"]["reason"] == "op_not_offered"
        assert client.post(url, json={"op": "ping", "ttl_s": 0}).status_code == 422
        assert client.get(url).json() == []  # nothing refused was stored or sent
    with site.client() as admin:
        rows = admin.get("/api/v1/access-audit", params={"device": DEVICE}).json()
    denied = {r["person_id"] for r in rows if r["outcome"] == "denied"}
    assert denied == {"sup-01", "operator-far"}


def test_cli_sends_and_waits_for_the_ack(site: Site, kiosk: subprocess.Popen[bytes]) -> None:
    cli = [sys.executable, "-m", "edge.cli", "hub", "devices", "command", DEVICE]
    url = f"http://127.0.0.1:{site.hub.http_port}"
    env = {**os.environ, "GRIDSENTINEL_TOKEN": site.tokens["operator-01"], "GRIDSENTINEL_HUB_URL": url}
    done = subprocess.run(
        [*cli, "ping", "--wait", "--ttl", "20"], check=False, capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["state"] == "acked"
    env["GRIDSENTINEL_TOKEN"] = site.tokens["sup-01"]
    refused = subprocess.run([*cli, "ping"], check=False, capture_output=True, text=True, env=env, timeout=60)
    assert refused.returncode == 1 and "403" in refused.stderr
