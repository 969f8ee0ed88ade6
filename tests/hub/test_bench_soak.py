"""The soak mode's pure parts: the fixed lag histogram and the RSS growth figure."""

from __future__ import annotations

import os

from simulators.bench.soak import LagHistogram, growth_pct, rss_kib


def test_lag_histogram_percentiles_and_fixed_size() -> None:
    hist = LagHistogram(buckets_ms=1000)
    size = len(hist.counts)
    hist.add_ms([-5.0, 0.4, 10.0, 10.9, 250.0, 5_000.0])
    hist.add_ms([100.0] * 94)
    assert len(hist.counts) == size  # nothing grows with the number of lags
    assert hist.percentile_s(0.5) == 0.101  # upper edge of the 100 ms bucket
    assert hist.percentile_s(0.99) == 0.251
    assert hist.percentile_s(1.0) == 1.001  # the overflow bucket
    assert LagHistogram().percentile_s(0.99) is None


def test_growth_is_measured_from_the_baseline_minute() -> None:
    samples = [(0.0, 100_000), (1.0, 120_000), (5.0, 130_000), (30.0, 136_500)]
    assert growth_pct(samples) == 5.0
    assert growth_pct(samples[:3]) is None  # nothing after the baseline yet
    assert growth_pct([(0.0, 100), (0.5, 200)]) is None


def test_rss_of_this_process_and_of_none() -> None:
    assert (rss_kib(os.getpid()) or 0) > 1000
    assert rss_kib(2**22 + 12345) is None
