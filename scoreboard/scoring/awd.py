"""AWD formula: zero-sum rounds, as on Chinese attack-defense platforms.

Each round's flag of a box is worth ``attack_points`` P, split equally among the teams
that stole a flag of that round from it (whenever they submit it, while it is valid),
and the victim loses P once for that flag round: an old flag submitted later robs the
round it was placed in, never the victim's later rounds. A box that pays at round close
(DOWN, MUMBLE or CORRUPT, see policy.RULES) loses ``down_points`` D, shared equally by
that service's boxes that take a share: the up ones and those the platform could not
judge (a checker error costs nothing). If none takes a share, the points are gone.
Counters: ``w:k`` flag rounds robbed where k teams shared; ``robbed`` flag rounds this
box lost P; ``dn`` rounds paid; ``u:nd:nu`` rounds sharing while nd boxes paid and nu shared.
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

    def capture_points(self, amount: int, ctx: ScoreContext) -> float:
        """Attack points of a capture that made its attacker the `amount`-th robber of that
        flag round (0: the attacker had robbed that flag round already)."""
        return ctx.scoring.awd.attack_points / amount if amount else 0.0

    def combine(self, per_service: list[Parts], ctx: ScoreContext) -> float:
        return ctx.scoring.awd.initial + math.fsum(p.total for p in per_service)
