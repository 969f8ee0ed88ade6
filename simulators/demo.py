"""``gridsentinel demo``: a whole simulated community on one machine.

Starts the hub with its embedded MQTT broker, SQLite state and embedded series
store, then one real edge :class:`~edge.agent.Agent` per simulated device (each
with its own durable SQLite outbox), all in this process. The community
(grids, people, devices) is generated from a seed and written to the data dir
as ``community.yaml``; its case workflow goes to ``cases.yaml``, which the hub's
case plug-in reads. Ctrl-C stops the agents first (they say goodbye with a
graceful offline status), then the hub.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from edge.cli import configure_logging
from hub.context import need

if TYPE_CHECKING:
    from edge.agent import Agent
    from hub.service import Hub
    from simulators.community import Community

#: one line of ``gridsentinel --help``
SUMMARY: Final = "run a whole simulated community: embedded broker and stores, hub, operator page"

logger = logging.getLogger(__name__)

#: Device kinds of the demo and their share of each grid's devices.
DEMO_SHARES: Final[dict[str, float]] = {
    "camera": 0.15,
    "kiosk": 0.15,
    "smoke": 0.15,
    "env": 0.1,
    "water": 0.1,
    "manhole": 0.1,
    "bin": 0.1,
    "gas": 0.05,
    "charger": 0.05,
    "hydrant": 0.05,
}

#: People the demo issues sign-in links for, and the page each link opens (the generated community has them).
DEMO_SIGN_IN: Final = {"operator-01": "", "sup-01": "", "res-001": "resident"}


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the demo's options."""
    parser.add_argument("--http-port", type=int, default=8080, help="operator page and REST API port (default 8080)")
    parser.add_argument("--http-host", default="127.0.0.1", help="address the operator page listens on")
    parser.add_argument("--mqtt-port", type=int, default=1883, help="embedded MQTT broker port (default 1883)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("./gridsentinel-demo"),
        help="state DB, series, outboxes and the generated community (default ./gridsentinel-demo)",
    )
    parser.add_argument("--grids", type=int, default=3, help="unit grids in the community (default 3)")
    parser.add_argument("--devices", type=int, default=60, help="simulated devices in total (default 60)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the generated community (default 42)")
    parser.add_argument(
        "--interval", type=float, default=5.0, help="seconds between readings of each device (default 5)"
    )
    parser.add_argument(
        "--duration", type=float, default=0.0, help="stop by itself after this many seconds (default: until Ctrl-C)"
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="log to the terminal too (default: the terminal shows the URLs, sign-in links and warnings; "
        "the full log goes to DATA_DIR/demo.log)",
    )
    series = parser.add_argument_group(
        "series store", "where the demo's time series go (default: the embedded SQLite store); e.g. for Grafana"
    )
    series.add_argument(
        "--series", dest="series_backend", choices=("embedded", "influxdb-v1", "influxdb-v2"), help="series backend"
    )
    for name, text in (
        ("url", "InfluxDB URL, e.g. http://127.0.0.1:8086"),
        ("db", "InfluxDB v1 database"),
        ("token", "InfluxDB v2 token (or GRIDSENTINEL_SERIES_TOKEN)"),
        ("org", "InfluxDB v2 organisation"),
        ("bucket", "InfluxDB v2 bucket"),
    ):
        series.add_argument(f"--series-{name}", dest=f"series_{name}", help=text)
    parser.set_defaults(func=run_demo)


def demo_mix(grids: int, devices: int) -> dict[str, float]:
    """Per-grid expected counts so ``grids`` grids hold at least ``devices`` devices of every kind."""
    per_grid = math.ceil(devices / grids)
    counts = {kind: max(1, math.floor(per_grid * share)) for kind, share in DEMO_SHARES.items()}
    short = per_grid - sum(counts.values())
    kinds = list(DEMO_SHARES)
    for i in range(max(0, short)):
        counts[kinds[i % len(kinds)]] += 1
    return {kind: float(n) for kind, n in counts.items()}


def build_community(grids: int, devices: int, seed: int, interval_s: float) -> Community:
    """The demo community: ``grids`` grids and at least ``devices`` devices."""
    from simulators.community import generate_community

    return generate_community(grids, seed=seed, mix_per_grid=demo_mix(grids, devices), interval_s=interval_s)


def agent_configs(community: Community, mqtt_url: str, outbox_dir: Path) -> list[Any]:
    """Validated edge agent configs, one per device, each with a SQLite outbox in ``outbox_dir``."""
    from edge.config import parse_config
    from simulators.community import agent_config

    outbox_dir.mkdir(parents=True, exist_ok=True)
    configs = []
    for entry in community.devices:
        device_id = entry["device"]["id"]
        raw = agent_config(
            entry,
            mqtt_url,
            outbox={"backend": "sqlite", "path": str(outbox_dir / f"{device_id}.db")},
        )
        configs.append(parse_config(raw, source=f"community device {device_id}"))
    return configs


class Demo:
    """The hub plus one in-process agent per simulated device."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data_dir: Path = args.data_dir
        self.hub: Hub | None = None
        self.agents: list[Agent] = []
        self.stopping = threading.Event()

    def start(self) -> str:
        """Start hub and agents; return the operator page URL."""
        from edge.agent import Agent
        from hub.config import HubSettings
        from hub.service import Hub, tune_gc
        from simulators.community import write_community
        from simulators.community_workflow import write_workflow

        a = self.args
        self.data_dir.mkdir(parents=True, exist_ok=True)
        community = build_community(a.grids, a.devices, a.seed, a.interval)
        write_community(self.data_dir / "community.yaml", community)
        write_workflow(self.data_dir / "cases.yaml", community)
        settings = HubSettings(
            broker_port=a.mqtt_port,
            http_port=a.http_port,
            http_host=a.http_host,
            data_dir=self.data_dir,
            demo=True,
            default_interval_s=a.interval,
            **{
                name: getattr(a, name)
                for name in ("series_backend", "series_url", "series_db", "series_token", "series_org", "series_bucket")
                if getattr(a, name, None) is not None
            },
        )
        self.hub = Hub(settings)
        self.hub.start()
        tune_gc()
        mqtt_url = f"mqtt://127.0.0.1:{self.hub.mqtt_port}"
        configs = agent_configs(community, mqtt_url, self.data_dir / "outbox")
        self.agents = [Agent(config) for config in configs]
        # Agents start in parallel: camera boxes load their detector first.
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="demo-start") as pool:
            list(pool.map(lambda agent: agent.start(), self.agents))
        kinds: dict[str, int] = {}
        for entry in community.devices:
            kind = entry["device"]["kind"]
            kinds[kind] = kinds.get(kind, 0) + 1
        summary = ", ".join(f"{n} {kind}s" for kind, n in sorted(kinds.items()))
        logger.info(
            "demo community %s: %d grids, %d devices (%s)",
            community.community["name"],
            len(community.grids),
            len(self.agents),
            summary,
        )
        return f"http://{a.http_host}:{self.hub.http_port}/"

    def sign_in_links(self, url: str) -> list[tuple[str, str]]:
        """Issue demo tokens for the operator, a supervisor and a resident; their links ``url[page]?token=...``."""
        from hub.security.auth import TokenStore

        assert self.hub is not None and self.hub.ctx is not None
        tokens: TokenStore = need(self.hub.ctx.services.tokens, "tokens")
        people = need(self.hub.ctx.services.cases, "cases").directory.model().people
        return [
            (pid, f"{url}{page}?token={tokens.issue_token(pid, 'demo sign-in link')}")
            for pid, page in DEMO_SIGN_IN.items()
            if pid in people
        ]

    def stop(self) -> None:
        """Agents first (graceful offline), then the hub."""
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="demo-stop") as pool:
            list(pool.map(lambda agent: agent.stop(timeout=3.0), self.agents))
        self.agents.clear()
        if self.hub is not None:
            self.hub.stop()
            self.hub = None


def log_to_file(path: Path, *, quiet_terminal: bool) -> Path:
    """Send the whole log (INFO and up) to ``path``; with ``quiet_terminal`` the terminal keeps only
    warnings, so the first screen is the demo's URLs and sign-in links rather than start-up logging."""
    root = logging.getLogger()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    if quiet_terminal:
        for terminal in root.handlers:
            terminal.setLevel(max(terminal.level, logging.WARNING))
    root.addHandler(handler)
    return path


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo until Ctrl-C / SIGTERM (or ``--duration``)."""
    from hub.service import HubStartError

    if args.grids < 1 or args.devices < 1:
        print("gridsentinel demo: --grids and --devices must be at least 1", file=sys.stderr)
        return 2
    args.data_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_to_file(args.data_dir / "demo.log", quiet_terminal=not args.verbose)
    demo = Demo(args)
    previous = {sig: signal.signal(sig, lambda *_: demo.stopping.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            url = demo.start()
        except HubStartError as exc:
            print(f"gridsentinel demo: cannot start: {exc}", file=sys.stderr)
            return 1
        assert demo.hub is not None
        links = demo.sign_in_links(url)
        print(
            "\n".join(
                [
                    "",
                    f"  GridSentinel demo is running: {len(demo.agents)} simulated devices",
                    f"  operator page   {url}",
                    *(f"  sign in as {who:<13}{link}" for who, link in links),
                    *(
                        f"  API as {who:<17}curl -H 'Authorization: Bearer {link.partition('token=')[2]}' "
                        f"{url}api/v1/cases"
                        for who, link in links[:1]
                    ),
                    f"  devices (JSON)  {url}api/v1/devices  (no token needed: demo mode reads anonymously)",
                    f"  MQTT broker     mqtt://127.0.0.1:{demo.hub.mqtt_port}",
                    f"  data            {demo.data_dir.resolve()}",
                    f"  log             {log_file.resolve()}",
                    "  Press Ctrl-C to stop.",
                    "",
                ]
            ),
            flush=True,
        )
        deadline = time.monotonic() + args.duration if args.duration > 0 else math.inf
        while not demo.stopping.wait(0.5):
            if time.monotonic() >= deadline:
                break
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("stopping the demo ...", file=sys.stderr, flush=True)
        demo.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m simulators.demo``."""
    parser = argparse.ArgumentParser(prog="gridsentinel demo", description=__doc__)
    configure(parser)
    args = parser.parse_args(argv)
    configure_logging(logging.INFO)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
