"""Per-key request budget (token bucket), so one client cannot starve the others.

In-process by design: on one machine that is the whole API; on Lambda each instance keeps its own
buckets and API Gateway's throttling is the global limit. A second set of buckets, per key id and
taken *before* a key not verified recently is checked, bounds how much scrypt work guessing secrets
for a known key id can cause, without spending that key's own budget (``serving.deps``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self, per_minute: int, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if per_minute < 1:
            raise ValueError(f"per_minute must be >= 1, got {per_minute}")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)
        self._max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """Take one token for ``key``: 0.0 if allowed, else the seconds until one is available."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._store(key, tokens - 1.0, now)
                return 0.0
            self._store(key, tokens, now)
            return (1.0 - tokens) / self.rate

    def _store(self, key: str, tokens: float, now: float) -> None:
        if key not in self._buckets and len(self._buckets) >= self._max_keys:
            # Full buckets carry no information: forget them first, then the oldest entries.
            self._buckets = {
                k: v for k, v in self._buckets.items() if v[0] + (now - v[1]) * self.rate < self.capacity
            }
            while len(self._buckets) >= self._max_keys:
                del self._buckets[next(iter(self._buckets))]
        self._buckets[key] = (tokens, now)
