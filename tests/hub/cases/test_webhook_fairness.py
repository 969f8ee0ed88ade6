"""Webhooks: fair between receivers, single delivery across hubs — real HTTP receivers, SQLite and PostgreSQL.

A receiver that stays down with 500 rows pending must not hold up a live one, and
two hubs delivery loops on one state DB must send each row exactly once and in
order per case.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hub.cases.models import OutboxRow
from hub.cases.service import WebhookTarget
from hub.cases.webhooks import WebhookDispatcher
from hub.db import make_engine, session_factory
from simulators.servers import wait_until
from tests.hub.cases.conftest import make_env
from tests.hub.cases.test_api_flow import smoke_group


class Receiver:
    """A loopback HTTP receiver that answers ``status`` (after ``delay_s``) and records delivery keys."""

    def __init__(self, status: int = 200, delay_s: float = 0.0) -> None:
        self.status = status
        self.keys: list[str] = []
        self.bodies: list[dict[str, Any]] = []
        self.hits = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay_s)
                with receiver.lock:
                    receiver.hits += 1
                    if receiver.status < 300:
                        receiver.keys.append(self.headers["Idempotency-Key"])
                        receiver.bodies.append(json.loads(body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    started: list[Receiver] = []
    yield started
    for receiver in started:
        receiver.stop()


def _pending_rows(target: str, cases: range, events: int) -> list[OutboxRow]:
    return [
        OutboxRow(
            delivery_key=f"case-{case}-{seq}-{target}",
            target=target,
            case_id=case,
            event_seq=seq,
            payload=json.dumps({"case": case, "seq": seq}),
            attempts=0,
            next_attempt_ms=0,
            last_error="",
        )
        for case in cases
        for seq in range(1, events + 1)
    ]


def _run(dispatcher: WebhookDispatcher, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=dispatcher.task, args=(stop, 0.02), daemon=True)
    thread.start()
    return thread


def test_a_dead_receiver_does_not_starve_a_live_one(db_url: str, tmp_path: Path, receivers: list[Receiver]) -> None:
    dead, live = Receiver(status=503), Receiver()
    receivers += [dead, live]
    env = make_env(db_url, tmp_path)
    env.svc.targets = [WebhookTarget("dead", dead.url, "s" * 16), WebhookTarget("live", live.url, "s" * 16)]
    # the dead receiver's backlog: 500 rows, all due, older than everything else (case ids below the real ones,
    # so a dispatcher that took "the oldest N rows of all targets" would see nothing else)
    with env.ctx.sessions() as s, s.begin():
        s.add_all(_pending_rows("dead", range(-100, 0), 5))
    cases = [env.svc.on_incident_group(smoke_group(group_id=g, incident_ids=[g])) for g in range(1, 4)]
    assert all(c is not None for c in cases)
    with env.ctx.sessions() as s:
        want = s.query(OutboxRow).filter(OutboxRow.target == "live").count()
    assert want >= 6
    dispatcher = WebhookDispatcher(env.ctx.sessions, env.svc.targets, base_backoff_s=0.2, max_backoff_s=2.0)
    stop = threading.Event()
    started = time.monotonic()
    thread = _run(dispatcher, stop)
    try:
        wait_until(lambda: len(live.keys) >= want, timeout=5, what="the live receiver's rows")
        took = time.monotonic() - started
    finally:
        stop.set()
        thread.join(10)
        env.ctx.engine.dispose()
    assert took < 5 and len(live.keys) == len(set(live.keys)) == want
    assert dead.hits < 30, dead.hits  # backed off as a whole, not tried row by row
    assert "dead" in dispatcher.backed_off() or dead.hits > 0
    for case_id in cases:  # still in order per case
        seqs = [b["event"]["seq"] for b in live.bodies if b["case"]["id"] == case_id]
        assert seqs == sorted(seqs)


def test_two_hubs_deliver_each_row_exactly_once(db_url: str, tmp_path: Path, receivers: list[Receiver]) -> None:
    receiver = Receiver(delay_s=0.002)  # a little latency widens the window for double sends
    receivers.append(receiver)
    env = make_env(db_url, tmp_path)
    target = WebhookTarget("city", receiver.url, "s" * 16)
    with env.ctx.sessions() as s, s.begin():
        s.add_all(_pending_rows("city", range(1, 41), 10))  # 400 rows in 40 ordered lanes
    engines = [make_engine(db_url) for _ in range(2)]  # two hubs: own engines, own pools
    hubs = [WebhookDispatcher(session_factory(engine), [target]) for engine in engines]
    stop = threading.Event()
    threads = [_run(hub, stop) for hub in hubs]
    try:
        wait_until(lambda: hubs[0].pending() == 0, timeout=60, what="all rows delivered")
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)
        for engine in engines:
            engine.dispose()
        env.ctx.engine.dispose()
    assert all(hub.delivered > 0 for hub in hubs), [hub.delivered for hub in hubs]  # both really took part
    assert sum(hub.delivered for hub in hubs) == 400
    counts = Counter(receiver.keys)
    assert len(counts) == 400 and set(counts.values()) == {1}, counts.most_common(3)
    for case in range(1, 41):
        seqs = [b["seq"] for b in receiver.bodies if b["case"] == case]
        assert seqs == list(range(1, 11))
