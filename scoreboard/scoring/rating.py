"""Rating formula (Hackerdom/ForcAD style), with integer points so it is exact.

Every (team, service) starts with ``initial`` points. A stolen flag moves
``delta = round(scale / (1 + 10 ** (d / spread)))`` points from victim to attacker, where
d is (attacker points - victim points) cut to a bucket of ``STEP`` points and clamped to
+-``LIMIT`` buckets: stealing from a stronger team pays more than from a weaker one, and
equal teams move scale/2. A victim never goes below zero (it loses at most what it has,
and the attacker gains exactly what the victim lost). The table of deltas is computed
once, stored in Redis and read by the submit script, so Lua does no floating point.
A team's total is sum over services of points * SLA ratio, where the ratio is the credit
per judged round (OK and RECOVERING 1, see policy.RULES; 1 before any judged round), so
a round that was not judged (checker error) changes nothing.
"""

from __future__ import annotations

import math

from ..config import RatingScoring
from .base import Counters, Parts, ScoreContext
from .policy import sla_ratio

STEP = 10
LIMIT = 200


def delta_table(params: RatingScoring) -> dict[int, int]:
    """Points moved per difference bucket (-LIMIT..LIMIT)."""
    return {
        b: round(params.scale / (1 + 10 ** (b * STEP / params.spread)))
        for b in range(-LIMIT, LIMIT + 1)
    }


def points_moved(table: dict[int, int], attacker_pts: int, victim_pts: int) -> int:
    """Points moved by one capture: the same rule the submit script applies."""
    bucket = max(-LIMIT, min(LIMIT, (attacker_pts - victim_pts) // STEP))
    return min(table[bucket], victim_pts)


class RatingFormula:
    name = "rating"

    def parts(self, counters: Counters, ctx: ScoreContext) -> Parts:
        points = int(counters.get("pts", ctx.scoring.rating.initial))
        ratio = sla_ratio(counters, "rating")
        return Parts(float(points), 0.0, float(ratio), float(points * ratio))

    def capture_points(self, amount: int, ctx: ScoreContext) -> float:
        """Points a capture moved (the submit script reports them)."""
        return float(amount)

    def combine(self, per_service: list[Parts], ctx: ScoreContext) -> float:
        return math.fsum(p.total for p in per_service)
