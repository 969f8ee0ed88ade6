"""Hub snapshot store: hash verification, pending snapshots, retention, the sink and the API route.

The store's tests run on every blob backend: files (a single hub) and a real nats-server's object store
(replicas of a cluster).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from edge.wire import Event, EventState, Severity, SnapshotRef
from hub.cluster.bridge import NatsBridge
from hub.cluster.objects import JetStreamSnapshotBlobs
from hub.context import HubContext, need
from hub.db import make_engine, session_factory, sqlite_url
from hub.devices.models import DeviceRow
from hub.devices.registry import DeviceRegistry
from hub.evidence.blobs import FileSnapshotBlobs
from hub.evidence.plugin import install
from hub.evidence.snapshots import SnapshotSink, SnapshotStore
from hub.ingest.deadletter import DeadLetterStore
from hub.ingest.sinks import DeviceRef
from hub.metrics import IngestStats
from hub.schema import init_schema
from hub.security.auth import current_principal
from hub.security.authz import SUPERVISOR, Principal

DAY_MS = 86_400_000
NOW_MS = 1_700_000_000_000


def jpeg(seed: int = 0) -> bytes:
    image = np.random.default_rng(seed).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return bytes(buf.tobytes())


def event(event_id: str, data: bytes | None, status: str = "sent") -> Event:
    ref = SnapshotRef(None if data is None else hashlib.sha256(data).hexdigest(), len(data or b""), status)
    return Event(
        seq=1, ts=NOW_MS, event_id=event_id, type="intrusion", state=EventState.ACTIVE,
        severity=Severity.MAJOR, zone="gate", snapshot=ref,
    )  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = NOW_MS / 1000

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["files", pytest.param("jetstream", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SnapshotStore:
    """A store on each backend: files under ``tmp_path/snapshots``, or a real nats-server's object store."""
    if request.param == "files":
        return SnapshotStore(tmp_path, retention_days=7, clock=Clock())
    bridges: Callable[[str], NatsBridge] = request.getfixturevalue("nats_bridges")
    blobs = JetStreamSnapshotBlobs(bridges("replica-a"), replicas=1)
    return SnapshotStore(tmp_path, retention_days=7, clock=Clock(), blobs=blobs)


def test_announced_snapshot_is_verified_stored_and_linked(store: SnapshotStore, tmp_path: Path) -> None:
    data = jpeg()
    assert store.announce("cam-1", event("ev-1", data), NOW_MS) is None
    assert store.store_snapshot("cam-1", "ev-1", data, NOW_MS + 5) is None
    assert store.read("cam-1", "ev-1") == data
    if isinstance(store.blobs, FileSnapshotBlobs):  # the single hub's layout, as operators back it up
        assert (tmp_path / "snapshots" / "cam-1" / "ev-1.jpg").read_bytes() == data
    meta = store.meta("cam-1", "ev-1")
    assert meta is not None
    assert (meta.event_type, meta.zone, meta.stored_ms) == ("intrusion", "gate", NOW_MS + 5)
    assert meta.sha256 == hashlib.sha256(data).hexdigest()
    assert store.store_snapshot("cam-1", "ev-1", data, NOW_MS + 9) is None  # redelivery is harmless


def test_hash_mismatch_is_refused_and_nothing_stored(store: SnapshotStore) -> None:
    store.announce("cam-1", event("ev-2", jpeg(1)), NOW_MS)
    assert store.store_snapshot("cam-1", "ev-2", jpeg(2), NOW_MS) == "hash_mismatch"
    assert store.read("cam-1", "ev-2") is None
    assert store.rejected == {"hash_mismatch": 1}


def test_bad_payloads_and_ids_are_refused(store: SnapshotStore) -> None:
    assert store.store_snapshot("cam-1", "ev-3", b"GIF89a....", NOW_MS) == "not_jpeg"
    assert store.store_snapshot("../etc", "ev-3", jpeg(), NOW_MS) == "bad_id"
    assert store.store_snapshot("cam-1", "ev/3", jpeg(), NOW_MS) == "bad_id"
    store.announce("cam-1", event("ev-4", None, "withheld"), NOW_MS)
    assert store.store_snapshot("cam-1", "ev-4", jpeg(), NOW_MS) == "not_announced"


def test_snapshot_before_its_event_waits_then_is_verified(store: SnapshotStore) -> None:
    good, bad = jpeg(3), jpeg(4)
    assert store.store_snapshot("cam-1", "ev-5", good, NOW_MS) is None
    assert store.read("cam-1", "ev-5") is None  # not verified yet
    assert store.announce("cam-1", event("ev-5", good), NOW_MS + 10) is None
    assert store.read("cam-1", "ev-5") == good
    assert store.store_snapshot("cam-1", "ev-6", bad, NOW_MS) is None
    assert store.announce("cam-1", event("ev-6", good), NOW_MS + 10) == "hash_mismatch"
    assert store.read("cam-1", "ev-6") is None


def test_retention_purges_old_snapshots_only(store: SnapshotStore) -> None:
    old, new = jpeg(5), jpeg(6)
    store.announce("cam-1", event("old", old), NOW_MS - 8 * DAY_MS)
    store.store_snapshot("cam-1", "old", old, NOW_MS - 8 * DAY_MS)
    store.announce("cam-1", event("new", new), NOW_MS - 1 * DAY_MS)
    store.store_snapshot("cam-1", "new", new, NOW_MS - 1 * DAY_MS)
    assert store.purge() == 1
    assert store.read("cam-1", "old") is None and store.meta("cam-1", "old") is None
    assert store.read("cam-1", "new") == new


class DeadLetters:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, topic: str, payload: bytes, reason: str, detail: str, received_ms: int, **kw: object) -> None:
        self.items.append((topic, reason))


def test_sink_and_api_route(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'state.db'}")  # a file: the access log writes from API threads
    ctx = HubContext(data_dir=tmp_path, engine=engine, sessions=session_factory(engine), clock=Clock())
    dead = DeadLetters()
    ctx.services.deadletters = cast(DeadLetterStore, dead)  # records what the sink refuses
    install(ctx)
    store = need(ctx.services.snapshots, "snapshots")
    assert isinstance(store, SnapshotStore)
    (sink,) = [s for s in ctx.sinks if isinstance(s, SnapshotSink)]
    assert [name for name, _ in ctx.tasks] == ["snapshot-retention"]
    device = DeviceRef("cam-1", "site-a", None, None)
    data = jpeg(7)
    sink.on_event(device, event("ev-7", data), NOW_MS)
    sink.on_snapshot(device, "ev-7", data, hashlib.sha256(data).hexdigest(), NOW_MS)
    sink.on_event(device, event("ev-8", data), NOW_MS)
    sink.on_snapshot(device, "ev-8", jpeg(8), "x", NOW_MS)
    assert dead.items == [("gs/v1/site-a/cam-1/snapshot/ev-8", "hash_mismatch")]

    app = FastAPI()
    app.state.ctx = ctx
    for router in ctx.routers:
        app.include_router(router)
    # an operator may see evidence (who may not, and the access log, are tested in tests/hub/test_authz.py)
    app.dependency_overrides[current_principal] = lambda: Principal("op1", frozenset({"operator"}))
    client = TestClient(app)
    got = client.get("/api/v1/snapshots/cam-1/ev-7")
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "image/jpeg"
    assert got.headers["x-snapshot-sha256"] == hashlib.sha256(data).hexdigest()
    assert client.get("/api/v1/snapshots/cam-1/ev-8").status_code == 404
    assert client.get("/api/v1/snapshots/cam-1/ev-8/meta").json()["stored_ms"] is None
    assert client.get("/api/v1/snapshots/CAM/ev-7").status_code == 400


def test_area_check_of_a_device_this_hub_does_not_hold_in_memory(tmp_path: Path) -> None:
    """A cluster replica holds only its partitions' devices; a supervisor's area is checked against the device row."""
    engine = make_engine(sqlite_url(tmp_path))
    init_schema(engine)
    sessions = session_factory(engine)
    with sessions() as s, s.begin():
        s.add(DeviceRow(id="cam-1", site="site-a", kind="camera", grid="110105001002003"))
    ctx = HubContext(data_dir=tmp_path, engine=engine, sessions=sessions, clock=Clock())
    ctx.services.registry = DeviceRegistry(sessions, IngestStats())  # nothing loaded: another replica's device
    install(ctx)
    store = need(ctx.services.snapshots, "snapshots")
    data = jpeg(9)
    store.announce("cam-1", event("ev-9", data), NOW_MS)
    store.store_snapshot("cam-1", "ev-9", data, NOW_MS)
    app = FastAPI()
    app.state.ctx = ctx
    for router in ctx.routers:
        app.include_router(router)
    client = TestClient(app)
    for grids, status in ((("110105001",), 200), (("110105002",), 404)):
        principal = Principal("sup1", frozenset({SUPERVISOR}), grids=grids)
        app.dependency_overrides[current_principal] = lambda p=principal: p
        assert client.get("/api/v1/snapshots/cam-1/ev-9").status_code == status, grids
    engine.dispose()
