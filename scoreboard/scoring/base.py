"""The formula protocol and the parts every formula reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..config import Scoring

Counters = dict[str, int]


@dataclass(frozen=True)
class ScoreContext:
    """What a formula needs besides one box's counters."""

    scoring: Scoring
    active_teams: int


@dataclass(frozen=True)
class Parts:
    """One (team, service)'s score: attack, defense and SLA parts and their weighted total."""

    atk: float
    defense: float
    sla: float
    total: float


class Formula(Protocol):
    """A scoring formula: parts of one (team, service), and how services add up."""

    name: str

    def parts(self, counters: Counters, ctx: ScoreContext) -> Parts:
        """Score one (team, service) from its counters."""
        ...

    def combine(self, per_service: list[Parts], ctx: ScoreContext) -> float:
        """A team's total from its services' parts."""
        ...

    def capture_points(self, amount: int, ctx: ScoreContext) -> float:
        """Points shown to a submitter for an accepted flag, from the submit script's amount."""
        ...


def flag_counts(counters: Counters) -> tuple[int, int]:
    """(flags captured, own flags lost) of a box; faust keeps them only as histogram sums."""
    captured = counters.get("captured", 0) or sum(n for _, n in histogram(counters, "a:"))
    lost = counters.get("lost", 0) or sum(n for _, n in histogram(counters, "d:"))
    return captured, lost


def histogram(counters: Counters, prefix: str) -> list[tuple[int, int]]:
    """The (k, count) pairs of fields named prefix+k, sorted by k, zero counts left out."""
    pairs = []
    for name, value in counters.items():
        if name.startswith(prefix) and value:
            pairs.append((int(name[len(prefix) :]), int(value)))
    return sorted(pairs)


def formula_for(name: str) -> Formula:
    """The formula object for a config name."""
    from .awd import AwdFormula
    from .faust import FaustFormula
    from .rating import RatingFormula

    formulas: dict[str, Formula] = {"faust": FaustFormula(), "rating": RatingFormula(), "awd": AwdFormula()}
    return formulas[name]
