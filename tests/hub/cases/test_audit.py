"""The hash chain catches edits, insertions, reorderings and deletions."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from hub.cases.audit import GENESIS, AuditEntry, canonical_json, seal, verify_chain


def chain(n: int) -> list[AuditEntry]:
    out: list[AuditEntry] = []
    prev = GENESIS
    for seq in range(1, n + 1):
        e = seal(AuditEntry(7, seq, 1000 * seq, "w1", f"a{seq}", "s0", "s1", "note 网格", ("ab" * 32,), {}, prev))
        out.append(e)
        prev = e.hash
    return out


def test_canonical_json_is_stable() -> None:
    assert canonical_json({"b": 1, "a": "网"}) == '{"a":"网","b":1}'


def test_intact_chain_verifies_with_head() -> None:
    entries = chain(5)
    report = verify_chain(entries, head=entries[-1].hash, count=5)
    assert report.ok and report.count == 5


@given(st.integers(1, 8), st.data())
def test_any_tampering_is_detected(n: int, data: st.DataObject) -> None:
    entries = chain(n)
    head, count = entries[-1].hash, n
    i = data.draw(st.integers(0, n - 1))
    how = data.draw(st.sampled_from(["edit", "delete", "swap", "insert"]))
    if how == "edit":
        entries[i] = dataclasses.replace(entries[i], note="changed")
    elif how == "delete":
        del entries[i]
    elif how == "swap" and n > 1:
        j = (i + 1) % n
        entries[i], entries[j] = entries[j], entries[i]
    else:
        entries.insert(i, dataclasses.replace(entries[i]))
    assert not verify_chain(entries, head=head, count=count).ok
