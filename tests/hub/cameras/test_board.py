"""The camera board (a sink fed straight, no broker) and the camera view's rows and filters."""

from __future__ import annotations

from typing import Any

from edge.vocabulary import EventType
from edge.wire import DeviceKind, Event, EventState, Severity
from hub.cameras.board import CameraBoard, camera_row, matches, summarize
from hub.ingest.sinks import DeviceRef

GRID = "330106001001001"
CAM = DeviceRef("cam-1", "sunrise", DeviceKind.CAMERA, GRID)


def event(seq: int, kind: str, state: EventState) -> Event:
    return Event(seq, 1_000 * seq, f"e{seq}", kind, state, Severity.MAJOR)


def device(state: str = "online", **latest: Any) -> dict[str, Any]:
    return {
        "id": "cam-1",
        "site": "sunrise",
        "grid": GRID,
        "state": state,
        "latest": latest,
        "latest_ts_ms": 10_000,
        "last_seen_ms": 10_000,
        "labels": {"location": "Gate 2", "model": "DS-2CD", "analytics": "people, tamper"},
    }


def test_tamper_sets_and_clears_and_ignores_other_kinds() -> None:
    board = CameraBoard()
    board.on_event(CAM, event(1, EventType.TAMPER_COVERED, EventState.ACTIVE), 0)
    board.on_event(CAM, event(2, EventType.STREAM_LOST, EventState.ACTIVE), 0)
    board.on_event(CAM, event(3, EventType.CROWD_GATHERING, EventState.ACTIVE), 0)  # an alarm, not a condition
    kiosk = DeviceRef("kiosk-1", "sunrise", DeviceKind.KIOSK, GRID)
    board.on_event(kiosk, event(1, EventType.TAMPER_COVERED, EventState.ACTIVE), 0)
    states = board.states()
    assert set(states) == {"cam-1"} and states["cam-1"].conditions == {"tamper_covered", "stream_lost"}
    board.on_event(CAM, event(4, EventType.TAMPER_COVERED, EventState.CLEARED), 0)
    assert board.states()["cam-1"].conditions == {"stream_lost"}


def test_row_joins_inventory_health_conditions_and_snapshot() -> None:
    board = CameraBoard()
    board.on_event(CAM, event(1, EventType.TAMPER_MOVED, EventState.ACTIVE), 0)
    board.on_snapshot(CAM, "e1", b"jpeg", "00" * 32, 5_000)
    board.on_snapshot(CAM, "e0", b"jpeg", "00" * 32, 4_000)  # older, arrived late: not the latest
    cam = board.states()["cam-1"]
    row = camera_row(device(fps=9.5, stream_ok=True, frame_age_s=0.2), cam, 12_000, evidence=True)
    assert row["location"] == "Gate 2" and row["model"] == "DS-2CD" and row["analytics"] == ["people", "tamper"]
    assert (row["stream_up"], row["fps"], row["frame_age_s"]) == (True, 9.5, 2.2)  # aged by now - latest_ts
    assert row["tamper"] == ["tamper_moved"] and not row["stream_lost"]
    assert row["snapshot"] == {"event_id": "e1", "received_ms": 5_000}
    assert camera_row(device(), cam, 12_000, evidence=False)["snapshot"] is None  # evidence is role-bound


def test_filters_and_summary() -> None:
    rows = [
        camera_row(device(fps=10.0, stream_ok=True), None, 10_000, evidence=False),
        camera_row(device("offline"), None, 10_000, evidence=False),
        camera_row(device(fps=0.0, stream_ok=False), None, 10_000, evidence=False),
    ]
    assert [matches(r, None, "online") for r in rows] == [True, False, True]
    assert [matches(r, None, "down") for r in rows] == [False, True, False]
    assert [matches(r, None, "no_stream") for r in rows] == [False, True, True]
    assert matches(rows[0], "330106001", None) and not matches(rows[0], "330106002", None)
    assert summarize(rows) == {"total": 3, "online": 2, "down": 1, "tamper": 0, "stream_lost": 0, "no_stream": 2}
