"""Broker throughput: one paho publisher, one paho subscriber, QoS 1, through a broker in its own process.

``python -m simulators.bench.broker [--target embedded|mosquitto|both] [--messages N] [--json]``.
The figure is messages per second from the first publish to the last message received.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

from simulators.servers import UNLIMITED_MOSQUITTO_CONF, EmbeddedBrokerProcess, Mosquitto, ServerProcess

DEFAULT_MESSAGES = 50_000
DEFAULT_PAYLOAD = 100
TOPIC = "bench/broker/x"


def _subscriber(port: int, qos: int, count: int, ready: Any, results: Any) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    state = {"n": 0, "first": 0.0, "last": 0.0}

    def on_message(_c: Any, _u: Any, _msg: Any) -> None:
        now = time.time()
        if not state["n"]:
            state["first"] = now
        state["n"] += 1
        state["last"] = now
        if state["n"] >= count:
            client.disconnect()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-sub")
    client.on_message = on_message
    client.on_subscribe = lambda *_a: ready.set()
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.subscribe(TOPIC, qos)
    deadline = time.monotonic() + 120
    while state["n"] < count and time.monotonic() < deadline:
        client.loop(0.5)
    results.put((state["n"], state["first"], state["last"]))


def _raw_connect(port: int, client_id: str) -> Any:
    import socket

    from hub.mqtt.codec import encode
    from hub.mqtt.packets import Connack, Connect

    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(encode(Connect(client_id)))
    if sock.recv(4) != encode(Connack()):
        raise RuntimeError("CONNECT refused")
    return sock


def _raw_subscriber(port: int, qos: int, count: int, ready: Any, results: Any) -> None:
    """A minimal socket subscriber: parses PUBLISH frames and batches PUBACKs (measures the broker, not paho)."""
    from hub.mqtt.codec import PUBACK_HEAD, FrameBuffer, encode, next_frame, publish_layout
    from hub.mqtt.packets import Subscribe

    sock = _raw_connect(port, "bench-sub")
    sock.sendall(encode(Subscribe(1, ((TOPIC, qos),))))
    buf = sock.recv(5)  # SUBACK
    ready.set()
    stream = FrameBuffer()
    received, first, last = 0, 0.0, 0.0
    while received < count:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        buf = stream.feed(chunk)
        acks = []
        pos, n, need = 0, len(buf), 0
        while pos < n:
            start, end = next_frame(buf, pos)
            if end > n:
                need = end - pos
                break
            if buf[pos] & 0x06:
                _topic, payload_start = publish_layout(buf, start, end, 1)
                acks.append(PUBACK_HEAD + buf[payload_start - 2 : payload_start])
            pos = end
            received += 1
        stream.keep(buf, pos, need)
        if received and not first:
            first = time.time()
        last = time.time()
        if acks:
            sock.sendall(b"".join(acks))
    results.put((received, first, last))
    sock.close()


def _raw_publish(port: int, qos: int, count: int, payload_size: int) -> float:
    """Publish ``count`` messages from a pipelined socket client (window 1000); return the start time."""
    from hub.mqtt.codec import publish_header

    sock = _raw_connect(port, "bench-pub")
    payload = b"x" * payload_size
    topic = TOPIC.encode()
    start = time.time()
    sent = acked = 0
    pending = b""
    while acked < count if qos else sent < count:
        if sent < count and (not qos or sent - acked <= 750):
            batch = min(250, count - sent)
            frames = [
                publish_header(topic, qos, (i % 0xFFFF) + 1 if qos else None, payload_size) + payload
                for i in range(sent, sent + batch)
            ]
            sock.sendall(b"".join(frames))
            sent += batch
            continue
        pending += sock.recv(1 << 16)
        acked += len(pending) // 4  # only PUBACKs (4 bytes) come back
        pending = pending[len(pending) // 4 * 4 :]
    sock.close()
    return start


def _measure(port: int, qos: int, count: int, payload_size: int, client: str = "paho") -> dict[str, Any]:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    ctx = multiprocessing.get_context("spawn")
    ready, results = ctx.Event(), ctx.Queue()
    target = _raw_subscriber if client == "raw" else _subscriber  # "mixed": raw publisher, paho subscriber
    proc = ctx.Process(target=target, args=(port, qos, count, ready, results), daemon=True)
    proc.start()
    if not ready.wait(30):
        proc.kill()
        raise RuntimeError("subscriber did not subscribe")
    if client in ("raw", "mixed"):
        start = _raw_publish(port, qos, count, payload_size)
        received, _first, last = results.get(timeout=180)
        proc.join(10)
        return _row(count, received, qos, payload_size, last - start)
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub")
    publisher.max_inflight_messages_set(1000)
    publisher.max_queued_messages_set(0)
    acked = [0]
    publisher.on_publish = lambda *_a: acked.__setitem__(0, acked[0] + 1)
    publisher.connect("127.0.0.1", port)
    publisher.loop(0.1)
    payload = b"x" * payload_size
    start = time.time()
    # One thread drives the client: paho with loop_start() is ~2x slower (lock and GIL ping-pong).
    sent = 0
    deadline = time.monotonic() + 120
    while (acked[0] < count if qos else sent < count) and time.monotonic() < deadline:
        while sent < count and sent - acked[0] < 1000:
            publisher.publish(TOPIC, payload, qos)
            sent += 1
            if not qos:
                acked[0] += 1
        publisher.loop(0.01)
    published = time.time()
    received, _first, last = results.get(timeout=180)
    proc.join(10)
    publisher.disconnect()
    return _row(count, received, qos, payload_size, max(last, published) - start)


def _row(count: int, received: int, qos: int, payload_size: int, elapsed: float) -> dict[str, Any]:
    return {
        "messages": count,
        "received": received,
        "qos": qos,
        "payload_bytes": payload_size,
        "seconds": round(elapsed, 3),
        "msg_per_s": round(received / elapsed) if elapsed > 0 else 0,
    }


def _run_target(target: str, qos: int, count: int, payload_size: int, client: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        broker: ServerProcess
        if target == "embedded":
            broker = EmbeddedBrokerProcess(Path(tmp))
        else:
            broker = Mosquitto(Path(tmp), persistence=False, limits=UNLIMITED_MOSQUITTO_CONF)
        broker.start(timeout=10)
        try:
            row = _measure(broker.port, qos, count, payload_size, client)
        finally:
            broker.stop()
    return {"target": target, "client": client, **row}


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's arguments (also used by ``gridsentinel bench broker``)."""
    parser.add_argument("--target", choices=["embedded", "mosquitto", "both"], default="both")
    parser.add_argument("--messages", type=int, default=DEFAULT_MESSAGES)
    parser.add_argument("--payload", type=int, default=DEFAULT_PAYLOAD, help="payload bytes")
    parser.add_argument("--qos", type=int, choices=[0, 1], default=1)
    parser.add_argument(
        "--client",
        choices=["paho", "raw", "mixed", "all"],
        default="all",
        help="paho-mqtt clients; minimal pipelined socket clients (measures the broker itself);"
        " or a socket publisher with a paho subscriber",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print a table (or JSON)."""
    targets = ["embedded", "mosquitto"] if args.target == "both" else [args.target]
    clients = ["paho", "mixed", "raw"] if args.client == "all" else [args.client]
    rows = [_run_target(t, args.qos, args.messages, args.payload, c) for c in clients for t in targets]
    if args.json:
        print(json.dumps({"benchmark": "broker", "rows": rows}))
        return 0
    print(f"{'target':<10} {'client':<6} {'qos':>3} {'messages':>9} {'received':>9} {'seconds':>8} {'msg/s':>8}")
    for row in rows:
        print(
            f"{row['target']:<10} {row['client']:<6} {row['qos']:>3} {row['messages']:>9} {row['received']:>9}"
            f" {row['seconds']:>8} {row['msg_per_s']:>8}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m simulators.bench.broker``."""
    parser = argparse.ArgumentParser(prog="python -m simulators.bench.broker", description=__doc__)
    configure(parser)
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
