"""``gridsentinel hub cluster-config``: write the NATS server configuration of every node of a district."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hub.cluster.natsconf import DEFAULT_PARTITIONS, NatsNode, node_config


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the command's options."""
    parser.add_argument(
        "--node",
        action="append",
        required=True,
        metavar="NAME=HOST",
        help="a server of the cluster (repeat; three for a district): name and the address the others reach it at",
    )
    parser.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS, help="partitions (default %(default)s)")
    parser.add_argument("--client-port", type=int, default=4222, help="NATS client port (hub replicas)")
    parser.add_argument("--cluster-port", type=int, default=6222, help="route port between the servers")
    parser.add_argument("--mqtt-port", type=int, default=1883, help="MQTT port (devices)")
    parser.add_argument("--monitor-port", type=int, default=8222, help="HTTP monitoring port (0: none)")
    parser.add_argument("--store-dir", type=Path, default=Path("/var/lib/nats"), help="JetStream storage on each node")
    parser.add_argument("--out", type=Path, default=Path("."), help="directory for NAME.conf files")
    parser.set_defaults(func=run)


def parse_nodes(specs: list[str], args: argparse.Namespace) -> list[NatsNode]:
    """``NAME=HOST`` specs as nodes on the given ports."""
    nodes = []
    for spec in specs:
        name, sep, host = spec.partition("=")
        if not sep or not name or not host:
            raise ValueError(f"--node {spec!r}: expected NAME=HOST")
        monitor = args.monitor_port or None
        nodes.append(NatsNode(name, host, args.client_port, args.cluster_port, args.mqtt_port, monitor))
    if len({n.name for n in nodes}) != len(nodes):
        raise ValueError("node names must differ")
    return nodes


def run(args: argparse.Namespace) -> int:
    """Write one configuration file per node and print the replicas' ``--cluster`` URL."""
    try:
        nodes = parse_nodes(args.node, args)
    except ValueError as exc:
        print(f"gridsentinel hub cluster-config: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for node in nodes:
        path = args.out / f"{node.name}.conf"
        path.write_text(node_config(node, nodes, args.store_dir, partitions=args.partitions))
        print(f"wrote {path}")
    urls = ",".join(n.client_url for n in nodes)
    print(f"replicas: gridsentinel hub run --cluster {urls} --cluster-partitions {args.partitions} --client-id NAME")
    return 0
