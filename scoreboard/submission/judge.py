"""The judge: what a flag is worth before and after Redis decides.

`Judge.prepare` does every check that needs no state (format, MAC, own flag, NOP team,
unknown team or service) and lists the rest for the submit script; `Judge.finish` merges
the script's answers back in order. Both are pure; callers do the I/O.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..config import GameConfig
from ..flags import FlagCodec, FlagError
from ..types import TeamID
from .verdicts import LUA_CODES, Result, Verdict


@dataclass
class Batch:
    """One attacker's flags on their way through the judge."""

    attacker: TeamID
    results: list[Result | None]
    candidates: list[tuple[str, int, int, int]] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)

    def denied(self) -> dict[str, int]:
        """Flags denied before Redis, counted by verdict (the submit script stores the counts)."""
        return dict(Counter(r.verdict.value for r in self.results if r is not None))


class Judge:
    """Pre- and post-processing of submissions for one game."""

    def __init__(self, config: GameConfig) -> None:
        self.config = config
        self.codec = FlagCodec(config.game.secret, config.game.flag_prefix)
        self.nop_teams = {t.id for t in config.teams if t.nop}
        self.team_ids = {t.id for t in config.teams}
        self.service_ids = {s.id for s in config.services if s.enabled}

    def prepare(self, attacker: TeamID, flags: list[str | bytes], granted: int | None = None) -> Batch:
        """Decide what can be decided without Redis; queue the rest.

        Flags from position ``granted`` on (past the team's rate budget) are denied.
        """
        batch = Batch(attacker, [None] * len(flags))
        for index, flag in enumerate(flags):
            if granted is not None and index >= granted:
                batch.results[index] = Result(Verdict.RATE_LIMITED)
                continue
            try:
                info = self.codec.verify(flag)
            except FlagError:
                batch.results[index] = Result(Verdict.INVALID)
                continue
            if info.team not in self.team_ids or info.service not in self.service_ids:
                batch.results[index] = Result(Verdict.INVALID)
            elif info.team == attacker:
                batch.results[index] = Result(Verdict.OWN)
            elif info.team in self.nop_teams:
                batch.results[index] = Result(Verdict.NOP)
            else:
                text = flag.decode() if isinstance(flag, bytes) else flag
                batch.candidates.append((text, info.team, info.service, info.round))
                batch.positions.append(index)
        return batch

    def finish(self, batch: Batch, answers: list[str]) -> list[Result]:
        """Fill in the script's answers; every flag then has its result, in input order."""
        for position, answer in zip(batch.positions, answers, strict=True):
            batch.results[position] = self._result(answer)
        return self.failed(batch)

    @staticmethod
    def failed(batch: Batch) -> list[Result]:
        """Results when the submit script could not run: queued flags get ERROR."""
        return [r if r is not None else Result(Verdict.ERROR) for r in batch.results]

    def _result(self, answer: str) -> Result:
        if not answer.startswith("A:"):
            return Result(LUA_CODES.get(answer, Verdict.ERROR))
        amount = int(answer[2:])
        scoring = self.config.game.scoring
        if scoring.formula == "faust":
            points = (1 + 1 / amount) * scoring.faust.atk_weight
        elif scoring.formula == "rating":
            points = float(amount)
        else:
            points = scoring.awd.attack_points / amount if amount else 0.0
        return Result(Verdict.ACCEPTED, round(points, 2))
