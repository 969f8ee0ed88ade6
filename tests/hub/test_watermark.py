"""SeqWatermark: seqs become safe ticket by ticket, are journalled, and resume a restarted hub."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from edge import wire
from edge.wire import Channel, Point, Telemetry
from hub.db import make_engine, session_factory, sqlite_url
from hub.devices.models import DeviceRow
from hub.devices.registry import DeviceRecord, DeviceRegistry
from hub.ingest.dedup import Gap
from hub.ingest.pipeline import Ingest, standalone_ingest
from hub.ingest.watermark import SeqWatermark
from hub.metrics import IngestStats
from hub.schema import init_schema
from hub.series.base import SeriesPoint
from simulators.servers import Postgres


def rec(device_id: str, seq: int | None = None) -> DeviceRecord:
    return DeviceRecord(id=device_id, site="s", last_seq=seq)


def journal(path: Path) -> dict[str, int | None]:
    doc = json.loads(path.read_bytes())
    assert doc["v"] == 1
    seqs: dict[str, int | None] = doc["seqs"]
    return seqs


def advance(wm: SeqWatermark, r: DeviceRecord, seq: int) -> None:
    r.last_seq = seq
    wm.note(r)


def test_seqs_become_safe_only_when_their_ticket_is_durable(tmp_path: Path) -> None:
    path = tmp_path / "wm.json"
    wm = SeqWatermark(path)
    a, b = rec("a"), rec("b")
    advance(wm, a, 5)
    wm.seal(1)
    advance(wm, a, 9)
    advance(wm, b, 3)
    wm.seal(2)
    advance(wm, b, 4)
    wm.seal(None)  # no points in this chunk: safe once everything before it is
    wm.release(0)
    assert (a.safe_seq, b.safe_seq) == (None, None) and not path.exists()
    wm.release(1)
    assert (a.safe_seq, b.safe_seq) == (5, None) and journal(path) == {"a": 5}
    wm.release(2)
    assert (a.safe_seq, b.safe_seq) == (9, 4) and journal(path) == {"a": 9, "b": 4}
    writes = wm.journal_writes
    wm.release(2)
    assert wm.journal_writes == writes  # nothing new: no write


def test_a_seq_restart_voids_what_was_sealed_before_it(tmp_path: Path) -> None:
    path = tmp_path / "wm.json"
    wm = SeqWatermark(path)
    a = rec("a")
    advance(wm, a, 500)
    wm.seal(1)
    a.last_seq = None  # the registry's epoch reset
    wm.forget(a)
    assert journal(path) == {"a": None}  # written at once: the DB's old value must not come back
    advance(wm, a, 1)
    wm.seal(2)
    wm.release(2)
    assert a.safe_seq == 1 and journal(path) == {"a": 1}  # the old 500 never became safe


def test_load_prefers_the_journal_over_the_db(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "wm.json"
    path.write_text(json.dumps({"v": 1, "seqs": {"a": 40, "b": 2, "c": None, "gone": 7}}))
    devices = {d.id: d for d in (rec("a", 30), rec("b", 5), rec("c", 99), rec("d", 11))}
    wm = SeqWatermark(path)
    assert wm.load(devices) == 2  # a moved ahead, c reset; b's DB value is newer and stays
    assert {d.id: (d.last_seq, d.safe_seq) for d in devices.values()} == {
        "a": (40, 40),
        "b": (5, 5),
        "c": (None, None),
        "d": (11, 11),
    }
    for damaged in (b"{", b'{"v":2,"seqs":{}}', b'{"v":1,"seqs":{"a":-1}}', b'{"v":1,"seqs":{"a":"x"}}'):
        path.write_bytes(damaged)
        fresh = {"a": rec("a", 30)}
        with caplog.at_level(logging.WARNING, logger="hub.ingest.watermark"):
            assert SeqWatermark(path).load(fresh) == 0
        assert fresh["a"].last_seq == 30
        assert "damaged" in caplog.text
        caplog.clear()
    assert SeqWatermark(tmp_path / "missing.json").load({"a": rec("a", 3)}) == 0


def test_a_journal_that_cannot_be_written_raises(tmp_path: Path) -> None:
    wm = SeqWatermark(tmp_path / "no-such-dir" / "wm.json")
    a = rec("a")
    advance(wm, a, 1)
    wm.seal(1)
    with pytest.raises(OSError):
        wm.release(1)  # the link then acknowledges nothing; the broker delivers the messages again


def test_registry_persists_the_safe_seq_when_durable_seqs_is_on(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path))
    init_schema(engine)
    sessions = session_factory(engine)
    registry = DeviceRegistry(sessions, IngestStats())
    registry.durable_seqs = True
    r = registry.ensure("s", "dev-1")
    registry.touch(r, 1000, 10)
    r.safe_seq = 7  # points of seqs 8..10 not yet durable
    registry.flush()
    with sessions() as session:
        assert session.scalars(select(DeviceRow.last_seq)).all() == [7]
    registry.durable_seqs = False
    registry.touch(r, 2000, 11)
    registry.flush()
    with sessions() as session:
        assert session.scalars(select(DeviceRow.last_seq)).all() == [11]
    engine.dispose()


# ---------------------------------------------------------------- gaps: kept in step with the acknowledgements


class _AnyMs:
    """Equal to any int (a gap's opened time, taken from the wall clock)."""

    def __eq__(self, other: object) -> bool:
        return type(other) is int

    def __hash__(self) -> int:
        return 0


ANY_MS: Any = _AnyMs()


class TicketWriter:
    """The series writer as ingest sees it: a ticket per submit; durable through what the test says."""

    def __init__(self) -> None:
        self.tickets = 0
        self.durable = 0
        self.points: list[object] = []

    def submit(self, points: Sequence[SeriesPoint | str]) -> int:
        self.points.extend(points)
        self.tickets += 1
        return self.tickets

    def durable_through(self) -> int:
        return self.durable


TOPIC = wire.topic("s1", "d1", Channel.TELEMETRY).encode()


def start(sessions: sessionmaker[Session], path: Path, writer: TicketWriter) -> Ingest:
    """A hub's ingest after a (re)start: registry loaded, the journal at ``path`` resumed."""
    return standalone_ingest(
        sessions,
        submit_points=writer.submit,
        root=wire.DEFAULT_ROOT,
        durable_through=writer.durable_through,
        journal=path,
    )


def chunk(ingest: Ingest, *seqs: int) -> int | None:
    """Messages as MqttLink hands them over, then the chunk submitted before its PUBACKs are held."""
    now = int(time.time() * 1000)
    for seq in seqs:
        ingest._on_link_message(TOPIC, wire.encode(Telemetry(seq, now, (Point(now, {"t": float(seq)}),))), 1)
    return ingest._submit_held()


def durable(ingest: Ingest, writer: TicketWriter, ticket: int | None) -> None:
    """The writer made ``ticket`` durable and the link asks how far it may acknowledge."""
    assert ticket is not None
    writer.durable = ticket
    ingest._released()


def save_state(ingest: Ingest) -> None:
    """The sweep thread's once-a-second save of the registry and the open-gap table."""
    ingest.registry.flush()
    ingest.gaps.save_open()


def open_seqs(ingest: Ingest) -> list[int]:
    return [s for g in ingest.gaps.open_gaps() for s in range(g["first"], g["last"] + 1)]


def test_a_fill_not_yet_durable_at_a_kill_leaves_its_gap_open(
    state_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path, writer = tmp_path / "wm.json", TicketWriter()
    first = start(state_sessions, path, writer)
    durable(first, writer, chunk(first, 1, 2, 5))  # 3..4 missing, seq 5 safe
    chunk(first, 3)  # a resent message fills 3; its points are not durable yet
    save_state(first)  # the periodic save sees the fill
    # kill -9: the broker delivers the unacknowledged message with seq 3 again to the next run
    second = start(state_sessions, path, writer)
    assert open_seqs(second) == [3, 4]
    before = len(writer.points)
    chunk(second, 3)
    assert second.stats.duplicates == 0 and len(writer.points) == before + 1  # stored, not dropped
    assert open_seqs(second) == [4]


def test_a_fill_made_durable_after_the_last_save_does_not_come_back(
    state_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path, writer = tmp_path / "wm.json", TicketWriter()
    first = start(state_sessions, path, writer)
    durable(first, writer, chunk(first, 1, 2, 5, 8))  # 3..4 and 6..7 missing
    save_state(first)
    durable(first, writer, chunk(first, 3, 7))  # both fills acknowledged: the broker will not deliver them again
    # kill -9 before the next periodic save: a device without an outbox must not be asked for 3 and 7
    second = start(state_sessions, path, writer)
    assert open_seqs(second) == [4, 6]
    assert json.loads(path.read_bytes())["gaps"] == {"d1": [[4, 4, ANY_MS, None], [6, 6, ANY_MS, None]]}


def test_gaps_expired_by_the_sweep_are_not_waited_for_again(
    state_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path, writer = tmp_path / "wm.json", TicketWriter()
    first = start(state_sessions, path, writer)
    durable(first, writer, chunk(first, 1, 2, 5))
    save_state(first)
    first.gaps.sweep(int(time.time() * 1000) + 60_000)  # past the timeout: a data-loss record for 3..4
    assert first.gaps.list_page()[0] == 1
    second = start(state_sessions, path, writer)  # kill -9 before the next save
    assert open_seqs(second) == []
    second.gaps.sweep(int(time.time() * 1000) + 60_000)
    assert second.gaps.list_page()[0] == 1  # recorded once, not again after the restart


def test_safe_gaps_journal_round_trip_and_damage(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "wm.json"
    live = {"a": [Gap(3, 4, 100, None), Gap(9, 9, 200, 250)]}
    wm = SeqWatermark(path, open_gaps=live.items)
    a = rec("a")
    advance(wm, a, 8)  # the gap 9..9 lies above the safe seq once 8 is released
    wm.seal(1)
    wm.release(1)
    doc = json.loads(path.read_bytes())
    assert doc == {"v": 2, "seqs": {"a": 8}, "gaps": {"a": [[3, 4, 100, None]]}}
    fresh = SeqWatermark(path)
    fresh.load({"a": rec("a", 8)})
    assert fresh.loaded_gaps == {"a": [Gap(3, 4, 100, None)]}
    for damaged in ({**doc, "gaps": {"a": [[4, 3, 100, None]]}}, {**doc, "gaps": {"a": [[3]]}}, {"v": 2, "seqs": {}}):
        path.write_text(json.dumps(damaged))
        broken = SeqWatermark(path)
        with caplog.at_level(logging.WARNING, logger="hub.ingest.watermark"):
            broken.load({"a": rec("a", 8)})
        assert broken.loaded_gaps is None and "damaged" in caplog.text  # the open-gap table decides
        caplog.clear()


@pytest.mark.integration
def test_gaps_expired_while_the_state_db_is_away_stay_in_the_journal_until_their_records_are_written(
    own_pg: Postgres, tmp_path: Path
) -> None:
    """The journal may forget an expired gap only once its data-loss record is in the state DB: a
    kill before that must find the gap again after the restart, not lose the record."""
    engine = make_engine(own_pg.create_database())
    init_schema(engine)
    sessions: sessionmaker[Session] = session_factory(engine)
    path, writer = tmp_path / "wm.json", TicketWriter()
    first = start(sessions, path, writer)
    durable(first, writer, chunk(first, 1, 2, 5))
    save_state(first)
    own_pg.shut_down()
    first.gaps.sweep(int(time.time() * 1000) + 60_000)  # expired; the record cannot be written
    assert json.loads(path.read_bytes())["gaps"] == {"d1": [[3, 4, ANY_MS, None]]}
    # kill -9 while the DB is away; it comes back, and so does the hub
    own_pg.start_again()
    second = start(sessions, path, writer)
    assert open_seqs(second) == [3, 4]
    second.gaps.sweep(int(time.time() * 1000) + 60_000)
    assert second.gaps.list_page()[0] == 1  # recorded (once), not lost with the first run's memory
    assert json.loads(path.read_bytes())["gaps"] == {}
    engine.dispose()
