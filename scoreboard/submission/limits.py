"""Per-team rate limiting and per-source connection counting, in process memory."""

from __future__ import annotations

import time
from collections import defaultdict


class TokenBucket:
    """Allows ``rate`` events per second with a burst of one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.stamp = time.monotonic()

    def take(self, wanted: int) -> int:
        """Take up to ``wanted`` tokens; return how many were granted."""
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        granted = min(wanted, int(self.tokens))
        self.tokens -= granted
        return granted


class RateLimiter:
    """One token bucket per key (team)."""

    def __init__(self, rate: float) -> None:
        self._buckets: dict[object, TokenBucket] = {}
        self.rate = rate

    def take(self, key: object, wanted: int) -> int:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate)
        return bucket.take(wanted)


class ConnectionCounter:
    """Open connections per source address, with a cap."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: defaultdict[str, int] = defaultdict(int)

    def acquire(self, source: str) -> bool:
        if self.open[source] >= self.limit:
            return False
        self.open[source] += 1
        return True

    def release(self, source: str) -> None:
        self.open[source] -= 1
        if self.open[source] <= 0:
            del self.open[source]
