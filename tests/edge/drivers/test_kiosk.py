"""Kiosk driver: lpstat parsing, the app's HTTP and log-file status, and the events they raise."""

from __future__ import annotations

import json
import stat
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from edge.drivers import DriverError
from edge.drivers.kiosk import KioskConfig, KioskDriver, LogTail, parse_lpstat, parse_status_line
from edge.wire import EventState
from simulators.servers import free_port

LPSTAT = """\
printer Kiosk_Receipt is idle.  enabled since Mon 23 Nov 2026 09:00:01 AM CST
printer HP_A4 now printing HP_A4-42.  enabled since Mon 23 Nov 2026 10:01:02 AM CST
printer Jammed disabled since Mon 23 Nov 2026 10:05:00 AM CST -
\tPaper jam in tray 2
printer Empty is idle.  enabled since Mon 23 Nov 2026 10:06:00 AM CST
\tMedia empty; please load paper
"""


def kcfg(**fields: Any) -> KioskConfig:
    return KioskConfig.model_validate({"type": "kiosk", **fields})


def changes(driver: KioskDriver) -> list[tuple[str, EventState]]:
    return [(e.type, e.state) for e in driver.poll(0).events]


def test_parse_lpstat_states_and_reasons() -> None:
    printers = {p.name: p for p in parse_lpstat(LPSTAT)}
    assert printers["Kiosk_Receipt"].state == "idle" and printers["Kiosk_Receipt"].enabled
    assert printers["HP_A4"].state == "printing"
    jam = printers["Jammed"]
    assert (jam.state, jam.enabled, jam.jammed, jam.paper_out) == ("disabled", False, True, False)
    assert printers["Empty"].paper_out and not printers["Empty"].jammed
    assert parse_lpstat("lpstat: No destinations added.\n") == []


def test_parse_status_line_formats() -> None:
    assert parse_status_line('{"paper_pct": 40, "printer": "ok"}') == {"paper_pct": 40, "printer": "ok"}
    assert parse_status_line('paper_pct=12.5 door=open reader="no card" ok=true n=3') == {
        "paper_pct": 12.5,
        "door": "open",
        "reader": "no card",
        "ok": True,
        "n": 3,
    }
    assert parse_status_line("{broken") == {}
    assert parse_status_line("[1,2]") == {}


def test_log_tail_follows_appends_truncation_and_rotation(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("a=1\nb=2\npartial=")
    tail = LogTail(str(log))
    assert tail.read_lines() == ["a=1", "b=2"]
    assert tail.read_lines() == []
    with log.open("a") as fh:
        fh.write("3\nc=4\n")
    assert tail.read_lines() == ["partial=3", "c=4"]
    log.write_text("t=1\n")  # truncated by the app
    assert tail.read_lines() == ["t=1"]
    log.rename(tmp_path / "app.log.1")  # rotated: a new file appears
    log.write_text("r=9\n")
    assert tail.read_lines() == ["r=9"]
    log.unlink()
    assert tail.read_lines() == []
    tail.close()


def test_log_tail_starts_near_the_end_of_a_big_log(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    log.write_text("".join(f"n={i}\n" for i in range(40_000)))
    lines = LogTail(str(log)).read_lines()
    assert lines[-1] == "n=39999"
    assert len(lines) < 20_000 and all(line.startswith("n=") for line in lines)


def test_events_from_log_states(tmp_path: Path) -> None:
    log = tmp_path / "kiosk.log"
    log.write_text('{"paper_pct": 50, "transactions_total": 10, "printer": "ok", "ts": 1700000000000}\n')
    driver = KioskDriver(kcfg(status_log=str(log), use_lpstat=False))
    sample = driver.poll(0)
    assert sample.metrics == {"paper_pct": 50, "transactions_total": 10}  # ts is not a metric
    assert sample.events == ()
    with log.open("a") as fh:
        fh.write("paper_pct=10 reader=fault door=open\n")
    assert sorted(changes(driver)) == [
        ("door_open", EventState.ACTIVE),
        ("paper_low", EventState.ACTIVE),
        ("reader_fault", EventState.ACTIVE),
    ]
    with log.open("a") as fh:
        fh.write("paper_pct=17 reader=ok door=closed printer=jam\n")  # 17 < 15+5: paper_low holds
    assert sorted(changes(driver)) == [
        ("door_open", EventState.CLEARED),
        ("printer_jam", EventState.ACTIVE),
        ("reader_fault", EventState.CLEARED),
    ]
    with log.open("a") as fh:
        fh.write("paper_pct=0 printer=ok\n")
    assert sorted(changes(driver)) == [("paper_out", EventState.ACTIVE), ("printer_jam", EventState.CLEARED)]
    with log.open("a") as fh:
        fh.write("paper_pct=100 app=crashed\n")
    assert sorted(changes(driver)) == [
        ("app_crash", EventState.ACTIVE),
        ("paper_low", EventState.CLEARED),
        ("paper_out", EventState.CLEARED),
    ]
    driver.close()


class _StatusHandler(BaseHTTPRequestHandler):
    body: bytes = b"{}"
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def status_server() -> Iterator[tuple[ThreadingHTTPServer, type[_StatusHandler]]]:
    handler = type("Handler", (_StatusHandler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


def test_http_status_and_app_down(status_server: tuple[ThreadingHTTPServer, type[_StatusHandler]]) -> None:
    server, handler = status_server
    url = f"http://127.0.0.1:{server.server_address[1]}/status"
    handler.body = json.dumps({"paper_pct": 80, "errors_total": 2, "latency_ms": 35.5, "app": "running"}).encode()
    driver = KioskDriver(kcfg(status_url=url, use_lpstat=False, http_timeout_s=1))
    sample = driver.poll(0)
    assert sample.metrics == {"paper_pct": 80, "errors_total": 2, "latency_ms": 35.5, "app_up": True}
    handler.body = b"not json"
    with pytest.raises(DriverError, match="is not JSON"):
        driver.poll(0)
    handler.status = 500
    with pytest.raises(DriverError, match="answered HTTP 500"):
        driver.poll(0)
    down = KioskDriver(kcfg(status_url=f"http://127.0.0.1:{free_port()}/", use_lpstat=False))
    sample = down.poll(0)
    assert sample.metrics == {"app_up": False}
    assert [(e.type, e.state) for e in sample.events] == [("app_crash", EventState.ACTIVE)]
    assert "not answering" in (sample.events[0].message or "")


def _fake_lpstat(tmp_path: Path, text: str) -> str:
    script = tmp_path / "lpstat"
    script.write_text(f"#!{sys.executable}\nimport sys\nsys.stdout.write({text!r})\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_lpstat_printer_state_and_jam(tmp_path: Path) -> None:
    log = tmp_path / "k.log"
    log.write_text("paper_pct=60\n")
    config = kcfg(status_log=str(log), lpstat=_fake_lpstat(tmp_path, LPSTAT), printer="Jammed")
    driver = KioskDriver(config)
    sample = driver.poll(0)
    assert sample.metrics == {"paper_pct": 60, "printer_up": False, "printer_printing": False}
    assert [(e.type, e.state) for e in sample.events] == [("printer_jam", EventState.ACTIVE)]
    assert sample.events[0].message == "Paper jam in tray 2"


def test_absent_lpstat_omits_printer_metrics(tmp_path: Path) -> None:
    log = tmp_path / "k.log"
    log.write_text("paper_pct=60\n")
    config = kcfg(status_log=str(log), lpstat=str(tmp_path / "no-such-lpstat"))
    assert KioskDriver(config).poll(0).metrics == {"paper_pct": 60}


def test_no_data_yet_is_a_driver_error(tmp_path: Path) -> None:
    driver = KioskDriver(kcfg(status_log=str(tmp_path / "missing.log"), use_lpstat=False))
    with pytest.raises(DriverError, match="no kiosk data yet"):
        driver.poll(0)


def test_config_needs_a_source_and_names_bad_keys() -> None:
    with pytest.raises(ValidationError, match="set status_url or status_log"):
        KioskConfig.model_validate({"type": "kiosk"})
    with pytest.raises(ValidationError) as info:
        KioskConfig.model_validate({"type": "kiosk", "status_url": "ftp://x"})
    assert info.value.errors()[0]["loc"] == ("status_url",)
    with pytest.raises(ValidationError) as info:
        KioskConfig.model_validate({"type": "kiosk", "status_log": "/x", "paper_low": 5})
    assert info.value.errors()[0]["loc"] == ("paper_low",)
