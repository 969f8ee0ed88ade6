"""The ``gridsentinel`` command: one entry point, a subcommand per part of the system.

Each subcommand lives in its own module with ``configure(parser)``, which adds
its arguments and sets ``func`` (called with the parsed args, returning the exit
code). Modules are imported lazily and must keep heavy imports inside their
functions, so ``--help`` stays fast and an edge-only install still works: a
group whose extra is missing says so instead of crashing.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Final

#: subcommand -> (module, one-line help)
COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "demo": ("hub.demo", "run a whole simulated community: embedded broker and stores, hub, operator page"),
    "hub": ("hub.cli", "run the hub: MQTT ingest, storage, incidents, cases, REST API and operator page"),
    "edge": ("edge.agent_cli", "run or check the edge agent on a device"),
    "sim": ("simulators.cli", "run simulated communities and scenarios"),
    "bench": ("edge.bench_cli", "measure speed and memory; prints a table, or JSON with --json"),
}

#: install extra that provides each command group
EXTRAS: Final[dict[str, str]] = {"demo": "all", "hub": "hub", "edge": "edge", "sim": "sim", "bench": "all"}


def _unavailable(name: str, reason: str) -> argparse.Namespace:
    def run(_args: argparse.Namespace) -> int:
        print(
            f"gridsentinel {name}: not available in this install ({reason}).\n"
            f"Install it with: pip install 'gridsentinel[{EXTRAS[name]}]'",
            file=sys.stderr,
        )
        return 2

    return argparse.Namespace(func=run)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, one subparser per command group."""
    parser = argparse.ArgumentParser(
        prog="gridsentinel",
        description="GridSentinel: IoT edge gateway and monitoring stack for grid-based community governance.",
        epilog="Run 'gridsentinel COMMAND --help' for the options of each command.",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            sub.set_defaults(func=_unavailable(name, f"{exc.name or exc} is missing").func)
            continue
        module.configure(sub)
    return parser


def configure_logging(level: int) -> None:
    """The log format of every command. Below DEBUG the HTTP clients' one INFO line per request (a
    series write every 0.2 s, a webhook, a poll) is left out: it would drown what an operator reads."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    if level > logging.DEBUG:
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gridsentinel`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(getattr(logging, str(args.log_level).upper(), logging.INFO))
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
