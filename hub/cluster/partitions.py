"""The partitions one replica owns: adopt, consume, store, acknowledge, give up.

A partition is adopted once its lease ``part.<p>`` is held (:mod:`hub.cluster.replica` decides which,
:mod:`hub.cluster.plan` how many). Adopting loads its devices' rows and open incidents from the state DB
and recreates its durable consumer ``gs-p<p>`` at the ack floor + 1. Its consumer task fetches batches,
runs each through the hub's ingest on the one ingest thread (in order, off the event loop, so a sink may
wait on NATS), waits until the batch is durable -- points in the series store, rows, dead letters,
data-loss records and incident candidates in the state DB -- and only then acknowledges its last
message, while the lease is still valid. Giving a partition up finishes the batch in hand, writes the
rows one last time and forgets its devices.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from hub.cluster.bridge import NatsBridge
from hub.cluster.leases import LeaseTable
from hub.cluster.natsconf import STREAM_NAME, partition_of, partition_subject, topic_of_subject
from hub.cluster.options import ClusterHost, ClusterOptions
from hub.devices.registry import DeviceRecord, DeviceRegistry
from hub.incidents.queries import MAX_LIMIT, IncidentFilter
from hub.metrics import IngestStats

logger = logging.getLogger(__name__)

#: Messages fetched (and acknowledged) together from one partition.
FETCH_BATCH: Final = 500
#: Seconds a partition that caught up waits before fetching again (bounds commits to ~1/LINGER_S per partition).
LINGER_S: Final = 0.05
#: Seconds a fetch waits for a first message.
FETCH_WAIT_S: Final = 0.5
#: Seconds a commit waits for the series writer, the state DB and the incident store before giving up (no ack).
COMMIT_TIMEOUT_S: Final = 60.0


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


class PartitionSet:
    """The partitions this replica owns or is giving up, their consumers and the commit of their batches."""

    def __init__(self, hub: ClusterHost, options: ClusterOptions, bridge: NatsBridge) -> None:
        assert hub.ingest is not None and hub.registry is not None and hub.gaps is not None
        self.hub = hub
        self.options = options
        self.bridge = bridge
        self.ingest = hub.ingest
        self.registry = hub.registry
        self.gaps = hub.gaps
        #: The replica's leases, once it joined (a batch is acknowledged only while its lease is valid).
        self.leases: LeaseTable | None = None
        self.owned: dict[int, PartitionWork] = {}
        #: (partition, monotonic time) of every claim, for tests and the bench (takeover time).
        self.claims: list[tuple[int, float]] = []
        self._dropping: set[int] = set()  # partitions finishing their last batch
        self._drops: set[asyncio.Task[None]] = set()
        # Batches run through ingest here, one at a time and in order: off the event loop, so that a sink
        # (snapshots to the object store) may wait on NATS, which runs on that loop.
        self._ingest_thread = ThreadPoolExecutor(1, thread_name_prefix="hub-cluster-ingest")
        self._flush_lock = threading.Lock()  # one state flush at a time (commits and the sweep)
        self._durable = threading.Condition()  # notified by the series writer when more points are durable
        hub.writer.on_durable = self._on_durable
        self.registry.durable_seqs = True  # the DB gets the seqs acknowledged, never ahead of them

    def busy(self) -> set[int]:
        """Partitions owned or still being given up (not to be claimed again yet)."""
        return set(self.owned) | self._dropping

    async def drop_all(self) -> None:
        """Give every partition back (stored and acknowledged first) and wait until all are given up."""
        for work in list(self.owned.values()):
            self.spawn_drop(work, release=True)
        if self._drops:
            await asyncio.gather(*self._drops, return_exceptions=True)

    def close(self) -> None:
        """End the ingest thread (after :meth:`drop_all`)."""
        self._ingest_thread.shutdown(wait=False)

    def spawn_drop(self, work: PartitionWork, *, release: bool) -> None:
        """Give ``work`` up in the background (its last batch may take a moment to store)."""
        self.owned.pop(work.number, None)
        self._dropping.add(work.number)
        task = asyncio.create_task(self._drop(work, release=release))
        self._drops.add(task)
        task.add_done_callback(self._drops.discard)

    async def adopt(self, p: int) -> None:
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
