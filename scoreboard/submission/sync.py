"""Flag submission for sync callers (the HTTP API, the team portal, tools)."""

from __future__ import annotations

import logging

import redis

from ..effective import EffectiveGame, PerVersion
from ..store import GameStore
from ..types import TeamID
from .history import SubmissionHistory
from .judge import Judge
from .limits import SharedRate
from .verdicts import Result

log = logging.getLogger("adrange.submit")


class Submissions:
    """Judge (of the effective game: `game`, or one following the store) + rate limit +
    submit script, over a sync store; the verdicts go to the teams' `history` (whose
    `start` a serving process calls)."""

    def __init__(self, store: GameStore, game: EffectiveGame | None = None) -> None:
        self.store = store
        self.judges = PerVersion(game or EffectiveGame(store), Judge)
        self.rate = SharedRate(store, store.config.submission.limits.rate_per_team)
        self.history = SubmissionHistory(store)

    def submit(self, team: TeamID, flags: list[str], channel: str = "http") -> list[Result]:
        """Verdicts for one team's flags, in order; flags to decide past the team's rate are denied.
        They are buffered for the team's history under `channel` ("http", "portal") and
        denials counted; only flags that need the submit script cost a Redis call."""
        judge = self.judges.get()
        batch = judge.prepare(team, flags)
        if batch.candidates:
            batch.limit(self.rate.take(team, len(batch.candidates)))
        try:
            results = judge.finish(batch, self.store.submit(team, batch.candidates))
        except redis.RedisError:
            log.exception("submit script failed")
            results = judge.failed(batch)
        self.history.record(team, channel, flags, results)
        return results
