"""The per-key token bucket, with an injected clock."""

from __future__ import annotations

import pytest

from serving.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(60, clock=clock)  # one token per second, burst of 60
    assert all(limiter.acquire("k") == 0.0 for _ in range(60))
    wait = limiter.acquire("k")
    assert wait == pytest.approx(1.0)
    clock.now += 0.5
    assert limiter.acquire("k") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.acquire("k") == 0.0
    assert limiter.acquire("other") == 0.0  # keys have separate budgets


def test_bucket_table_is_bounded_and_forgets_full_buckets_first() -> None:
    clock = Clock()
    limiter = RateLimiter(2, max_keys=3, clock=clock)
    limiter.acquire("busy")
    limiter.acquire("busy")
    for key in ("a", "b"):
        limiter.acquire(key)
    clock.now += 3600  # a and b refill completely; busy does too
    limiter.acquire("c")
    assert len(limiter._buckets) <= 3
    with pytest.raises(ValueError, match="per_minute"):
        RateLimiter(0)
