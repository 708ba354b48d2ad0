"""FAUST CTF formula.

ATK = sum over captured flags of (1 + 1/c(f)), c(f) the number of teams that captured f;
DEF = -sum over own lost flags of c(f)**0.75;
SLA = (OK rounds + 0.5 * RECOVERING rounds) * sqrt(active non-NOP teams).
Counters: ``a:k`` flags this team captured that now have k capturers;
``d:k`` own flags lost that have k capturers; ``ok``, ``rec`` rounds.
"""

from __future__ import annotations

import math
from fractions import Fraction

from .base import Counters, Parts, ScoreContext, histogram


class FaustFormula:
    name = "faust"

    def parts(self, counters: Counters, ctx: ScoreContext) -> Parts:
        weights = ctx.scoring.faust
        atk = Fraction(0)
        for k, count in histogram(counters, "a:"):
            atk += count + Fraction(count, k)
        defense = -math.fsum(count * k**0.75 for k, count in histogram(counters, "d:"))
        sla = (int(counters.get("ok", 0)) + 0.5 * int(counters.get("rec", 0))) * math.sqrt(ctx.active_teams)
        atk_f = float(atk)
        total = weights.atk_weight * atk_f + weights.def_weight * defense + weights.sla_weight * sla
        return Parts(atk_f, defense, sla, total)

    def combine(self, per_service: list[Parts], ctx: ScoreContext) -> float:
        return math.fsum(p.total for p in per_service)
