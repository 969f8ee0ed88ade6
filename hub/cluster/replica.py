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

Everything NATS runs on the replica's event loop (:class:`hub.cluster.bridge.NatsBridge`); a batch runs
through ingest on one thread beside it (``hub-cluster-ingest``), where sinks may wait on NATS themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, KeyValueConfig, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from edge.wire import Channel, Command, encode, topic
from hub.cluster.bridge import NatsBridge
from hub.cluster.leases import LEASE_BUCKET, LeaseLost, LeaseTable
from hub.cluster.live import LiveRelay
from hub.cluster.natsconf import (
    DEFAULT_PREFIX,
    STREAM_NAME,
    PartitionKey,
    command_subject,
    partition_of,
    partition_subject,
    topic_of_subject,
)
from hub.cluster.objects import JetStreamSnapshotBlobs
from hub.cluster.plan import fair_share, plan
from hub.devices.registry import DeviceRecord, DeviceRegistry
from hub.incidents.queries import MAX_LIMIT, IncidentFilter
from hub.ingest.sinks import DeviceRef
from hub.metrics import IngestStats

if TYPE_CHECKING:
    from hub.service import Hub

logger = logging.getLogger(__name__)

#: Plug-in tasks that must run once across the cluster (the others run on every replica).
SINGLETON_TASKS: Final = frozenset(
    {"cases-sla", "cases-webhooks", "cases-series", "commands-sweep", "snapshot-retention"}
)
#: Messages fetched (and acknowledged) together from one partition.
FETCH_BATCH: Final = 500
#: Seconds a partition that caught up waits before fetching again (bounds commits to ~1/LINGER_S per partition).
LINGER_S: Final = 0.05
#: Seconds a fetch waits for a first message.
FETCH_WAIT_S: Final = 0.5
#: Seconds between lease renewals / plan steps.
LEASE_POLL_S: Final = 0.5
#: Seconds a commit waits for the series writer, the state DB and the incident store before giving up (no ack).
COMMIT_TIMEOUT_S: Final = 60.0
#: Seconds a replica keeps trying to create or find the stream and the lease bucket at start.
JOIN_TIMEOUT_S: Final = 40.0
#: Seconds the stream keeps messages (a replay window for replicas that were all down).
STREAM_MAX_AGE_S: Final = 7 * 24 * 3600.0


class ClusterError(RuntimeError):
    """The cluster could not be joined; the message says why."""


@dataclass
class PartitionWork:
    """A partition this replica owns: its consumer task and the devices it has seen."""

    number: int
    task: asyncio.Task[None] | None = None
    devices: set[str] = field(default_factory=set)
    acked: int = 0
    #: Set when the partition is given up: the consumer finishes (stores and acks) its batch and returns.
    stopping: bool = False


@dataclass(frozen=True, slots=True)
class Batch:
    """A handled batch: the writer ticket of its points, its devices' records, the message that acks it."""

    ticket: int | None
    records: list[DeviceRecord]
    last: Msg


@dataclass(frozen=True, slots=True)
class ClusterOptions:
    """How a replica joins the cluster."""

    servers: tuple[str, ...]
    replica_id: str
    partitions: int = 12
    stream_replicas: int = 3
    lease_ttl_s: float = 4.0
    key: PartitionKey = "site-device"
    prefix: str = DEFAULT_PREFIX

    @staticmethod
    def parse_servers(url: str) -> tuple[str, ...]:
        """``nats://a:4222,nats://b:4222`` (or with bare host:port) as a tuple of URLs."""
        out = []
        for raw in url.split(","):
            part = raw.strip()
            if part:
                out.append(part if "://" in part else f"nats://{part}")
        if not out:
            raise ValueError("no NATS server in the cluster URL")
        return tuple(out)


class ClusterReplica:
    """Joins the NATS cluster, owns partitions, feeds the hub's ingest and acknowledges after store."""

    def __init__(self, hub: Hub, options: ClusterOptions) -> None:
        assert hub.ingest is not None and hub.registry is not None and hub.gaps is not None
        self.hub = hub
        self.options = options
        self.ingest = hub.ingest
        self.registry = hub.registry
        self.gaps = hub.gaps
        self.bridge = NatsBridge(options.servers, options.replica_id)
        #: Snapshot evidence in the cluster's object store, for the evidence plug-in (usable once started).
        self.snapshot_blobs = JetStreamSnapshotBlobs(self.bridge, replicas=options.stream_replicas)
        self.leases: LeaseTable | None = None
        self.live: LiveRelay | None = None
        self.owned: dict[int, PartitionWork] = {}
        #: (partition, monotonic time) of every claim, for tests and the bench (takeover time).
        self.claims: list[tuple[int, float]] = []
        self._jobs: dict[str, threading.Event] = {}  # job lease key -> held
        self._dropping: set[int] = set()  # partitions finishing their last batch
        self._drops: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._main: Future[None] | None = None
        self._ready: Future[None] = Future()
        # Batches run through ingest here, one at a time and in order: off the event loop, so that a sink
        # (snapshots to the object store) may wait on NATS, which runs on that loop.
        self._ingest_thread = ThreadPoolExecutor(1, thread_name_prefix="hub-cluster-ingest")
        self._flush_lock = threading.Lock()  # one state flush at a time (commits and the sweep)
        self._durable = threading.Condition()  # notified by the series writer when more points are durable
        hub.writer.on_durable = self._on_durable
        self.registry.durable_seqs = True  # the DB gets the seqs acknowledged, never ahead of them

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
        self._ingest_thread.shutdown(wait=False)
        self.ingest._connected.clear()

    async def _shutdown(self) -> None:
        if self.live is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.live.stop)
        for work in list(self.owned.values()):
            self._spawn_drop(work, release=True)
        if self._drops:
            await asyncio.gather(*self._drops, return_exceptions=True)
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
        for p, work in list(self.owned.items()):
            if f"part.{p}" not in leases.held:
                self._spawn_drop(work, release=False)
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
        busy = set(self.owned) | self._dropping
        candidates = [p for p in range(o.partitions) if p not in busy]
        free: set[int] = set()
        if len(self.owned) < fair_share(o.partitions, members):
            # A key written lately may be a released lease (its delete marker): ask those few.
            recent = [p for p in candidates if f"part.{p}" in live]
            checks = await asyncio.gather(*(leases.is_free(f"part.{p}") for p in recent))
            free = {p for p in candidates if f"part.{p}" not in live}
            free |= {p for p, ok in zip(recent, checks, strict=True) if ok}
        step = plan(o.replica_id, o.partitions, set(self.owned), free, members)
        for p in step.release:
            self._spawn_drop(self.owned[p], release=True)
        for p in step.claim:
            if await leases.claim(f"part.{p}"):
                await self._adopt(p)

    async def _renew(self, key: str) -> None:
        assert self.leases is not None
        try:
            await self.leases.renew(key)
        except LeaseLost as exc:
            logger.warning("replica %s lost lease %s", self.options.replica_id, exc)
        except Exception as exc:  # the engine may be away for a moment; the TTL decides
            logger.warning("lease %s not renewed: %s", key, exc or type(exc).__name__)

    def _spawn_drop(self, work: PartitionWork, *, release: bool) -> None:
        """Give ``work`` up in the background (its last batch may take a moment to store)."""
        self.owned.pop(work.number, None)
        self._dropping.add(work.number)
        task = asyncio.create_task(self._drop(work, release=release))
        self._drops.add(task)
        task.add_done_callback(self._drops.discard)

    # ------------------------------------------------------------ partitions

    async def _adopt(self, p: int) -> None:
        """Own partition ``p``: its devices' state from the DB, its consumer from the ack floor."""
        work = PartitionWork(p)
        self.owned[p] = work
        self.claims.append((p, time.monotonic()))
        loop = asyncio.get_running_loop()
        work.devices = await loop.run_in_executor(None, self._load_devices, p)
        work.task = asyncio.create_task(self._consume(work), name=f"partition-{p}")
        logger.info("replica %s owns partition %d (%d known devices)", self.options.replica_id, p, len(work.devices))

    async def _drop(self, work: PartitionWork, *, release: bool) -> None:
        """Stop consuming ``work`` (finishing its batch), forget its devices, give the lease back if ``release``."""
        self.owned.pop(work.number, None)
        self._dropping.add(work.number)
        work.stopping = True
        if work.task is not None:
            try:
                await asyncio.wait_for(work.task, COMMIT_TIMEOUT_S + 5)
            except (TimeoutError, asyncio.CancelledError):
                logger.error("partition %d: consumer did not finish its batch; cancelled", work.number)
            except Exception:  # shutdown boundary of one partition
                logger.exception("partition %d consumer failed", work.number)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._forget_devices, work)
        if release and self.leases is not None:
            await self.leases.release(f"part.{work.number}")
        self._dropping.discard(work.number)
        logger.info("replica %s gave up partition %d", self.options.replica_id, work.number)

    async def _consumer(self, p: int) -> JetStreamContext.PullSubscription:
        """The partition's durable consumer, recreated to start right after its ack floor."""
        durable = f"gs-p{p}"
        start = 1
        try:
            info = await self.bridge.js.consumer_info(STREAM_NAME, durable)
            start = (info.ack_floor.stream_seq if info.ack_floor and info.ack_floor.stream_seq else 0) + 1
            await self.bridge.js.delete_consumer(STREAM_NAME, durable)
        except NotFoundError:
            pass
        config = ConsumerConfig(
            durable_name=durable,
            filter_subject=partition_subject(p, self.options.prefix),
            ack_policy=AckPolicy.ALL,
            ack_wait=30,
            max_deliver=-1,
            max_ack_pending=FETCH_BATCH * 4,
            num_replicas=self.options.stream_replicas,
        )
        if start > 1:
            config = config.evolve(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start)
        await self.bridge.js.add_consumer(STREAM_NAME, config)
        return await self.bridge.js.pull_subscribe_bind(durable=durable, stream=STREAM_NAME)

    async def _consume(self, work: PartitionWork) -> None:
        sub: JetStreamContext.PullSubscription | None = None
        while not work.stopping:
            if self.leases is not None and not self.leases.valid(f"part.{work.number}"):
                await asyncio.sleep(0.1)  # not renewed lately: fetch nothing that could not be acknowledged
                continue
            try:
                if sub is None:
                    sub = await self._consumer(work.number)
                try:
                    msgs = await sub.fetch(FETCH_BATCH, timeout=FETCH_WAIT_S)
                except (NatsTimeoutError, TimeoutError):
                    continue
                if not msgs:
                    continue
                batch = await asyncio.get_running_loop().run_in_executor(self._ingest_thread, self._handle, msgs, work)
                await self._commit_and_ack(batch, work)
                if len(msgs) < FETCH_BATCH:
                    # Caught up: let the next batch gather for a moment. Each batch costs a state-DB
                    # transaction and an ack; at a steady trickle one per message cost 4x a single hub's CPU.
                    await asyncio.sleep(LINGER_S)
            except Exception:  # loop boundary: leader elections, a node going away; the lease decides
                logger.exception("partition %d: fetch or commit failed; retrying", work.number)
                sub = None  # bind again (the consumer may have a new leader)
                await asyncio.sleep(0.5)

    async def _commit_and_ack(self, batch: Batch, work: PartitionWork) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._commit, batch.ticket, batch.records)
        assert self.leases is not None
        if not self.leases.valid(f"part.{work.number}"):
            # Not ours any more: the next owner starts at the ack floor and gets this batch again
            # (stored already: dedup drops it, or the store's idempotent writes absorb it).
            logger.warning("partition %d: lease lapsed before the ack; the next owner resumes", work.number)
            return
        await batch.last.ack()
        work.acked += 1

    def _handle(self, msgs: list[Msg], work: PartitionWork) -> Batch:
        """Run the batch through ingest (on the ingest thread, in order); the writer ticket of its points."""
        ingest = self.ingest
        received_ms = int(ingest.clock() * 1000)
        prefix = self.options.prefix
        ingest._held = []
        for msg in msgs:
            try:
                name = topic_of_subject(msg.subject, prefix)
            except ValueError:
                continue
            ingest.handle(name, msg.data, received_ms)
        ticket = ingest._submit_held()
        recs = []
        with self.registry.lock:
            for msg in msgs:
                parts = msg.subject.split(".", 6)
                device = parts[5] if len(parts) > 5 else None
                rec = None if device is None else self.registry.devices.get(device)
                if rec is not None and rec.id not in work.devices:
                    work.devices.add(rec.id)
                if rec is not None:
                    recs.append(rec)
        return Batch(ticket, recs, msgs[-1])

    def _commit(self, ticket: int | None, recs: Iterable[DeviceRecord]) -> None:
        """Block until the batch is durable: points in the series store, rows and records in the state DB."""
        deadline = time.monotonic() + COMMIT_TIMEOUT_S
        writer = self.hub.writer
        if ticket is not None:
            with self._durable:
                while writer.durable_through() < ticket:
                    if time.monotonic() > deadline:
                        raise TimeoutError("series writer did not make the batch durable in time")
                    self._durable.wait(0.2)
        with self.registry.lock:
            for rec in recs:
                if rec.safe_seq != rec.last_seq:
                    rec.safe_seq = rec.last_seq
                    self.registry._dirty.add(rec.id)
        self.flush_state()
        sink = self._incident_sink()
        if sink is not None:
            while sink.pending():
                if time.monotonic() > deadline:
                    raise TimeoutError("incident candidates not stored in time")
                time.sleep(0.01)

    def _on_durable(self) -> None:
        with self._durable:
            self._durable.notify_all()

    def flush_state(self) -> None:
        """Write registry rows, dead letters and data-loss records (one flush at a time across threads)."""
        assert self.hub.deadletters is not None
        with self._flush_lock:
            self.registry.flush()
            self.hub.deadletters.flush()
            self.gaps.flush()

    def _incident_sink(self) -> Any:
        ctx = self.hub.ctx
        return None if ctx is None else ctx.services.incident_sink

    # ------------------------------------------------------------ device state

    def _load_devices(self, p: int) -> set[str]:
        """Load partition ``p``'s device rows (last_seq = the safe seq) and open incidents into this replica."""
        o = self.options
        scratch = DeviceRegistry(self.registry.sessions, IngestStats())
        scratch.load()
        mine = {
            d: rec for d, rec in scratch.devices.items() if partition_of(rec.site, rec.id, o.partitions, o.key) == p
        }
        with self.registry.lock:
            for device_id, rec in mine.items():
                rec.safe_seq = rec.last_seq
                self.registry.devices[device_id] = rec
                self.registry._dirty.discard(device_id)
                self.gaps.trackers.pop(device_id, None)
            # Rows just read are up to 1 s old: no device turns stale before its own messages come.
            self.registry.hold_staleness(int(time.time() * 1000) + 10_000)
        self._rebuild_open_incidents(set(mine))
        return set(mine)

    def _rebuild_open_incidents(self, devices: set[str]) -> None:
        ctx = self.hub.ctx
        if ctx is None or not devices:
            return
        sink, queries = ctx.services.incident_sink, ctx.services.incident_queries
        if sink is None or queries is None:
            return

        open_incidents = queries.list_incidents(IncidentFilter(state="open", limit=MAX_LIMIT))
        sink.rebuild_open([i for i in open_incidents if i.get("device_id") in devices])

    def _forget_devices(self, work: PartitionWork) -> None:
        """Write the partition's rows one last time, then drop its devices from this replica's memory."""
        try:
            self.flush_state()
        except Exception:  # the next owner reads the older rows: safe seqs only, never ahead
            logger.exception("partition %d: final flush failed", work.number)
        with self.registry.lock:
            o = self.options
            gone = [
                d
                for d, rec in self.registry.devices.items()
                if d in work.devices or partition_of(rec.site, rec.id, o.partitions, o.key) == work.number
            ]
            for device_id in gone:
                self.registry.devices.pop(device_id, None)
                self.registry._dirty.discard(device_id)
                self.gaps.trackers.pop(device_id, None)

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
        return sorted(self.owned)


def cluster_replica(hub: Hub) -> ClusterReplica:
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
