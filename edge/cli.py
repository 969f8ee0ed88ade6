"""The ``gridsentinel`` command: one entry point, a subcommand per part of the system.

The root stays in ``edge`` because an edge-only install on a device must have it; it imports
nothing above itself. Each part declares its command group in the ``gridsentinel.commands``
entry-point group (pyproject.toml): ``edge`` (the agent), ``hub``, and, from the developer
tools, ``sim``, ``demo`` and ``bench``. A group's module has ``SUMMARY`` (one line of help)
and ``configure(parser)``, which adds its arguments and sets ``func`` (called with the parsed
args, returning the exit code). Modules keep heavy imports inside their functions, so
``--help`` stays fast; a group whose extra is missing says so instead of crashing.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Final

#: the entry-point group every command group is declared in
COMMAND_GROUP: Final = "gridsentinel.commands"

#: the order of the groups in ``--help`` (the rest follow by name)
ORDER: Final = ("demo", "hub", "edge", "sim", "bench")

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
    found = {ep.name: ep for ep in entry_points(group=COMMAND_GROUP)}
    for name in sorted(found, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n)):
        try:
            module = found[name].load()
        except ImportError as exc:
            sub = subparsers.add_parser(name, help=f"(not installed: {exc.name or exc})")
            sub.set_defaults(func=_unavailable(name, f"{exc.name or exc} is missing").func)
            continue
        summary = str(getattr(module, "SUMMARY", ""))
        module.configure(subparsers.add_parser(name, help=summary, description=summary))
    return parser


def configure_logging(level: int) -> None:
    """The log format of every command. Below DEBUG the HTTP clients' one INFO line per request (a
    series write every 0.2 s, a webhook, a poll) and alembic's plugin and DDL chatter at start-up are
    left out: they would drown what an operator reads."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    if level > logging.DEBUG:
        for name in ("httpx", "httpcore", "alembic"):
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
