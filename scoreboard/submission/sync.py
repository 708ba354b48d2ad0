"""Flag submission for sync callers (the HTTP API, the team portal, tools)."""

from __future__ import annotations

import logging

import redis

from ..effective import EffectiveGame, PerVersion
from ..store import GameStore
from ..types import TeamID
from .judge import Judge
from .limits import RateLimiter
from .verdicts import Result

log = logging.getLogger("adrange.submit")


class Submissions:
    """Judge (of the effective game: `game`, or one following the store) + rate limit +
    submit script, over a sync store."""

    def __init__(self, store: GameStore, game: EffectiveGame | None = None) -> None:
        self.store = store
        self.judges = PerVersion(game or EffectiveGame(store), Judge)
        self.rate = RateLimiter(store.config.submission.limits.rate_per_team)

    def submit(self, team: TeamID, flags: list[str]) -> list[Result]:
        """Verdicts for one team's flags, in order; flags past the team's rate are denied."""
        judge = self.judges.get()
        batch = judge.prepare(team, flags, self.rate.take(team, len(flags)))
        try:
            answers = self.store.submit(team, batch.candidates, batch.denied())
        except redis.RedisError:
            log.exception("submit script failed")
            return judge.failed(batch)
        return judge.finish(batch, answers)
