"""The state DB (a real PostgreSQL) going away and coming back: nothing waiting for it is lost.

Dead letters, device rows and data-loss records are written by the hub's sweep from in-memory
queues. A flush that fails while the server is down must leave its items queued (before, they were
taken off the queue first and dropped with the exception), and the next flush after the restart
writes them; pooled connections cut by the restart are replaced on checkout (``pool_pre_ping``).
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from edge.wire import GapNotice
from hub.bus import EventBus
from hub.db import make_engine, session_factory
from hub.devices.models import DataLossRow, DeviceRow
from hub.devices.registry import DeviceRegistry
from hub.ingest.deadletter import DeadLetterStore
from hub.ingest.gaps import GapManager
from hub.ingest.models import DeadLetterRow
from hub.metrics import IngestStats
from hub.schema import init_schema
from simulators.servers import Postgres

pytestmark = pytest.mark.integration

T0 = 1_800_000_000_000


def test_a_state_db_outage_keeps_dead_letters_devices_and_loss_records_queued(own_pg: Postgres) -> None:
    engine = make_engine(own_pg.create_database())
    init_schema(engine)
    sessions: sessionmaker[Session] = session_factory(engine)
    stats = IngestStats()
    registry = DeviceRegistry(sessions, stats)
    deadletters = DeadLetterStore(sessions, stats)
    gaps = GapManager(sessions, stats, EventBus(), threading.RLock())
    before = registry.ensure("s1", "d-before")
    registry.touch(before, T0, 1)
    assert registry.flush() == 1  # persisted: later changes are updates

    own_pg.shut_down()
    registry.touch(before, T0 + 1000, 2)  # an update...
    registry.touch(registry.ensure("s1", "d-new"), T0 + 1000, 7)  # ...and a device first seen in the outage
    deadletters.add("gs/v1/s1/d-new/telemetry", b"{not json", "bad_json", "Expecting property name", T0)
    gaps.declare(registry.ensure("s1", "d-new"), GapNotice(seq=8, ts=T0, first=3, last=5, reason="evicted"), T0)
    for _ in range(3):  # what the hub's sweep does every 0.25 s while the server is away
        for flush in (deadletters.flush, registry.flush, gaps.flush):
            with pytest.raises(OperationalError):
                flush()

    own_pg.start_again()
    assert deadletters.flush() == 1
    assert registry.flush() == 2
    assert gaps.flush() == 1
    with sessions() as session:
        devices = {row.id: row.last_seq for row in session.scalars(select(DeviceRow))}
        dead = [(row.reason, row.payload) for row in session.scalars(select(DeadLetterRow))]
        losses = [(row.device_id, row.first, row.last) for row in session.scalars(select(DataLossRow))]
    assert devices == {"d-before": 2, "d-new": 7}
    assert dead == [("bad_json", b"{not json")]
    assert losses == [("d-new", 3, 5)]
    assert stats.deadletters_dropped == 0
    engine.dispose()
