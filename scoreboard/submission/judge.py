"""The judge: what a flag is worth before and after Redis decides.

`Judge.prepare` does every check that needs no state (an unknown or disabled submitter,
the NOP team submitting, format, MAC, own flag, NOP team's flag, unknown team or disabled
service) and lists the rest for the submit script; `Judge.finish` merges
the script's answers back in order. Both are pure; callers do the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import GameConfig
from ..flags import FlagCodec
from ..scoring import ScoreContext, formula_for
from ..types import TeamID
from .verdicts import LUA_CODES, Result, Verdict

# The verdicts decided here, made once: a flood of garbage creates no objects per flag.
_INVALID, _OWN, _NOP, _RATE_LIMITED = (Result(v) for v in (Verdict.INVALID, Verdict.OWN, Verdict.NOP,
                                                           Verdict.RATE_LIMITED))


@dataclass
class Batch:
    """One attacker's flags on their way through the judge."""

    attacker: TeamID
    results: list[Result | None]
    candidates: list[tuple[str, int, int, int]] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)

    def limit(self, granted: int) -> None:
        """Deny the candidates past the first `granted` (the team's rate): only flags that
        would cost the submit script count against the rate, garbage is judged for free."""
        for position in self.positions[granted:]:
            self.results[position] = _RATE_LIMITED
        del self.candidates[granted:], self.positions[granted:]


class Judge:
    """Pre- and post-processing of submissions for one game (build it from the effective
    game: `PerVersion(game, Judge)` follows the admins' edits)."""

    def __init__(self, config: GameConfig) -> None:
        self.config = config
        self.codec = FlagCodec(config.game.secret, config.game.flag_prefix)
        self.formula = formula_for(config.game.scoring.formula)
        self.score_context = ScoreContext(config.game.scoring, active_teams=len(config.playing_teams))
        self.nop_teams = {t.id for t in config.teams if t.nop}
        self.team_ids = {t.id for t in config.teams}
        self.service_ids = {s.id for s in config.services if s.enabled}

    def prepare(self, attacker: TeamID, flags: list[str | bytes]) -> Batch:
        """Decide what can be decided without Redis; queue the rest (`Batch.limit` then
        applies the team's rate to what is queued)."""
        if attacker not in self.team_ids:  # disabled mid-session, or never a team
            return Batch(attacker, [Result(Verdict.UNKNOWN_TEAM)] * len(flags))
        if attacker in self.nop_teams:
            return Batch(attacker, [Result(Verdict.NOP_SUBMITTER)] * len(flags))
        batch = Batch(attacker, [None] * len(flags))
        check, results, teams, services, nop = self.codec.check, batch.results, self.team_ids, self.service_ids, \
            self.nop_teams
        for index, info in enumerate(map(check, flags)):
            if info is None or info.team not in teams or info.service not in services:
                results[index] = _INVALID
            elif info.team == attacker:
                results[index] = _OWN
            elif info.team in nop:
                results[index] = _NOP
            else:
                flag = flags[index]
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
        points = self.formula.capture_points(int(answer[2:]), self.score_context)
        return Result(Verdict.ACCEPTED, round(points, 2))
