"""Per-device sequence tracking: duplicates dropped, gaps opened, filled and declared lost.

Pure logic, no I/O and no clock of its own (callers pass ``now_ms``). A
:class:`SeqTracker` holds, for one device, the highest seq accepted, the set of
open gaps as inclusive ranges, and a bounded set of recently accepted seqs below
the first seq it saw (late arrivals of data sent before the hub first heard the
device). Anything at or below the highest seq that is neither in an open gap nor
such a late arrival has already been accepted (or declared lost): a duplicate.
Because seq is monotonic across device restarts, an epoch change needs nothing
special here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

DEFAULT_WINDOW: Final = 4096
DEFAULT_MAX_GAPS: Final = 1000


class Verdict(Enum):
    """What to do with a sequenced message."""

    ACCEPT = "accept"
    DUPLICATE = "duplicate"


@dataclass
class Gap:
    """Seqs ``first..last`` (inclusive) not yet received; ``resend_ms`` when a resend was asked."""

    first: int
    last: int
    opened_ms: int
    resend_ms: int | None = None

    @property
    def size(self) -> int:
        """How many seqs are missing."""
        return self.last - self.first + 1


@dataclass(frozen=True, slots=True)
class Observation:
    """The outcome of one :meth:`SeqTracker.observe`: verdict plus any gap opened or filled."""

    verdict: Verdict
    opened: tuple[int, int] | None = None
    #: The seq filled, as a one-seq gap with the times of the gap it was in (fills are rare: built per fill).
    filled: Gap | None = None


#: Shared results for the common cases (constructing a frozen dataclass per message is not free).
ACCEPTED: Final = Observation(Verdict.ACCEPT)
DUPLICATE: Final = Observation(Verdict.DUPLICATE)


class SeqTracker:
    """Dedup and gap detection for one device."""

    def __init__(
        self, expect_from: int | None = None, window: int = DEFAULT_WINDOW, max_gaps: int = DEFAULT_MAX_GAPS
    ) -> None:
        #: Highest seq accepted so far (``expect_from - 1`` when seeded, None before the first).
        self.high: int | None = None if expect_from is None else expect_from - 1
        #: First seq seen when not seeded; seqs below it may still arrive late (kept within ``window``).
        #: A seeded tracker knows everything below ``expect_from`` was handled: no such window.
        self.start: int | None = None
        self.window = window
        self.max_gaps = max_gaps
        self.gaps: list[Gap] = []
        self._early: set[int] = set()
        #: Gaps dropped because more than ``max_gaps`` were open; callers report them as lost.
        self.overflowed: list[Gap] = []

    def observe(self, seq: int, now_ms: int) -> Observation:
        """Classify ``seq`` and update the state."""
        high = self.high
        if high is None:
            self.high = seq
            self.start = seq
            return ACCEPTED
        if seq == high + 1:
            self.high = seq
            return ACCEPTED
        if seq > high:
            gap = Gap(high + 1, seq - 1, now_ms)
            self.gaps.append(gap)
            self.high = seq
            if len(self.gaps) > self.max_gaps:
                self.overflowed.append(self.gaps.pop(0))
            self._prune()
            return Observation(Verdict.ACCEPT, opened=(gap.first, gap.last))
        if self.gaps and (filled := self._fill(seq)) is not None:
            return Observation(Verdict.ACCEPT, filled=filled)
        start = self.start
        if start is not None and seq < start and seq > high - self.window and seq not in self._early:
            self._early.add(seq)
            return ACCEPTED
        return DUPLICATE

    def _fill(self, seq: int) -> Gap | None:
        """Take ``seq`` out of the open gap holding it; that seq as a one-seq gap with the gap's times, or None."""
        for i, gap in enumerate(self.gaps):
            if gap.first <= seq <= gap.last:
                filled = Gap(seq, seq, gap.opened_ms, gap.resend_ms)
                if gap.first == gap.last:
                    del self.gaps[i]
                elif seq == gap.first:
                    gap.first += 1
                elif seq == gap.last:
                    gap.last -= 1
                else:
                    tail = Gap(seq + 1, gap.last, gap.opened_ms, gap.resend_ms)
                    gap.last = seq - 1
                    self.gaps.insert(i + 1, tail)
                return filled
        return None

    def _prune(self) -> None:
        if self._early and self.high is not None:
            floor = self.high - self.window
            self._early = {s for s in self._early if s > floor}

    def declare_lost(self, first: int, last: int, now_ms: int = 0) -> list[tuple[int, int]]:
        """The device says ``first..last`` will never come: close those open seqs; return the ranges closed."""
        closed: list[tuple[int, int]] = []
        kept: list[Gap] = []
        for gap in self.gaps:
            lo, hi = max(gap.first, first), min(gap.last, last)
            if lo > hi:
                kept.append(gap)
                continue
            closed.append((lo, hi))
            if gap.first < lo:
                kept.append(Gap(gap.first, lo - 1, gap.opened_ms, gap.resend_ms))
            if hi < gap.last:
                kept.append(Gap(hi + 1, gap.last, gap.opened_ms, gap.resend_ms))
        self.gaps = kept
        # A declared loss above anything seen yet: remember it as seen so it never opens a gap later.
        if self.high is not None and last > self.high:
            if first > self.high + 1:
                # Seqs between what we saw and the declared range are still expected: a normal gap.
                self.gaps.append(Gap(self.high + 1, first - 1, now_ms))
            closed.append((max(first, self.high + 1), last))
            self.high = last
        return closed

    def expire(self, older_than_ms: int) -> list[Gap]:
        """Remove and return gaps opened before ``older_than_ms`` (they become data-loss records)."""
        expired = [g for g in self.gaps if g.opened_ms < older_than_ms]
        if expired:
            self.gaps = [g for g in self.gaps if g.opened_ms >= older_than_ms]
        expired.extend(self.overflowed)
        self.overflowed = []
        return expired

    def due_for_resend(self, opened_before_ms: int, now_ms: int) -> list[Gap]:
        """Gaps older than the grace that have not had a resend request; marks them as requested."""
        due = [g for g in self.gaps if g.resend_ms is None and g.opened_ms < opened_before_ms]
        for gap in due:
            gap.resend_ms = now_ms
        return due

    def missing(self) -> list[int]:
        """Every seq currently in an open gap (for tests and small gaps only)."""
        return [s for g in self.gaps for s in range(g.first, g.last + 1)]
