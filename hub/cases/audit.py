"""Append-only, hash-chained audit trail per case (全程留痕, tamper-evident).

Each entry's hash is SHA-256 over the canonical JSON of its fields plus the previous
entry's hash. The case row keeps the head hash and the entry count, so
:func:`verify_chain` detects an edited, inserted, reordered or deleted row —
including a deleted last row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

GENESIS: Final = "0" * 64


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 kept: the byte form every hash is computed on."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit row: who did what to which case, when, from which state to which."""

    case_id: int
    seq: int
    ts_ms: int
    actor: str
    action: str
    from_state: str
    to_state: str
    note: str = ""
    evidence: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS
    hash: str = ""

    def body(self) -> dict[str, Any]:
        """The hashed fields (everything but ``hash``)."""
        out = asdict(self)
        out.pop("hash")
        out["evidence"] = list(self.evidence)
        return out


def entry_hash(entry: AuditEntry) -> str:
    """SHA-256 hex of the canonical body."""
    return hashlib.sha256(canonical_json(entry.body()).encode()).hexdigest()


def seal(entry: AuditEntry) -> AuditEntry:
    """The entry with its hash filled in."""
    return AuditEntry(**{**entry.body(), "evidence": entry.evidence, "hash": entry_hash(entry)})


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Verification result: ok, or the first bad seq and why."""

    ok: bool
    count: int
    head: str
    bad_seq: int | None = None
    reason: str | None = None


def verify_chain(entries: Sequence[AuditEntry], *, head: str | None = None, count: int | None = None) -> ChainReport:
    """Check seq continuity, each hash, each link, and (if given) the recorded head hash and count."""
    prev = GENESIS
    for expected_seq, entry in enumerate(entries, start=1):
        if entry.seq != expected_seq:
            return ChainReport(False, len(entries), prev, entry.seq, f"seq {entry.seq} where {expected_seq} was due")
        if entry.prev_hash != prev:
            return ChainReport(False, len(entries), prev, entry.seq, "link to the previous entry is broken")
        if entry_hash(entry) != entry.hash:
            return ChainReport(False, len(entries), prev, entry.seq, "entry content does not match its hash")
        prev = entry.hash
    if count is not None and count != len(entries):
        reason = f"{count} entries recorded, {len(entries)} found"
        return ChainReport(False, len(entries), prev, len(entries) + 1, reason)
    if head is not None and head != prev:
        return ChainReport(False, len(entries), prev, len(entries), "chain head differs from the recorded head")
    return ChainReport(True, len(entries), prev)
