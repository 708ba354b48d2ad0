"""The ranking: every team's parts and total from box counters, sorted."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .config import GameConfig
from .scoring import Parts, ScoreContext, formula_for
from .scoring.base import flag_counts
from .types import ServiceID, TeamID

CountersByBox = dict[tuple[TeamID, ServiceID], dict[str, int]]


@dataclass
class TeamRow:
    """One line of the scoreboard."""

    rank: int
    team: TeamID
    name: str
    total: float
    atk: float
    defense: float
    sla: float
    services: dict[ServiceID, Parts]
    captured: int
    lost: int

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["services"] = {str(sid): asdict(p) for sid, p in self.services.items()}
        return data


def rank(config: GameConfig, counters: CountersByBox) -> list[TeamRow]:
    """Rank the playing teams by total; tied teams share a rank (1, 2, 2, 4), listed by
    name; a pure function of the counters."""
    scoring = config.game.scoring
    formula = formula_for(scoring.formula)
    ctx = ScoreContext(scoring, active_teams=len(config.playing_teams))
    rows = []
    for team in config.playing_teams:
        parts: dict[ServiceID, Parts] = {}
        captured = lost = 0
        for service in config.services:
            box = counters.get((team.id, service.id), {})
            parts[service.id] = formula.parts(box, ctx)
            box_captured, box_lost = flag_counts(box)
            captured += box_captured
            lost += box_lost
        values = list(parts.values())
        rows.append(TeamRow(
            rank=0, team=team.id, name=team.name, total=formula.combine(values, ctx),
            atk=sum(p.atk for p in values), defense=sum(p.defense for p in values),
            sla=sum(p.sla for p in values), services=parts, captured=captured, lost=lost,
        ))
    rows.sort(key=lambda r: (-r.total, r.name))
    for position, row in enumerate(rows, 1):
        above = rows[position - 2] if position > 1 else None
        row.rank = above.rank if above is not None and above.total == row.total else position
    return rows


def ctftime_feed(tasks: list[str], ranking: list[dict[str, Any]]) -> dict[str, Any]:
    """The CTFtime scoreboard feed of ranking rows (``to_json``-shaped: rank, name, total)."""
    return {"tasks": tasks, "standings": [{"pos": r["rank"], "team": r["name"], "score": r["total"]} for r in ranking]}
