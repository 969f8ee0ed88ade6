"""Snapshot blobs in the cluster's JetStream object store, so every replica reads what any replica stored.

The bucket ``gs_snapshots`` (stream ``OBJ_gs_snapshots``, file storage, replicated like the lease
bucket) holds one object per blob name of :mod:`hub.evidence.blobs` (``<device>/<event_id>.jpg``
and ``.json``). Replicas reach it through their :class:`~hub.cluster.bridge.NatsBridge`: the hub's
threads block on a coroutine run on the replica's event loop. The bucket is bound (or created) on
first use, so a replica that starts while the engine elects its leaders finds it later.

An object deleted by nats-py leaves a small "deleted" meta record behind; retention would pile one
up per snapshot, so :meth:`JetStreamSnapshotBlobs.delete` purges that record too.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, Final, TypeVar

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import ObjectStoreConfig, StorageType
from nats.js.errors import NotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore

from hub.cluster.bridge import NatsBridge
from hub.evidence.blobs import BlobInfo

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Object store bucket of the cluster's snapshots.
SNAPSHOT_BUCKET: Final = "gs_snapshots"
#: Seconds one blob operation may take, retries included (a leader election takes a few seconds).
OP_TIMEOUT_S: Final = 15.0
#: Seconds between tries of an operation the engine did not answer.
RETRY_WAIT_S: Final = 0.5


def meta_subject(bucket: str, name: str) -> str:
    """The subject of an object's meta record (nats-py and the Go client name it so)."""
    encoded = base64.urlsafe_b64encode(name.encode()).decode()
    return f"$O.{bucket}.M.{encoded}"


def parse_mtime(mtime: str | None) -> int:
    """An object's modification time (RFC 3339, as the client wrote it) in ms; 0 when missing or unreadable."""
    if not mtime:
        return 0
    try:
        return int(datetime.fromisoformat(mtime.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return 0


class JetStreamSnapshotBlobs:
    """:class:`~hub.evidence.blobs.SnapshotBlobs` in a JetStream object store bucket, through ``bridge``."""

    def __init__(
        self, bridge: NatsBridge, bucket: str = SNAPSHOT_BUCKET, replicas: int = 3, timeout: float = OP_TIMEOUT_S
    ) -> None:
        self.bridge = bridge
        self.bucket = bucket
        self.replicas = replicas
        self.timeout = timeout
        self._store: ObjectStore | None = None

    # ------------------------------------------------------------ on the loop

    async def _obs(self) -> ObjectStore:
        if self._store is None:
            js = self.bridge.js
            try:
                self._store = await js.object_store(self.bucket)
            except NotFoundError:
                config = ObjectStoreConfig(bucket=self.bucket, storage=StorageType.FILE, replicas=self.replicas)
                self._store = await js.create_object_store(self.bucket, config)
                logger.info("object store %s created (%d replicas)", self.bucket, self.replicas)
        return self._store

    async def _retrying(self, op: Callable[[ObjectStore], Coroutine[Any, Any, T]]) -> T:
        """``op`` on the bucket, tried again while the engine does not answer (a node gone, a leader election)."""
        deadline = time.monotonic() + self.timeout - RETRY_WAIT_S
        while True:
            try:
                return await op(await self._obs())
            except (NatsTimeoutError, NoRespondersError, TimeoutError) as exc:
                if time.monotonic() > deadline:
                    raise
                logger.info("object store %s did not answer (%s); trying again", self.bucket, type(exc).__name__)
                await asyncio.sleep(RETRY_WAIT_S)

    async def _put(self, obs: ObjectStore, name: str, data: bytes) -> None:
        await obs.put(name, data)

    async def _get(self, obs: ObjectStore, name: str) -> bytes | None:
        try:
            result = await obs.get(name)
        except ObjectNotFoundError:
            return None
        return bytes(result.data or b"")

    async def _has(self, obs: ObjectStore, name: str) -> bool:
        try:
            await obs.get_info(name)
        except ObjectNotFoundError:
            return False
        return True

    async def _delete(self, obs: ObjectStore, name: str) -> None:
        try:
            await obs.delete(name)
        except ObjectNotFoundError:
            return
        # The delete left a meta record saying "deleted": purge it, or every expired snapshot leaves one.
        await self.bridge.js.purge_stream(f"OBJ_{self.bucket}", subject=meta_subject(self.bucket, name))

    async def _list(self, obs: ObjectStore) -> list[BlobInfo]:
        try:
            infos = await obs.list(ignore_deletes=True)
        except NotFoundError:  # an empty bucket
            return []
        return [BlobInfo(i.name, parse_mtime(i.mtime)) for i in infos if not i.deleted]

    # ------------------------------------------------------------ from threads

    def put(self, name: str, data: bytes) -> None:
        """Store the object (replicated before the call returns)."""
        self.bridge.call(self._retrying(lambda obs: self._put(obs, name, data)), self.timeout + 1)

    def get(self, name: str) -> bytes | None:
        """The object's bytes (its digest checked by the client), or None."""
        return self.bridge.call(self._retrying(lambda obs: self._get(obs, name)), self.timeout + 1)

    def has(self, name: str) -> bool:
        """True when the object is stored (its meta record only is read)."""
        return self.bridge.call(self._retrying(lambda obs: self._has(obs, name)), self.timeout + 1)

    def delete(self, name: str) -> None:
        """Delete the object and its meta record."""
        self.bridge.call(self._retrying(lambda obs: self._delete(obs, name)), self.timeout + 1)

    def list(self) -> list[BlobInfo]:
        """Every stored object (one ordered consumer over the meta records)."""
        return self.bridge.call(self._retrying(self._list), self.timeout + 1)
