"""Snapshots in the JetStream object store: what one replica stores, another reads, and retention clears for all."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from nats.js.object_store import OBJ_META_PRE_TEMPLATE

from hub.cluster.bridge import BridgeError, NatsBridge
from hub.cluster.objects import SNAPSHOT_BUCKET, JetStreamSnapshotBlobs, meta_subject, parse_mtime
from hub.evidence.snapshots import SnapshotStore, announced_ms
from tests.hub.snapshots.test_store import DAY_MS, NOW_MS, Clock, event, jpeg


def test_meta_subject_is_the_clients() -> None:
    name = "cam-1/ev-1.json"
    encoded = base64.urlsafe_b64encode(name.encode()).decode()
    assert meta_subject("b", name) == OBJ_META_PRE_TEMPLATE.format(bucket="b", obj=encoded)


def test_mtime_and_announced_time() -> None:
    assert parse_mtime("2023-11-14T22:13:20+00:00") == 1_700_000_000_000
    assert parse_mtime("2023-11-14T22:13:20.5Z") == 1_700_000_000_500
    assert parse_mtime("") == parse_mtime(None) == parse_mtime("yesterday") == 0
    assert announced_ms(b'{"announced_ms": 5}', 9) == 5
    assert announced_ms(b"{not json", 9) == announced_ms(b'{"x": 1}', 9) == announced_ms(None, 9) == 9


@pytest.mark.integration
def test_a_snapshot_stored_by_one_replica_is_read_and_purged_by_another(
    nats_bridges: Callable[[str], NatsBridge], tmp_path: Path
) -> None:
    clock = Clock()
    a_bridge, b_bridge = nats_bridges("replica-a"), nats_bridges("replica-b")
    a = SnapshotStore(tmp_path / "a", 7, clock, JetStreamSnapshotBlobs(a_bridge, replicas=1))
    b = SnapshotStore(tmp_path / "b", 7, clock, JetStreamSnapshotBlobs(b_bridge, replicas=1))
    old, new = jpeg(11), jpeg(12)
    assert a.announce("cam-1", event("old", old), NOW_MS - 8 * DAY_MS) is None
    assert a.store_snapshot("cam-1", "old", old, NOW_MS - 8 * DAY_MS) is None
    assert a.announce("cam-1", event("new", new), NOW_MS) is None
    assert a.store_snapshot("cam-1", "new", new, NOW_MS + 3) is None

    assert b.read("cam-1", "new") == new and b.read("cam-1", "old") == old
    meta = b.meta("cam-1", "new")
    assert meta is not None and meta.stored_ms == NOW_MS + 3 and meta.sha256 == hashlib.sha256(new).hexdigest()
    assert not (tmp_path / "a" / "snapshots" / "cam-1").exists(), "nothing written to the receiving replica's disk"
    assert b.read("cam-1", "other") is None and b.meta("cam-1", "other") is None

    assert b.purge() == 1  # the retention job runs on whichever replica holds its lease
    assert a.read("cam-1", "old") is None and a.meta("cam-1", "old") is None
    assert a.read("cam-1", "new") == new
    assert b.purge() == 0
    # Nothing of the purged snapshot is left in the bucket's stream (no "deleted" meta records pile up).
    info = b_bridge.call(b_bridge.js.stream_info(f"OBJ_{SNAPSHOT_BUCKET}", subjects_filter=">"), 5)
    names = {parse_name(s) for s in (info.state.subjects or {}) if ".M." in s}
    assert names == {"cam-1/new.jpg", "cam-1/new.json"}, names


def parse_name(subject: str) -> str:
    return base64.urlsafe_b64decode(subject.rsplit(".", 1)[1]).decode()


@pytest.mark.integration
def test_a_call_from_the_bridges_own_loop_is_refused(nats_bridges: Callable[[str], NatsBridge]) -> None:
    bridge = nats_bridges("replica-a")
    blobs = JetStreamSnapshotBlobs(bridge, replicas=1)

    async def on_the_loop() -> None:
        blobs.get("cam-1/ev.jpg")  # would wait on the loop it blocks

    with pytest.raises(BridgeError):
        bridge.call(on_the_loop(), 5)
