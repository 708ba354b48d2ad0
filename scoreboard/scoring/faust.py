"""FAUST CTF formula.

ATK = sum over captured flags of (1 + 1/c(f)), c(f) the number of teams that captured f;
DEF = -sum over own lost flags of c(f)**0.75;
SLA = rounds played * credit per judged round * sqrt(active non-NOP teams), the credit
(OK 1, RECOVERING 1/2) from policy.RULES: a round that was not judged earns the box's
average, so a checker error costs nothing.
Counters: ``a:k`` flags this team captured that now have k capturers;
``d:k`` own flags lost that have k capturers; status fields, ``rounds``, ``counted``.
"""

from __future__ import annotations

import math
from fractions import Fraction

from .base import Counters, Parts, ScoreContext, histogram
from .policy import sla_ratio


class FaustFormula:
    name = "faust"

    def parts(self, counters: Counters, ctx: ScoreContext) -> Parts:
        weights = ctx.scoring.faust
        atk = Fraction(0)
        for k, count in histogram(counters, "a:"):
            atk += count + Fraction(count, k)
        defense = -math.fsum(count * k**0.75 for k, count in histogram(counters, "d:"))
        rounds = int(counters.get("rounds", 0))
        sla = float(sla_ratio(counters, "faust") * rounds) * math.sqrt(ctx.active_teams)
        atk_f = float(atk)
        total = weights.atk_weight * atk_f + weights.def_weight * defense + weights.sla_weight * sla
        return Parts(atk_f, defense, sla, total)

    def capture_points(self, amount: int, ctx: ScoreContext) -> float:
        """Attack points of a capture that now has `amount` capturers."""
        return (1 + 1 / amount) * ctx.scoring.faust.atk_weight

    def combine(self, per_service: list[Parts], ctx: ScoreContext) -> float:
        return math.fsum(p.total for p in per_service)
