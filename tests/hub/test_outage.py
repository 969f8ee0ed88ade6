"""OutageLog: one error when a dependency starts failing, a summary a minute, one warning when it is back."""

from __future__ import annotations

import logging

import pytest

from hub.ingest.outage import OutageLog, describe


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_an_outage_is_logged_once_summed_up_each_minute_and_its_end_said(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = OutageLog(logging.getLogger("test.outage"), "state DB", "rows wait in memory", clock=clock)
    with caplog.at_level(logging.DEBUG, logger="test.outage"):
        log.ok()  # nothing to say while it works
        assert not log.down
        for _ in range(240):  # a retry every 0.25 s for a minute
            log.failed(ConnectionRefusedError("connection refused\nSQL: UPDATE devices ..."))
            clock.t += 0.25
        assert log.down
        log.failed(ConnectionRefusedError("connection refused"))
        clock.t += 13.0
        log.ok()
        log.ok()
    assert not log.down
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines == [
        ("ERROR", "state DB unavailable (ConnectionRefusedError: connection refused); retrying -- rows wait in memory"),
        (
            "ERROR",
            "state DB still unavailable after 60 s (241 failed attempts; "
            "last: ConnectionRefusedError: connection refused)",
        ),
        ("WARNING", "state DB is back after 73.0 s (241 failed attempts)"),
    ]
    assert caplog.records[0].exc_info is not None  # the first failure keeps its traceback
    assert caplog.records[1].exc_info is None


def test_describe_keeps_the_first_line() -> None:
    assert describe(ValueError("bad\nmore")) == "ValueError: bad"
    assert describe(ValueError()) == "ValueError"
