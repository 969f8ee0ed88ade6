"""Bisecting writes and the backoff policy, with injected clock and callbacks."""

from __future__ import annotations

import pytest

from hub.series.base import StoreError
from hub.series.delivery import MAX_RETRY_AFTER_S, Backoff, write_bisecting


class Target:
    """Refuses any part holding a negative item (400); answers 503 once to a part starting at ``flaky``."""

    def __init__(self, flaky: int | None = None, bad_lines: bool = False) -> None:
        self.stored: list[int] = []
        self.requests = 0
        self.flaky = flaky
        self.bad_lines = bad_lines

    def write(self, part: list[int]) -> None:
        self.requests += 1
        if part and part[0] == self.flaky:
            self.flaky = None
            raise StoreError("503", retryable=True, status=503)
        bad = [i for i, item in enumerate(part) if item < 0]
        if bad:
            raise StoreError(
                f"bad {part[bad[0]]}", retryable=False, status=400, bad_lines=bad if self.bad_lines else ()
            )
        self.stored.extend(part)


def run(target: Target, items: list[int]) -> tuple[list[int], StoreError | None, list[tuple[int, str]], int]:
    dead: list[tuple[int, str]] = []
    written: list[int] = []
    leftover, error = write_bisecting(
        items, target.write, lambda item, reason: dead.append((item, reason)), lambda n, ms: written.append(n)
    )
    assert sum(written) == len(target.stored)
    return leftover, error, dead, target.requests


def test_bisect_isolates_each_bad_item_and_keeps_order() -> None:
    items = list(range(100))
    items[13], items[77] = -13, -77
    target = Target()
    leftover, error, dead, requests = run(target, items)
    assert (leftover, error) == ([], None)
    assert target.stored == [i for i in items if i >= 0]
    assert dead == [(-13, "bad -13"), (-77, "bad -77")]
    assert requests <= 2 * 2 * 7 + 1


def test_named_bad_lines_skip_the_bisect() -> None:
    items = [1, -2, 3, -4, 5]
    target = Target(bad_lines=True)
    _, _, dead, requests = run(target, items)
    assert [item for item, _ in dead] == [-2, -4] and target.stored == [1, 3, 5] and requests == 2


def test_retryable_error_mid_bisect_returns_the_unwritten_rest_in_order() -> None:
    items = list(range(16))
    items[2] = -2
    target = Target(flaky=8)
    leftover, error, dead, _ = run(target, items)
    assert error is not None and error.retryable
    assert dead == [(-2, "bad -2")]
    assert target.stored == [0, 1, 3, 4, 5, 6, 7]
    assert leftover == list(range(8, 16))


def test_backoff_grows_with_jitter_and_resets() -> None:
    now = [100.0]
    backoff = Backoff(base_s=0.5, max_s=4.0, clock=lambda: now[0])
    delays = [backoff.failed() for _ in range(6)]
    for n, delay in enumerate(delays):
        cap = min(4.0, 0.5 * 2**n)
        assert cap / 2 <= delay <= cap
    assert backoff.waiting() and backoff.retry_at == pytest.approx(100.0 + delays[-1])
    now[0] += 5
    assert not backoff.waiting()
    backoff.succeeded()
    assert backoff.failures == 0 and 0.25 <= backoff.failed() <= 0.5


def test_retry_after_is_used_as_given_but_capped() -> None:
    backoff = Backoff(base_s=0.5, max_s=4.0, clock=lambda: 0.0)
    assert backoff.failed(30.0) == 30.0
    assert backoff.failed(1e9) == MAX_RETRY_AFTER_S
