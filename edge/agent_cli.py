"""``gridsentinel edge``: run the agent, check a config, show the outbox, redact images.

``run`` speaks the systemd notify protocol itself (a datagram to
``$NOTIFY_SOCKET``: READY, WATCHDOG while healthy, STOPPING), so the unit can
use ``Type=notify`` and ``WatchdogSec`` without any extra dependency.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import logging
import sys
from pathlib import Path
from typing import Final

from edge.systemd import sd_notify, watchdog_seconds

#: one line of ``gridsentinel --help``
SUMMARY: Final = "run or check the edge agent on a device"

logger = logging.getLogger(__name__)


def _run(args: argparse.Namespace) -> int:
    from edge.agent import Agent
    from edge.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    from edge.drivers import DriverError, UnknownDriverError
    from edge.outbox import OutboxError

    try:
        agent = Agent(config, config_path=args.config)
        return agent.run(notify=sd_notify, watchdog_s=watchdog_seconds())
    except (OutboxError, UnknownDriverError, DriverError, OSError) as exc:
        logger.error("agent cannot start: %s", exc)
        print(f"gridsentinel edge run: {exc}", file=sys.stderr)
        return 1


def _driver_warnings(driver: object) -> list[str]:
    """Valid settings that still cannot work as meant (today: camera zones vs. min_person_px)."""
    # edge.camera.config and .scale are pure pydantic/arithmetic: safe on boxes without OpenCV.
    from edge.camera.config import CameraConfigBase
    from edge.camera.scale import geometry_warnings

    return geometry_warnings(driver) if isinstance(driver, CameraConfigBase) else []


def _check(args: argparse.Namespace) -> int:
    from edge.config import ConfigError, load_config, redacted

    try:
        config = load_config(args.file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    for i, driver in enumerate(config.drivers):
        for text in _driver_warnings(driver):
            print(f"warning: drivers[{i}] ({getattr(driver, 'type', '?')}): {text}", file=sys.stderr)
    if args.show:
        print(json.dumps(redacted(config), indent=2))
    else:
        print(
            f"{args.file}: ok (device {config.device.site}/{config.device.id}, kind {config.device.kind.value}, "
            f"{len(config.drivers)} driver(s), {len(config.rules)} rule(s), outbox {config.outbox.backend})"
        )
    return 0


def _status(args: argparse.Namespace) -> int:
    from edge.config import ConfigError, load_config
    from edge.outbox import read_stats

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if config.outbox.backend != "sqlite":
        print("outbox backend is memory: nothing on disk to show", file=sys.stderr)
        return 1
    path = Path(config.outbox.path)
    if not path.exists():
        print(f"no outbox file at {path} (agent never ran?)", file=sys.stderr)
        return 1
    stats = read_stats(path)
    if args.json:
        print(json.dumps({"device": config.device.id, "path": str(path), **dataclasses.asdict(stats)}))
        return 0
    print(f"device   {config.device.site}/{config.device.id}")
    print(f"outbox   {path}")
    print(f"epoch    {stats.epoch}")
    print(f"last seq {stats.last_seq}")
    print(f"pending  {stats.pending} ({stats.pending_bytes} bytes)")
    print(f"sent     {stats.sent} kept for replay ({stats.sent_bytes} bytes)")
    print(f"evicted  {stats.evicted_total} (reported as gap notices)")
    return 0


def _redact_unavailable(reason: str) -> argparse.Namespace:
    def run(_args: argparse.Namespace) -> int:
        print(f"gridsentinel edge redact needs gridsentinel[camera] ({reason})", file=sys.stderr)
        return 2

    return argparse.Namespace(func=run)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``edge`` subcommands."""
    sub = parser.add_subparsers(dest="edge_command", metavar="ACTION", required=True)

    run = sub.add_parser("run", help="run the agent in the foreground (systemd: Type=notify)")
    run.add_argument("--config", required=True, type=Path, help="agent config file (TOML)")
    run.set_defaults(func=_run)

    check = sub.add_parser("check-config", help="validate a config file; exit 2 naming each bad key")
    check.add_argument("file", type=Path, help="agent config file (TOML)")
    check.add_argument("--show", action="store_true", help="print the validated config, secrets redacted")
    check.set_defaults(func=_check)

    status = sub.add_parser("status", help="show the outbox: pending, sent, evicted, last seq, epoch")
    status.add_argument("--config", required=True, type=Path, help="agent config file (TOML)")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(func=_status)

    redact = sub.add_parser("redact", help="blur faces and burn privacy masks into images (camera boxes)")
    try:
        redact_cli = importlib.import_module("edge.camera.redact_cli")
    except ImportError as exc:
        redact.set_defaults(func=_redact_unavailable(f"{exc.name or exc} is missing").func)
    else:
        redact_cli.configure(redact)
