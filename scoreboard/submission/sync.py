"""Flag submission for sync callers (the HTTP API, the team portal, tools)."""

from __future__ import annotations

import logging

import redis

from ..store import GameStore
from ..types import TeamID
from .judge import Judge
from .limits import RateLimiter
from .verdicts import Result

log = logging.getLogger("adrange.submit")


class Submissions:
    """Judge + rate limit + submit script, over a sync store."""

    def __init__(self, store: GameStore) -> None:
        self.store = store
        self.judge = Judge(store.config)
        self.rate = RateLimiter(store.config.submission.limits.rate_per_team)

    def submit(self, team: TeamID, flags: list[str]) -> list[Result]:
        """Verdicts for one team's flags, in order; flags past the team's rate are denied."""
        batch = self.judge.prepare(team, flags, self.rate.take(team, len(flags)))
        try:
            answers = self.store.submit(team, batch.candidates, batch.denied())
        except redis.RedisError:
            log.exception("submit script failed")
            return self.judge.failed(batch)
        return self.judge.finish(batch, answers)
