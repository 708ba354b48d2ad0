"""Limits shared by every process of a game, counted in Redis by the `limits` package
(connection budgets, which are per process by nature, live in `scoreboard.budgets`).

- `SharedRate`: flags per second per team, one budget for all submit and web processes.
  Each process leases a slice of the team's second from Redis (a sliding-window counter
  that never over-grants) and spends it in memory, so a busy team costs Redis about ten
  calls a second per process, not one per batch. A slice unspent within a second lapses;
  at most one slice per process can go unused, never more than the rate is granted.
- `TokenGuard`: wrong team tokens and admin passwords counted per source address over a
  sliding minute; too many lock the source out for ``token_lockout`` seconds on every
  door of every process. A locked source may still use its *home* team's own token (the
  team whose network holds the address), so guessing from one address, a shared NAT or
  a neighbour's box never locks a team out of its own portal or submission. A right token
  does not forgive earlier wrong ones (else a team could interleave its own token with
  guesses at other teams' tokens forever).

Both are blocking (sync redis); the asyncio server calls them in a thread, which happens
at most a few times a second (a lease) or once per token session.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field

import redis
from limits import RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from ..store import GameStore
from ..types import TeamID

log = logging.getLogger("adrange.auth")
SLICES_PER_SECOND = 10
RETRY_AFTER_REFUSAL = 0.1  # seconds a refused lease is not asked again: floods stay off Redis


def _limiter(store: GameStore) -> SlidingWindowCounterRateLimiter:
    storage = RedisStorage("redis://", connection_pool=store.redis.connection_pool,
                           key_prefix=f"{store.keys.prefix}limits")
    return SlidingWindowCounterRateLimiter(storage)


@dataclass
class _Lease:
    left: int = 0
    until: float = 0.0  # monotonic time the leased slice lapses
    refused_until: float = 0.0


class SharedRate:
    """Flags per second per team across all processes of the game (see module doc)."""

    def __init__(self, store: GameStore, rate: float) -> None:
        self.per_second = max(1, math.floor(rate))  # the limits package counts whole flags
        self.item = RateLimitItemPerSecond(self.per_second)
        self.slice = max(1, self.per_second // SLICES_PER_SECOND)
        self.limiter = _limiter(store)
        self._leases: dict[TeamID, _Lease] = {}
        self._lock = threading.Lock()

    def take_leased(self, team: TeamID, wanted: int) -> int | None:
        """Up to `wanted` flags from this process's lease, or None when a new lease must be
        asked first (`refill`). Never touches Redis."""
        now = time.monotonic()
        with self._lock:
            lease = self._leases.setdefault(team, _Lease())
            if now >= lease.until:
                lease.left = 0
            if lease.left < wanted and now >= lease.refused_until:
                return None
            granted = min(wanted, lease.left)
            lease.left -= granted
            return granted

    def refill(self, team: TeamID, wanted: int) -> None:
        """Lease at least the missing part of `wanted` (a slice or more) from Redis; when the
        team's second is spent, lease what is left of it and stop asking for a moment.
        With Redis unreachable the lease is granted: the submission fails anyway, with a
        verdict that tells the team to send again."""
        with self._lock:
            lease = self._leases.setdefault(team, _Lease())
            missing = max(0, wanted - lease.left)
        ask = min(self.per_second, max(missing, self.slice))
        key = str(team)
        try:
            got = ask if self.limiter.hit(self.item, key, cost=ask) else 0
            if not got:
                remaining = self.limiter.get_window_stats(self.item, key).remaining
                got = remaining if remaining > 0 and self.limiter.hit(self.item, key, cost=remaining) else 0
        except redis.RedisError as exc:
            log.warning("rate limit of team %s not checked, Redis failed: %s", team, exc)
            got = ask
        now = time.monotonic()
        with self._lock:
            if now >= lease.until:
                lease.left = 0
            lease.left += got
            lease.until = now + 1.0
            if got < missing:
                lease.refused_until = now + RETRY_AFTER_REFUSAL

    def take(self, team: TeamID, wanted: int) -> int:
        """How many of `wanted` flags the team may send now (blocking: may lease from Redis)."""
        granted = self.take_leased(team, wanted)
        if granted is None:
            self.refill(team, wanted)
            granted = self.take_leased(team, wanted)
        return granted or 0


@dataclass
class TokenGuard:
    """Lockout of sources guessing team tokens or the admin password (see module doc)."""

    store: GameStore
    failures: int
    lockout: float
    limiter: SlidingWindowCounterRateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = _limiter(self.store)
        self.item = RateLimitItemPerMinute(self.failures - 1) if self.failures > 1 else None

    def _lock_key(self, source: str) -> str:
        return f"{self.store.keys.prefix}lockout:{source}"

    def locked(self, source: str) -> bool:
        """True while `source` is locked out (False when Redis cannot say)."""
        try:
            return bool(self.store.redis.exists(self._lock_key(source)))
        except redis.RedisError:
            return False

    def admits(self, source: str, team: TeamID | None, home: TeamID | None) -> bool:
        """Whether a credential from `source` is judged at all: not while the source is locked,
        except for a right token of its home team (`team` is who the token names)."""
        return (team is not None and team == home) or not self.locked(source)

    def record(self, source: str, ok: bool, what: str) -> None:
        """Count a wrong `what` (team token, admin password) from `source`; log guesses and
        lockouts. Right ones are not counted and forgive nothing."""
        if ok:
            return
        try:
            over = self.item is None or not self.limiter.hit(self.item, "credential", source)
            if over and self.lockout > 0:
                self.store.redis.set(self._lock_key(source), what, px=max(1, round(self.lockout * 1000)))
        except redis.RedisError as exc:
            log.warning("wrong %s from %s not counted, Redis failed: %s", what, source, exc)
            return
        if over and self.lockout > 0:
            log.warning("%s locked out for %gs after wrong %s", source, self.lockout, what)
        else:
            log.warning("wrong %s from %s", what, source)
