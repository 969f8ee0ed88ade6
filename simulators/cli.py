"""``gridsentinel sim``: simulated communities for developers, without hardware.

- ``sim community --grids N --out FILE``: write a seeded community (grids, people, devices)
  and optionally the hub's case workflow YAML;
- ``sim agents --community FILE --mqtt-url URL``: run one real edge agent per device of a
  community file against a broker (e.g. a hub started with ``gridsentinel hub run``);
- ``sim list``: the shipped scenarios;
- ``sim run SCENARIO [--speed K]``: run a scenario (shipped name or YAML file) with a real
  broker, hub and agents, live progress, a summary table; exit code 1 when an assertion fails;
- ``sim load --url URL ...``: raw MQTT telemetry load from many connections (benchmarks).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Final

#: one line of ``gridsentinel --help``
SUMMARY: Final = "run simulated communities and scenarios"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``sim`` subcommands."""
    sub = parser.add_subparsers(dest="sim_command", metavar="SIM_COMMAND", required=True)

    gen = sub.add_parser("community", help="write a seeded community YAML", description="Write a seeded community.")
    gen.add_argument("--grids", type=int, default=10, help="unit grids (1..999, default 10)")
    gen.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    gen.add_argument("--site", default="sunrise", help="MQTT site id of every device (default sunrise)")
    gen.add_argument("--interval", type=float, default=10.0, help="seconds between readings (default 10)")
    gen.add_argument("--out", type=Path, default=Path("community.yaml"), help="YAML file to write")
    gen.add_argument("--workflow-out", type=Path, help="also write the hub's cases YAML here")
    gen.set_defaults(func=write_community_cmd)

    run = sub.add_parser(
        "agents",
        help="run a community's devices as real edge agents against a broker",
        description="Run one edge agent per device of a community file until Ctrl-C.",
    )
    run.add_argument("--community", type=Path, required=True, help="community YAML (from 'sim community')")
    run.add_argument("--mqtt-url", default="mqtt://127.0.0.1:1883", help="broker URL (default mqtt://127.0.0.1:1883)")
    run.add_argument(
        "--outbox-dir", type=Path, help="keep a durable SQLite outbox per device here (default: in memory)"
    )
    run.add_argument("--limit", type=int, default=0, help="run only the first N devices (default all)")
    run.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (default: Ctrl-C)")
    run.set_defaults(func=run_community_cmd)

    lst = sub.add_parser("list", help="name the shipped scenarios", description="List the shipped scenarios.")
    lst.set_defaults(func=list_cmd)

    scen = sub.add_parser(
        "run",
        help="run a scenario: real broker, hub and agents, faults, people, assertions",
        description=(
            "Run a scenario (a shipped name from 'sim list' or a YAML file): start a broker (mosquitto, "
            "or the embedded one), a hub process and one edge agent per simulated device, play the "
            "timeline, check the assertions and print a summary. Exit code 0: every assertion held; "
            "1: one failed; 2: the scenario or the setup is invalid."
        ),
    )
    scen.add_argument("scenario", help="shipped scenario name or path to a scenario YAML")
    scen.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="compress time K-fold: timeline, device intervals and fault durations (up to the scenario's "
        "max_speed; the hub's SLA clock is not compressed)",
    )
    scen.add_argument(
        "--broker",
        choices=("auto", "mosquitto", "embedded"),
        default="auto",
        help="broker (default: mosquitto if installed)",
    )
    scen.add_argument(
        "--workdir", type=Path, help="keep hub data, outboxes and logs here (default: a temp dir, removed)"
    )
    scen.add_argument("--json", action="store_true", help="print the report as one JSON object instead of a table")
    scen.add_argument("--quiet", action="store_true", help="no live progress on stderr")
    scen.add_argument(
        "--verbose", action="store_true", help="keep the agents' and runner's INFO logs (default: warnings only)"
    )
    scen.set_defaults(func=run_scenario_cmd)

    load = sub.add_parser(
        "load", help="raw MQTT telemetry load from many connections", description="Run the MQTT load generator."
    )
    from simulators.loadgen import add_arguments

    add_arguments(load)
    load.set_defaults(func=load_cmd)


def write_community_cmd(args: argparse.Namespace) -> int:
    """Write a generated community (and its workflow)."""
    from simulators.community import CommunityError, generate_community, write_community

    try:
        community = generate_community(args.grids, seed=args.seed, site=args.site, interval_s=args.interval)
    except CommunityError as exc:
        print(f"gridsentinel sim community: {exc}", file=sys.stderr)
        return 2
    path = write_community(args.out, community)
    if args.workflow_out:
        from simulators.community_workflow import write_workflow

        write_workflow(args.workflow_out, community)
    print(f"{path}: {len(community.grids)} grids, {len(community.devices)} devices, {len(community.people)} people")
    return 0


def run_community_cmd(args: argparse.Namespace) -> int:
    """Run the community's agents until Ctrl-C or ``--duration``."""
    from edge.agent import Agent
    from edge.config import ConfigError, parse_config
    from simulators.community import CommunityError, agent_config, load_community

    try:
        community = load_community(args.community)
    except (CommunityError, OSError) as exc:
        print(f"gridsentinel sim agents: {exc}", file=sys.stderr)
        return 2
    devices = list(community.devices)[: args.limit or None]
    agents: list[Agent] = []
    try:
        for entry in devices:
            device_id = entry["device"]["id"]
            outbox = (
                {"backend": "sqlite", "path": str(args.outbox_dir / f"{device_id}.db")}
                if args.outbox_dir
                else {"backend": "memory"}
            )
            if args.outbox_dir:
                args.outbox_dir.mkdir(parents=True, exist_ok=True)
            agents.append(Agent(parse_config(agent_config(entry, args.mqtt_url, outbox=outbox), source=device_id)))
    except ConfigError as exc:
        print(f"gridsentinel sim agents: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for agent in agents:
            agent.start()
        logging.getLogger(__name__).info("%d simulated devices publishing to %s", len(agents), args.mqtt_url)
        deadline = time.monotonic() + args.duration if args.duration > 0 else float("inf")
        while not stop.wait(0.5) and time.monotonic() < deadline:
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for agent in agents:
            agent.stop(timeout=3.0)
    return 0


def load_cmd(args: argparse.Namespace) -> int:
    """Run the load generator."""
    from simulators.loadgen import run_args

    return run_args(args)


def list_cmd(_args: argparse.Namespace) -> int:
    """Print the shipped scenarios: name, duration, one-line description."""
    from simulators.scenario import ScenarioError, load_scenario, shipped

    for name, path in shipped().items():
        try:
            sc = load_scenario(path)
        except ScenarioError as exc:
            print(f"{name:28s} INVALID: {exc}")
            continue
        speed = f", --speed up to {sc.max_speed:g}" if sc.max_speed > 1 else ""
        print(f"{name:28s} {sc.duration:>5g}s{speed:22s}  {sc.description}")
    return 0


def run_scenario_cmd(args: argparse.Namespace) -> int:
    """Run one scenario and print its summary."""
    import httpx

    from simulators.runner import RunOptions, ScenarioRunner
    from simulators.scenario import ScenarioError, load_scenario
    from simulators.scenario_report import print_report, progress_display, report_json
    from simulators.servers import ServerError

    if not args.verbose:
        # partitions and restarts make every agent log its reconnects: expected, and the summary says what happened
        logging.getLogger().setLevel(logging.WARNING)
        logging.getLogger("edge").setLevel(logging.ERROR)
    try:
        scenario = load_scenario(args.scenario)
        runner = ScenarioRunner(scenario, RunOptions(speed=args.speed, broker=args.broker, workdir=args.workdir))
    except ScenarioError as exc:
        print(f"gridsentinel sim run: {exc}", file=sys.stderr)
        return 2
    try:
        with progress_display(scenario, enabled=not args.quiet) as progress:
            report = runner.run(progress)
    except (ScenarioError, ServerError, KeyError, httpx.HTTPError) as exc:
        print(f"gridsentinel sim run: {scenario.name}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(report_json(report))
    else:
        print_report(report)
    return 0 if report.ok else 1
