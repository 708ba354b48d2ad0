"""AWD formula: zero-sum rounds, as on Chinese attack-defense platforms.

In each round a box's ``attack_points`` P are split equally among the teams that stole
from it that round, and the victim loses P once for that round. A box that is DOWN,
MUMBLE or CORRUPT at round close loses ``down_points`` D, shared equally by that
service's boxes that were up (if none was up, the points are gone).
Counters: ``w:k`` boxes robbed where k teams shared; ``robbed`` rounds this box lost P;
``dn`` rounds down; ``u:nd:nu`` rounds up while nd boxes were down and nu up.
Shares are exact fractions; only the final figure becomes a float.
"""

from __future__ import annotations

import math
from fractions import Fraction

from .base import Counters, Parts, ScoreContext, histogram


class AwdFormula:
    name = "awd"

    def parts(self, counters: Counters, ctx: ScoreContext) -> Parts:
        params = ctx.scoring.awd
        attack = sum((Fraction(params.attack_points * count, k) for k, count in histogram(counters, "w:")),
                     Fraction(0))
        defense = Fraction(-params.attack_points * int(counters.get("robbed", 0)))
        sla = Fraction(-params.down_points * int(counters.get("dn", 0)))
        for name, count in counters.items():
            if name.startswith("u:") and int(count):
                nd, nu = (int(x) for x in name[2:].split(":"))
                sla += Fraction(params.down_points * nd * int(count), nu)
        return Parts(float(attack), float(defense), float(sla), float(attack + defense + sla))

    def combine(self, per_service: list[Parts], ctx: ScoreContext) -> float:
        return ctx.scoring.awd.initial + math.fsum(p.total for p in per_service)
