"""SeqWatermark: seqs become safe ticket by ticket, are journalled, and resume a restarted hub."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from hub.db import init_schema, make_engine, session_factory, sqlite_url
from hub.metrics import IngestStats
from hub.registry import DeviceRecord, DeviceRegistry
from hub.registry_models import DeviceRow
from hub.watermark import SeqWatermark


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
        with caplog.at_level(logging.WARNING, logger="hub.watermark"):
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
