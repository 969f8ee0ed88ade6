"""``gridsentinel bench``: benchmarks that print a table, or one JSON object with ``--json``.

Each benchmark module has ``configure(parser)`` and sets ``func``; it must accept
``--json``. Targets live in the benchmarks' output, not in timed tests.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Final

#: one line of ``gridsentinel --help``
SUMMARY: Final = "measure speed and memory; prints a table, or JSON with --json"

#: benchmark -> (module, one-line help)
BENCHES: Final[dict[str, tuple[str, str]]] = {
    "edge": ("simulators.bench.edge", "outbox enqueue/drain rates against a local broker and agent RSS"),
    "camera": ("simulators.bench.camera", "camera pipeline fps at 640x480 and CPU share at 10 fps"),
    "ingest": ("simulators.bench.ingest", "hub backlog drain and sustained ingest into a real store"),
    "incident": ("simulators.bench.incident", "event published -> incident stored latency under load"),
    "broker": ("simulators.bench.broker", "embedded MQTT broker throughput against mosquitto"),
    "series": ("simulators.bench.series", "series writer throughput and spool replay into each store"),
    "hostile": ("simulators.bench.hostile", "hub time per refused hostile message, per kind"),
    "fleet": ("simulators.bench.fleet", "how many simulated devices one process sustains"),
    "cameras": ("simulators.bench.cameras", "a street of 1,800 cameras and a tamper storm: hub lag, loss, camera view"),
    "cluster": ("simulators.bench.cluster", "hub replicas on a 3-node NATS cluster, one killed: takeover, loss, CPU"),
}


def configure(parser: argparse.ArgumentParser) -> None:
    """Add one subcommand per benchmark."""
    subparsers = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    for name, (module_name, help_text) in BENCHES.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            reason = f"{exc.name or exc} is missing"

            def run(_args: argparse.Namespace, name: str = name, reason: str = reason) -> int:
                print(f"gridsentinel bench {name}: not available ({reason})", file=sys.stderr)
                return 2

            sub.set_defaults(func=run)
            continue
        module.configure(sub)
