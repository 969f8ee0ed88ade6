"""A NATS cluster of real ``nats-server`` processes on free loopback ports, for tests and the cluster bench.

Each node runs the configuration :mod:`hub.cluster.natsconf` generates for a district (MQTT listener,
JetStream, routes, partition mappings) in its own directory; :meth:`NatsCluster.start` returns once
every node accepts clients and JetStream has a meta leader.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import nats
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import KeyDeletedError, KeyNotFoundError, NoKeysError

from hub.cluster.natsconf import NatsNode, node_config
from simulators.servers.base import (
    MissingBinary,
    ServerError,
    find_binary,
    free_port,
    kill_process,
    port_open,
    terminate_process,
    wait_until,
)


@contextmanager
def solo_nats(workdir: Path, partitions: int = 4) -> Iterator[NatsNode]:
    """One nats-server (JetStream, MQTT listener, ``partitions`` mappings) on free loopback ports, in
    ``workdir``, until the block ends; ready once its client and MQTT ports accept connections."""
    binary = find_binary("nats-server")
    if binary is None:
        raise MissingBinary("nats-server not found: install the Debian package 'nats-server'")
    node = NatsNode("solo", "127.0.0.1", free_port(), free_port(), free_port())
    conf = workdir / "solo.conf"
    conf.write_text(node_config(node, [node], workdir / "js", partitions=partitions))
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: port_open(node.client_port) and port_open(node.mqtt_port), 15, what="nats-server")
        yield node
    finally:
        terminate_process(proc, 10)


class NatsCluster:
    """``size`` nats-server nodes forming one cluster, each with MQTT and JetStream."""

    def __init__(self, workdir: Path, size: int = 3, partitions: int = 12, binary: str | None = None) -> None:
        found = binary or find_binary("nats-server")
        if found is None:
            raise MissingBinary("nats-server not found: install the Debian package 'nats-server'")
        self.binary = found
        self.workdir = workdir
        self.partitions = partitions
        self.nodes = [
            NatsNode(f"n{i}", "127.0.0.1", free_port(), free_port(), free_port(), free_port()) for i in range(size)
        ]
        self.procs: dict[str, subprocess.Popen[bytes] | None] = {n.name: None for n in self.nodes}

    @property
    def client_urls(self) -> str:
        """Every node's client URL, comma-separated (what ``hub run --cluster`` takes)."""
        return ",".join(n.client_url for n in self.nodes)

    def live_urls(self) -> list[str]:
        """Client URLs of the nodes running now (a client given a stopped node's URL may pick it first)."""
        return [n.client_url for n in self.nodes if (p := self.procs.get(n.name)) is not None and p.poll() is None]

    def config_path(self, node: NatsNode) -> Path:
        """Where ``node``'s generated configuration is written."""
        return self.workdir / f"{node.name}.conf"

    def start(self, timeout: float = 30.0) -> None:
        """Write every node's configuration, start them all, wait for the cluster to serve JetStream."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for node in self.nodes:
            self.start_node(node.name, wait=False)
        deadline = time.monotonic() + timeout
        while not all(port_open(n.client_port) and port_open(n.mqtt_port) for n in self.nodes):
            if time.monotonic() > deadline:
                raise ServerError(f"nats cluster did not start (logs in {self.workdir})")
            time.sleep(0.1)
        asyncio.run(self._wait_jetstream(deadline))

    async def _wait_jetstream(self, deadline: float) -> None:
        nc = await nats.connect(servers=[n.client_url for n in self.nodes], connect_timeout=2)
        try:
            js = nc.jetstream(timeout=2)
            while True:
                try:
                    await js.account_info()
                    return
                except Exception as exc:  # no meta leader yet
                    if time.monotonic() > deadline:
                        raise ServerError(f"JetStream not ready: {exc}") from exc
                    await asyncio.sleep(0.2)
        finally:
            await nc.close()

    def start_node(self, name: str, *, wait: bool = True) -> None:
        """(Re)start node ``name`` with its generated configuration."""
        node = self._node(name)
        store = self.workdir / node.name / "jetstream"
        store.mkdir(parents=True, exist_ok=True)
        self.config_path(node).write_text(node_config(node, self.nodes, store, partitions=self.partitions))
        log = (self.workdir / f"{node.name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [self.binary, "-c", str(self.config_path(node))], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        if wait:
            deadline = time.monotonic() + 15
            while not port_open(node.client_port):
                if time.monotonic() > deadline:
                    raise ServerError(f"nats node {name} did not restart")
                time.sleep(0.1)

    def stop_node(self, name: str, timeout: float = 10.0) -> None:
        """SIGTERM node ``name`` (lame-duck free shutdown) and wait for it."""
        terminate_process(self.procs.get(name), timeout)
        self.procs[name] = None

    def stop(self) -> None:
        """Stop every node."""
        for name in list(self.procs):
            self.stop_node(name)

    def _node(self, name: str) -> NatsNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)


class ReplicaProcess:
    """One ``gridsentinel hub run --cluster`` replica in a child process (kill -9 able); with ``cluster_urls``
    starting ``mqtt://``, a single hub on that broker instead (the bench's baseline)."""

    def __init__(
        self,
        replica_id: str,
        data_dir: Path,
        cluster_urls: str,
        state_url: str,
        *,
        partitions: int,
        influx: tuple[str, str] | None = None,
        admin_token: str = "gst_cluster-admin-token-0123456789abcdefghijklmn",
    ) -> None:
        self.replica_id = replica_id
        self.data_dir = data_dir
        self.cluster_urls = cluster_urls
        self.state_url = state_url
        self.partitions = partitions
        self.influx = influx
        self.admin_token = admin_token
        self.http_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """The replica's REST API."""
        return f"http://127.0.0.1:{self.http_port}"

    def launch(self) -> None:
        """Start the process (see :meth:`wait_ready`)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "edge.cli", "hub", "run", "--client-id", self.replica_id]
        if self.cluster_urls.startswith("mqtt://"):
            cmd += ["--mqtt-url", self.cluster_urls]
        else:
            cmd += ["--cluster", self.cluster_urls, "--cluster-partitions", str(self.partitions)]
        cmd += ["--state-url", self.state_url, "--data-dir", str(self.data_dir), "--http-port", str(self.http_port)]
        if self.influx is not None:
            cmd += ["--series", "influxdb-v1", "--series-url", self.influx[0], "--series-db", self.influx[1]]
        env = {**os.environ, "GRIDSENTINEL_ADMIN_TOKEN": self.admin_token}
        log = (self.data_dir / "hub.log").open("ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
        log.close()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until ``/healthz`` says the replica is connected to the cluster."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                tail = (self.data_dir / "hub.log").read_text(errors="replace")[-3000:]
                raise ServerError(f"replica {self.replica_id} exited:\n{tail}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1.0).json().get("broker_connected"):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.1)
        raise ServerError(f"replica {self.replica_id} not ready within {timeout:g}s ({self.data_dir / 'hub.log'})")

    @property
    def pid(self) -> int | None:
        """The process id while it runs."""
        return None if self.proc is None else self.proc.pid

    def kill(self) -> None:
        """SIGKILL: the replica dies with whatever it had in hand."""
        kill_process(self.proc)

    def terminate(self) -> None:
        """Send SIGTERM without waiting (to stop several replicas together, then :meth:`stop` each)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM and wait (the replica stores and acks its batches, gives its leases back)."""
        terminate_process(self.proc, timeout)
        self.proc = None


def start_replicas(replicas: Sequence[ReplicaProcess]) -> None:
    """Launch every replica, then wait for each: they start together (each registers the same
    administrator token at once, as a fleet started by systemd does)."""
    for replica in replicas:
        replica.launch()
    for replica in replicas:
        replica.wait_ready()


def stop_replicas(replicas: Sequence[ReplicaProcess]) -> None:
    """SIGTERM to every replica at once, then wait for each (they hand back their leases together)."""
    for replica in replicas:
        replica.terminate()
    for replica in replicas:
        replica.stop()


async def lease_holders(
    servers: list[str], keys: Iterable[str] | None = None, bucket: str = "gs_leases", attempts: int = 3
) -> dict[str, str]:
    """Lease key -> holder, as the cluster's KV bucket has them now.

    With ``keys``, each is read directly (no consumer is created: listing the keys creates one, and on
    two loaded cores with a node just stopped that request can outlast its 5 s timeout); a JetStream
    request that times out is tried again, ``attempts`` times in all.
    """
    for attempt in range(attempts):
        try:
            return await _lease_holders(servers, None if keys is None else list(keys), bucket)
        except NatsTimeoutError:
            if attempt == attempts - 1:
                raise
    return {}


async def _lease_holders(servers: list[str], keys: list[str] | None, bucket: str) -> dict[str, str]:
    nc = await nats.connect(servers=servers, connect_timeout=2)
    try:
        kv = await nc.jetstream(timeout=5).key_value(bucket)
        if keys is None:
            try:
                keys = await kv.keys()
            except NoKeysError:
                return {}
        out = {}
        for key in keys:
            try:
                entry = await kv.get(key)
            except (KeyNotFoundError, KeyDeletedError):  # never held, released, or expired since the listing
                continue
            if entry.value:
                out[key] = entry.value.decode()
        return out
    finally:
        await nc.close()
