"""One hub replica of a district cluster: ingest fed by JetStream partitions instead of an MQTT session.

The replica keeps the hub's ingest pipeline (:class:`hub.ingest.Ingest`: dedup, gaps, registry,
sinks, series writer) and changes only where messages come from and when they are acknowledged:

- **Partitions.** Devices' MQTT publishes are mapped by nats-server onto ``gsp.<p>.<subject>``
  (:mod:`hub.cluster.natsconf`) and kept in the replicated stream ``GS_INGEST``. A replica owns a
  partition while it holds the lease ``part.<p>`` in the KV bucket (:mod:`hub.cluster.leases`) and
  reads it through the durable pull consumer ``gs-p<p>``. JetStream 2.9 has no exclusive consumer,
  so the lease is what makes one replica the only reader; the consumer is what keeps the position.
- **Acknowledgement after store.** A fetched batch is handled, its points handed to the series
  writer, and only once the writer holds them durably, the devices' rows (with the batch's seqs),
  dead letters, data-loss records and incident candidates are in the state DB, the batch's last
  message is acknowledged (``AckPolicy.ALL``: it acknowledges the batch).
- **Takeover.** A replica that dies stops renewing; its leases expire (TTL) and the survivors claim
  them. The new owner recreates the partition's consumer at the ack floor + 1, so delivery resumes
  exactly after the last acknowledged message, in order (what the dead replica had fetched but not
  acknowledged is not left to ack_wait and redelivered out of order behind newer messages). The
  owner loads that partition's device rows (their ``last_seq`` is the safe seq) and open incidents,
  so dedup, gaps and alarm clears continue where the dead replica's acknowledgements stopped.
- **Registry ownership.** The in-memory registry holds only the devices of owned partitions, so the
  hub's sweep marks stale, and writes rows for, only devices this replica owns.
- **Singleton jobs** (SLA sweep, webhook dispatch, ...) run on the replica holding ``job.<name>``.
- **Shared snapshots.** Evidence images go to the object store ``gs_snapshots`` (:mod:`hub.cluster.objects`)
  through the replica's NATS connection, so any replica serves what another received.

Where it lives: this module joins the cluster and runs the lease step (partitions to claim or give
back, singleton jobs); :mod:`hub.cluster.partitions` consumes, stores and acknowledges the partitions
owned; :mod:`hub.cluster.bridge` holds the NATS connection on the replica's event loop, which the hub's
threads use too (a batch runs through ingest on one thread beside the loop, where sinks may wait on NATS).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Final

from nats.js.api import KeyValueConfig, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from edge.wire import Channel, Command, encode, topic
from hub.cluster.bridge import NatsBridge
from hub.cluster.leases import LEASE_BUCKET, LeaseLost, LeaseTable
from hub.cluster.live import LiveRelay
from hub.cluster.natsconf import (
    STREAM_NAME,
    command_subject,
)
from hub.cluster.objects import JetStreamSnapshotBlobs
from hub.cluster.options import ClusterHost, ClusterOptions
from hub.cluster.partitions import PartitionSet
from hub.cluster.plan import fair_share, plan
from hub.ingest.sinks import DeviceRef

logger = logging.getLogger(__name__)

#: Plug-in tasks that must run once across the cluster (the others run on every replica).
SINGLETON_TASKS: Final = frozenset(
    {"cases-sla", "cases-webhooks", "cases-series", "commands-sweep", "snapshot-retention"}
)
#: Seconds between lease renewals / plan steps.
LEASE_POLL_S: Final = 0.5
#: Seconds a replica keeps trying to create or find the stream and the lease bucket at start.
JOIN_TIMEOUT_S: Final = 40.0
#: Seconds the stream keeps messages (a replay window for replicas that were all down).
STREAM_MAX_AGE_S: Final = 7 * 24 * 3600.0


class ClusterError(RuntimeError):
    """The cluster could not be joined; the message says why."""


class ClusterReplica:
    """Joins the NATS cluster, owns partitions, feeds the hub's ingest and acknowledges after store."""

    def __init__(self, hub: ClusterHost, options: ClusterOptions) -> None:
        assert hub.ingest is not None
        self.hub = hub
        self.options = options
        self.ingest = hub.ingest
        self.bridge = NatsBridge(options.servers, options.replica_id)
        #: Snapshot evidence in the cluster's object store, for the evidence plug-in (usable once started).
        self.snapshot_blobs = JetStreamSnapshotBlobs(self.bridge, replicas=options.stream_replicas)
        self.leases: LeaseTable | None = None
        self.live: LiveRelay | None = None
        self.partitions = PartitionSet(hub, options, self.bridge)
        self._jobs: dict[str, threading.Event] = {}  # job lease key -> held
        self._stopping = asyncio.Event()
        self._main: Future[None] | None = None
        self._ready: Future[None] = Future()

    # ------------------------------------------------------------ lifecycle

    def start(self, timeout: float = JOIN_TIMEOUT_S + 10) -> None:
        """Connect, make sure the stream and the lease bucket exist, start owning partitions."""
        self.bridge.start()
        self._main = self.bridge.submit(self._run())
        try:
            self._ready.result(timeout)
        except Exception as exc:
            self.stop()
            raise ClusterError(f"cannot join the NATS cluster {','.join(self.options.servers)}: {exc}") from exc

    async def _run(self) -> None:
        try:
            await self._join()
        except Exception as exc:  # the start() caller hears of it
            self._ready.set_exception(exc)
            return
        self.ingest._connected.set()
        self._ready.set_result(None)
        logger.info("replica %s joined the cluster (%d partitions)", self.options.replica_id, self.options.partitions)
        try:
            while not self._stopping.is_set():
                try:
                    await self._step()
                except Exception:  # loop boundary: the engine may be electing leaders; try again
                    logger.exception("cluster step failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), LEASE_POLL_S)
        finally:
            await self._shutdown()

    async def _join(self) -> None:
        """Connect; create or find the stream and the lease bucket; hold this replica's member key."""
        o = self.options
        await self.bridge.connect()
        kv_config = KeyValueConfig(bucket=LEASE_BUCKET, history=1, ttl=o.lease_ttl_s, replicas=o.stream_replicas)
        first_try = time.monotonic()
        deadline = first_try + JOIN_TIMEOUT_S
        while True:  # replicas starting together, or a cluster still electing its leaders: try again
            try:
                await self._ensure_stream()
                kv = await self.bridge.js.create_key_value(kv_config)
                self.leases = LeaseTable(self.bridge.js, kv, o.replica_id, o.lease_ttl_s)
                self.partitions.leases = self.leases
                joined = await self.leases.claim(self._member_key)
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise
                logger.info("stream or lease bucket not ready yet (%s); retrying", exc)
                await asyncio.sleep(0.5)
                continue
            if joined:
                break
            # Our id is live: another replica uses it, or this one restarts within a TTL of its death.
            if time.monotonic() > first_try + o.lease_ttl_s + 2:
                raise ClusterError(f"replica id {o.replica_id!r} is already live in the cluster")
            await asyncio.sleep(0.5)
        if self.hub.ctx is not None:
            assert self.bridge.nc is not None
            self.live = LiveRelay(self.hub.ctx.bus, self.bridge.nc, self.bridge.loop, o.replica_id)
            await self.live.start()

    async def _ensure_stream(self) -> None:
        o = self.options
        config = StreamConfig(
            name=STREAM_NAME,
            subjects=[f"{o.prefix}.>"],
            num_replicas=o.stream_replicas,
            storage=StorageType.FILE,
            max_age=STREAM_MAX_AGE_S,
        )
        try:
            await self.bridge.js.stream_info(STREAM_NAME)
        except NotFoundError:
            await self.bridge.js.add_stream(config)

    @property
    def _member_key(self) -> str:
        return f"member.{self.options.replica_id}"

    def stop(self) -> None:
        """Finish the batches in hand, give the leases back (so others take over at once), disconnect."""
        if self._main is None:
            return
        if self.bridge.loop.is_running():
            self.bridge.loop.call_soon_threadsafe(self._stopping.set)
        try:
            self._main.result(30)
        except Exception:  # shutdown boundary: disconnect anyway
            logger.exception("replica %s did not shut down cleanly", self.options.replica_id)
        self._main = None
        self.bridge.stop()
        self.partitions.close()
        self.ingest._connected.clear()

    async def _shutdown(self) -> None:
        if self.live is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.live.stop)
        await self.partitions.drop_all()
        if self.leases is not None:
            for key in list(self._jobs):
                self._jobs[key].clear()
                await self.leases.release(key)
            await self.leases.release(self._member_key)

    # ------------------------------------------------------------ leases

    async def _step(self) -> None:
        """Renew what is held, drop what is lost, then claim or give back partitions and jobs."""
        leases = self.leases
        assert leases is not None
        o = self.options
        now = time.monotonic()
        due = [key for key, lease in leases.held.items() if now - lease.renewed >= o.lease_ttl_s / 4]
        await asyncio.gather(*(self._renew(key) for key in due))
        for key in leases.expired():
            leases.held.pop(key, None)
            logger.warning("lease %s not renewed within its TTL: given up", key)
        owned = self.partitions.owned
        for p, work in list(owned.items()):
            if f"part.{p}" not in leases.held:
                self.partitions.spawn_drop(work, release=False)
        live = await leases.live_keys()
        if self._member_key not in leases.held:
            await leases.claim(self._member_key)
        # A copy: the hub registers its jobs (singleton()) from its own thread while this loop already steps.
        for key, held in list(self._jobs.items()):
            if key in leases.held:
                held.set()
                continue
            held.clear()
            if (key not in live or await leases.is_free(key)) and await leases.claim(key):
                held.set()
                logger.info("replica %s runs singleton %s", o.replica_id, key)
        members = max(1, sum(1 for k in live if k.startswith("member.")))
        busy = self.partitions.busy()
        candidates = [p for p in range(o.partitions) if p not in busy]
        free: set[int] = set()
        if len(owned) < fair_share(o.partitions, members):
            # A key written lately may be a released lease (its delete marker): ask those few.
            recent = [p for p in candidates if f"part.{p}" in live]
            checks = await asyncio.gather(*(leases.is_free(f"part.{p}") for p in recent))
            free = {p for p in candidates if f"part.{p}" not in live}
            free |= {p for p, ok in zip(recent, checks, strict=True) if ok}
        step = plan(o.replica_id, o.partitions, set(owned), free, members)
        for p in step.release:
            self.partitions.spawn_drop(owned[p], release=True)
        for p in step.claim:
            if await leases.claim(f"part.{p}"):
                await self.partitions.adopt(p)

    async def _renew(self, key: str) -> None:
        assert self.leases is not None
        try:
            await self.leases.renew(key)
        except LeaseLost as exc:
            logger.warning("replica %s lost lease %s", self.options.replica_id, exc)
        except Exception as exc:  # the engine may be away for a moment; the TTL decides
            logger.warning("lease %s not renewed: %s", key, exc or type(exc).__name__)

    # ------------------------------------------------------------ commands and jobs

    def send_command(self, device: DeviceRef, command: Command) -> None:
        """Publish a command where the device's MQTT subscription gets it (the ``cmd`` subject is not mapped)."""
        nc = self.bridge.nc
        if nc is None or not nc.is_connected:
            raise ConnectionError(f"no NATS connection to send {command.op!r} to {device.device_id}")
        name = topic(device.site, device.device_id, Channel.CMD, root=self.hub.settings.root)
        self.bridge.call(nc.publish(command_subject(name), encode(command)), 5)

    def task(self, name: str, fn: Callable[[threading.Event], None]) -> Callable[[threading.Event], None]:
        """A plug-in task as this replica runs it: a singleton (:data:`SINGLETON_TASKS`) only under its lease."""
        return self.singleton(name, fn) if name in SINGLETON_TASKS else fn

    def singleton(self, name: str, fn: Callable[[threading.Event], None]) -> Callable[[threading.Event], None]:
        """``fn`` wrapped to run only while this replica holds the job's lease (once across the cluster)."""
        held = threading.Event()
        self._jobs[f"job.{name}"] = held

        def run(stop: threading.Event) -> None:
            while not stop.is_set():
                if not held.wait(0.5):
                    continue
                quit_ = threading.Event()

                def watch(quit_: threading.Event = quit_) -> None:
                    while held.is_set() and not stop.is_set():
                        stop.wait(0.2)
                    quit_.set()

                watcher = threading.Thread(target=watch, name=f"{name}-lease", daemon=True)
                watcher.start()
                fn(quit_)
                watcher.join()

        return run

    def owned_partitions(self) -> list[int]:
        """The partitions this replica owns now."""
        return sorted(self.partitions.owned)

    def flush_state(self) -> None:
        """Write registry rows, dead letters and data-loss records (the hub's sweep calls it)."""
        self.partitions.flush_state()


def cluster_replica(hub: ClusterHost) -> ClusterReplica:
    """Replica ``client_id`` of the cluster named by ``hub.settings.cluster_url``, not joined yet (:meth:`start`
    joins): the plug-ins install first, with its shared stores; commands go through NATS."""
    s = hub.settings
    assert s.cluster_url is not None and hub.ctx is not None and hub.gaps is not None
    options = ClusterOptions(
        servers=ClusterOptions.parse_servers(s.cluster_url), replica_id=s.client_id, partitions=s.cluster_partitions
    )
    replica = ClusterReplica(hub, options)
    hub.ctx.send_command = replica.send_command
    hub.gaps.send_command = replica.send_command
    return replica
