"""Evidence across replicas: a camera's snapshot reaches the replica owning its partition, and the other serves it.

3 nats-server nodes, PostgreSQL and two hub replicas (real processes). A camera-like MQTT client (built
with :mod:`edge.wire` only) publishes an event announcing a snapshot, then the JPEG; the replica that did
not receive them answers ``GET /api/v1/snapshots/...`` with the verified bytes, from the shared object store.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge import wire
from edge.wire import Channel, Event, EventState, Severity, SnapshotRef
from hub.cluster.natsconf import partition_of
from hub.db import make_engine
from hub.schema import init_schema
from simulators.servers import Postgres, wait_until
from simulators.servers.nats import NatsCluster, ReplicaProcess, lease_holders, start_replicas, stop_replicas
from tests.hub.device import FakeDevice, now_ms
from tests.hub.snapshots.test_store import jpeg
from tests.servers import require_binary

pytestmark = pytest.mark.integration

PARTITIONS = 4
SITE = "site-a"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """NATS cluster, PostgreSQL (schema in place) and two replicas started together."""
    require_binary("nats-server", "nats-server")
    nats_cluster = NatsCluster(tmp_path / "nats", partitions=PARTITIONS)
    pg = Postgres()
    replicas: list[ReplicaProcess] = []
    try:
        nats_cluster.start()
        pg.start()
        url = pg.create_database(name="gs_snapshots")
        engine = make_engine(url)
        init_schema(engine)  # once: processes creating the tables together would collide
        engine.dispose()
        for i in range(2):
            replicas.append(
                ReplicaProcess(
                    f"replica-{i}", tmp_path / f"replica-{i}", nats_cluster.client_urls, url, partitions=PARTITIONS
                )
            )
        start_replicas(replicas)
        yield {"nats": nats_cluster, "replicas": replicas}
    finally:
        stop_replicas(replicas)
        pg.stop()
        nats_cluster.stop()


def owners(cluster: NatsCluster) -> dict[int, str]:
    keys = [f"part.{p}" for p in range(PARTITIONS)]
    held = asyncio.run(lease_holders(cluster.live_urls(), keys))
    return {int(k.split(".")[1]): v for k, v in held.items()}


def test_a_snapshot_is_served_by_a_replica_that_did_not_receive_it(pair: dict[str, Any]) -> None:
    cluster: NatsCluster = pair["nats"]
    replicas: list[ReplicaProcess] = pair["replicas"]
    wait_until(
        lambda: len(owners(cluster)) == PARTITIONS and len(set(owners(cluster).values())) == 2,
        30,
        what="every partition owned, spread over both replicas",
    )
    camera = FakeDevice(cluster.nodes[0].mqtt_port, device_id="cam-7", site=SITE)
    receiver_id = owners(cluster)[partition_of(SITE, camera.device_id, PARTITIONS)]
    [other] = [r for r in replicas if r.replica_id != receiver_id]
    image = jpeg(21)
    sha = hashlib.sha256(image).hexdigest()
    announce = Event(
        seq=1, ts=now_ms(), event_id="ev-intrusion-1", type="intrusion", state=EventState.ACTIVE,
        severity=Severity.MAJOR, zone="gate", snapshot=SnapshotRef(sha, len(image), "sent"),
    )  # fmt: skip
    camera.connect()
    try:
        camera.publish_raw(camera.topic(Channel.EVENT), wire.encode(announce))
        camera.publish_raw(wire.topic(SITE, camera.device_id, Channel.SNAPSHOT, event_id=announce.event_id), image)
    finally:
        camera.close()

    headers = {"Authorization": f"Bearer {other.admin_token}"}
    base = f"{other.base_url}/api/v1/snapshots/{camera.device_id}/{announce.event_id}"

    def served() -> bool:
        return httpx.get(base, headers=headers, timeout=5).status_code == 200

    wait_until(served, 20, interval=0.2, what=f"the snapshot served by {other.replica_id}")
    got = httpx.get(base, headers=headers, timeout=5)
    assert got.content == image and got.headers["x-snapshot-sha256"] == sha
    meta = httpx.get(f"{base}/meta", headers=headers, timeout=5).json()
    assert (meta["sha256"], meta["zone"], meta["event_type"]) == (sha, "gate", "intrusion")
    assert meta["stored_ms"] is not None
    # Served from the shared store: neither replica wrote the image to its own data dir.
    assert not list(other.data_dir.glob("snapshots/**/*.jpg"))
    assert not list((other.data_dir.parent / receiver_id).glob("snapshots/**/*.jpg"))
