"""Per-team rate limiting and token-guessing lockout, in process memory (connection budgets: `scoreboard.budgets`)."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("adrange.auth")


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


class TokenGuard:
    """Locks a source address out after too many wrong team tokens (brute-force guessing).

    Each wrong token counts against its source; ``failures`` wrong tokens within ``window``
    seconds lock the source out for ``lockout`` seconds, during which even a right token is
    refused. A right token clears the source's count. Memory stays bounded: at most
    ``max_sources`` sources are tracked, the stalest dropped first.
    """

    def __init__(self, failures: int, lockout: float, window: float = 60.0, max_sources: int = 100_000) -> None:
        self.failures = failures
        self.lockout = lockout
        self.window = window
        self.max_sources = max_sources
        self._seen: dict[str, tuple[int, float]] = {}  # source -> (failures, first failure)
        self._locked: dict[str, float] = {}  # source -> locked until

    def locked(self, source: str) -> bool:
        """True while `source` is locked out."""
        until = self._locked.get(source)
        if until is None:
            return False
        if time.monotonic() < until:
            return True
        del self._locked[source]
        return False

    def failed(self, source: str) -> bool:
        """Count a wrong token from `source`; True when this failure locks it out."""
        now = time.monotonic()
        count, first = self._seen.pop(source, (0, now))
        if now - first > self.window:
            count, first = 0, now
        count += 1
        if count >= self.failures:
            self._locked[source] = now + self.lockout
            return True
        if len(self._seen) >= self.max_sources:
            self._seen.pop(next(iter(self._seen)))
        self._seen[source] = (count, first)
        if len(self._locked) > self.max_sources:
            self._locked = {s: u for s, u in self._locked.items() if u > now}
        return False

    def succeeded(self, source: str) -> None:
        """A right token from `source`: forget its failures."""
        self._seen.pop(source, None)

    def record(self, source: str, ok: bool, what: str) -> None:
        """Count a right or wrong `what` (token, password) from `source`; log guesses and lockouts."""
        if ok:
            self.succeeded(source)
        elif self.failed(source):
            log.warning("%s locked out for %gs after wrong %s", source, self.lockout, what)
        else:
            log.warning("wrong %s from %s", what, source)
