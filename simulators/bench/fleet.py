"""``gridsentinel bench fleet``: how many simulated devices one process sustains at 1 message per 10 s each.

Paho with a thread per device stops at a few hundred devices, so the fleet mode here
is one asyncio loop holding one raw MQTT 3.1.1 connection per device (client id = device
id, QoS 1, PUBACKs counted). Payloads are real :mod:`edge.wire` telemetry whose readings
come from the sim sensors' seeded signal models (:mod:`simulators.profiles`). Devices
are spread evenly over the interval; one scheduler publishes whoever is due.

The bench starts its own mosquitto (config that never drops; RLIMIT_NOFILE raised),
then ramps: for each fleet size it connects every device, runs ``--seconds``, and
checks that the PUBACKed rate is at least 95 % of the target and the loop lag p99
stays under 0.5 s. ``devices`` in the result is the largest size that held.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from edge import wire
from hub.mqtt.codec import FrameBuffer, decode_body, encode, publish_header
from hub.mqtt.packets import Connack, Connect, Disconnect, MalformedPacketError, Puback
from simulators.profiles import PROFILES, metric_seed

logger = logging.getLogger(__name__)
DEFAULT_STEPS = "1000,2500,5000,10000"
RATE_OK = 0.95
LAG_OK_S = 0.5


class FleetError(RuntimeError):
    """The fleet could not connect."""


_DISCONNECT = encode(Disconnect())


class RawMqttDevice(asyncio.Protocol):
    """One device's raw MQTT 3.1.1 connection (client id = device id): CONNACK and PUBACKs counted."""

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        self.transport: asyncio.Transport | None = None
        self.connected: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.frames = FrameBuffer()
        self.acked = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(encode(Connect(self.device_id, keepalive=0)))  # clean session, keepalive off

    def data_received(self, data: bytes) -> None:
        try:
            packets = [decode_body(header, body) for header, body in self.frames.frames(data)]
        except MalformedPacketError as exc:
            raise FleetError(f"{self.device_id}: malformed packet from the broker: {exc}") from exc
        for packet in packets:
            if isinstance(packet, Connack) and not self.connected.done():
                if packet.return_code == 0:
                    self.connected.set_result(True)
                else:
                    self.connected.set_exception(FleetError(f"{self.device_id}: CONNACK {packet.return_code:02x}"))
            elif isinstance(packet, Puback):
                self.acked += 1

    def send(self, topic: str, packet_id: int, payload: bytes, *, retain: bool = False) -> None:
        """PUBLISH ``payload`` to ``topic`` at QoS 1."""
        assert self.transport is not None
        self.transport.write(publish_header(topic.encode(), 1, packet_id, len(payload), retain=retain) + payload)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.connected.done():
            self.connected.set_exception(FleetError(f"{self.device_id}: connection lost: {exc}"))


class _Device(RawMqttDevice):
    """A fleet device: smoke-sensor telemetry from the seeded signal models."""

    def __init__(self, device_id: str, seed: int) -> None:
        super().__init__(device_id)
        self.topic = wire.topic("fleet", device_id, wire.Channel.TELEMETRY)
        self.seq = 0
        profile = PROFILES["smoke"]
        self.signals = [(m.name, m.build(metric_seed(seed, m.name), time.time()), m.digits) for m in profile.metrics]

    def publish(self) -> None:
        """Send one telemetry message with the device's current readings."""
        now_ms = int(time.time() * 1000)
        self.seq += 1
        metrics = {name: round(sig.at(now_ms / 1000.0), digits) for name, sig, digits in self.signals}
        payload = wire.encode(wire.Telemetry(self.seq, now_ms, (wire.Point(now_ms, metrics),)))
        self.send(self.topic, self.seq % 65535 + 1, payload)


@dataclass(frozen=True, slots=True)
class StepResult:
    """One fleet size's outcome."""

    devices: int
    target_msgs_per_s: float
    msgs_per_s: float
    acked_per_s: float
    lag_p99_s: float
    lag_max_s: float
    connect_s: float
    ok: bool


async def _lag_probe(samples: list[float], stop: asyncio.Event, period: float = 0.05) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(period)
        samples.append(max(0.0, loop.time() - t - period))


async def run_step(port: int, devices: int, interval_s: float, seconds: float) -> StepResult:
    """Connect ``devices`` devices, publish at 1 per ``interval_s`` each for ``seconds``, disconnect."""
    loop = asyncio.get_running_loop()
    fleet: list[_Device] = []
    started = time.monotonic()
    gate = asyncio.Semaphore(256)

    async def connect(i: int) -> None:
        async with gate:
            device = _Device(f"fleet-{i:05d}", i)
            await loop.create_connection(lambda: device, "127.0.0.1", port)
            await asyncio.wait_for(device.connected, 30)
            fleet.append(device)

    await asyncio.gather(*(connect(i) for i in range(devices)))
    connect_s = time.monotonic() - started
    lags: list[float] = []
    stop = asyncio.Event()
    probe = asyncio.create_task(_lag_probe(lags, stop))
    # device k publishes at t0 + k * interval / devices + n * interval
    t0 = loop.time() + 0.1
    sent = 0
    end = t0 + seconds
    slot = interval_s / devices
    acked_before = sum(d.acked for d in fleet)
    n = 0
    while True:
        due = t0 + n * slot
        if due >= end:
            break
        now = loop.time()
        if due > now:
            await asyncio.sleep(min(due - now, 0.01))
            continue
        while n * slot + t0 <= now and t0 + n * slot < end:
            fleet[n % devices].publish()
            sent += 1
            n += 1
        await asyncio.sleep(0)
    elapsed = loop.time() - t0
    drain_deadline = time.monotonic() + 5
    while sum(d.acked for d in fleet) - acked_before < sent and time.monotonic() < drain_deadline:
        await asyncio.sleep(0.05)
    acked = sum(d.acked for d in fleet) - acked_before
    stop.set()
    await probe
    for d in fleet:
        if d.transport is not None:
            d.transport.write(_DISCONNECT)
            d.transport.close()
    await asyncio.sleep(0.2)
    lags.sort()
    p99 = lags[int(len(lags) * 0.99)] if lags else 0.0
    target = devices / interval_s
    rate, acked_rate = sent / elapsed, acked / elapsed
    ok = acked_rate >= RATE_OK * target and p99 < LAG_OK_S
    return StepResult(
        devices, target, round(rate, 1), round(acked_rate, 1), round(p99, 4), round(max(lags, default=0), 4),
        round(connect_s, 2), ok
    )  # fmt: skip


def raise_fd_limit(want: int) -> int:
    """Raise RLIMIT_NOFILE towards ``want`` (up to the hard limit); return the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the fleet bench's options."""
    parser.add_argument(
        "--steps", default=DEFAULT_STEPS, help=f"fleet sizes to ramp through, comma-separated (default {DEFAULT_STEPS})"
    )
    parser.add_argument(
        "--interval", type=float, default=10.0, help="seconds between messages of a device (default 10)"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per fleet size (default 30)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (devices, msgs_per_s, steps)")
    parser.set_defaults(func=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    """Ramp through the fleet sizes against a fresh mosquitto; print a table or JSON."""
    from simulators.servers import Mosquitto, ServerError

    try:
        steps = sorted({int(s) for s in args.steps.split(",") if s.strip()})
    except ValueError:
        print(f"gridsentinel bench fleet: --steps {args.steps!r} must be comma-separated integers", file=sys.stderr)
        return 2
    if not steps or steps[0] < 1 or args.interval <= 0 or args.seconds <= 0:
        print("gridsentinel bench fleet: --steps, --interval and --seconds must be positive", file=sys.stderr)
        return 2
    limit = raise_fd_limit(max(steps) * 2 + 1024)
    if limit < max(steps) + 256:
        print(f"gridsentinel bench fleet: open-file limit {limit} is too low for {max(steps)} devices", file=sys.stderr)
        return 2
    results: list[StepResult] = []
    with tempfile.TemporaryDirectory(prefix="gs-fleet-") as tmp:
        try:
            broker = Mosquitto(Path(tmp))
            broker.start()
        except ServerError as exc:
            print(f"gridsentinel bench fleet: {exc}", file=sys.stderr)
            return 2
        try:
            for n in steps:
                result = asyncio.run(run_step(broker.port, n, args.interval, args.seconds))
                results.append(result)
                if not args.json:
                    print(f"  {n} devices: {result.acked_per_s:.0f}/{result.target_msgs_per_s:.0f} msg/s acked, "
                          f"lag p99 {result.lag_p99_s:.3f}s {'ok' if result.ok else 'NOT SUSTAINED'}",
                          file=sys.stderr, flush=True)  # fmt: skip
                if not result.ok:
                    break
        except (FleetError, OSError) as exc:
            print(f"gridsentinel bench fleet: {exc}", file=sys.stderr)
            return 1
        finally:
            broker.kill()  # a throwaway broker: no need to save its sessions
    best = max((r for r in results if r.ok), key=lambda r: r.devices, default=None)
    summary = {
        "devices": best.devices if best else 0,
        "msgs_per_s": best.acked_per_s if best else 0.0,
        "interval_s": args.interval,
        "seconds_per_step": args.seconds,
        "target_devices": 10_000,
        "steps": [asdict(r) for r in results],
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"{'devices':>8} {'target/s':>9} {'sent/s':>8} {'acked/s':>8} {'lag p99':>8} {'lag max':>8} "
          f"{'connect':>8}  sustained")  # fmt: skip
    for r in results:
        print(f"{r.devices:>8} {r.target_msgs_per_s:>9.0f} {r.msgs_per_s:>8.0f} {r.acked_per_s:>8.0f} "
              f"{r.lag_p99_s:>7.3f}s {r.lag_max_s:>7.3f}s {r.connect_s:>7.1f}s  {'yes' if r.ok else 'no'}")  # fmt: skip
    print(f"one process sustains {summary['devices']} devices at 1 msg / {args.interval:g} s "
          f"({summary['msgs_per_s']} msg/s acked by mosquitto; target 10,000)")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m simulators.bench.fleet``."""
    parser = argparse.ArgumentParser(prog="gridsentinel bench fleet", description=__doc__)
    configure(parser)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
