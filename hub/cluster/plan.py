"""Which partitions a replica should claim or give back: a pure function of what it sees in the lease bucket.

Every replica runs the same rule against the same bucket, so the partitions spread evenly without a
coordinator: each aims at its fair share (``ceil(partitions / live replicas)``), claims free partitions
in its own rendezvous order (so two replicas starting together mostly reach for different ones) and
gives back its extras when a replica joins. A claim is a compare-and-set create in the NATS KV bucket;
two replicas reaching for one partition cannot both win.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PartitionPlan:
    """What to do next: partitions to try to claim (in order) and partitions to give back."""

    claim: tuple[int, ...]
    release: tuple[int, ...]


def fair_share(partitions: int, members: int) -> int:
    """How many partitions one of ``members`` live replicas should own."""
    return math.ceil(partitions / max(1, members))


def rendezvous_order(replica_id: str, candidates: set[int]) -> list[int]:
    """``candidates`` in this replica's preference order (highest random weight first)."""

    def weight(p: int) -> bytes:
        return hashlib.blake2b(f"{replica_id}/{p}".encode(), digest_size=8).digest()

    return sorted(candidates, key=weight, reverse=True)


def plan(replica_id: str, partitions: int, owned: set[int], free: set[int], members: int) -> PartitionPlan:
    """The next step for ``replica_id`` owning ``owned`` while ``free`` are unowned and ``members`` replicas live."""
    share = fair_share(partitions, members)
    if len(owned) > share:
        # Give back the ones this replica likes least, so the same ones are not claimed back at once.
        extras = rendezvous_order(replica_id, owned)[share:]
        return PartitionPlan((), tuple(sorted(extras)))
    want = share - len(owned)
    return PartitionPlan(tuple(rendezvous_order(replica_id, free)[:want]), ())
