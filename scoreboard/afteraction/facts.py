"""Every number of the after-action report, computed from the game's events here and only here.

Sources: the capture events (who stole which flag, of which round, when), the round
events (when rounds opened and closed; the status each box was counted with at each
close), and the replayed store at the end (the ranking rows, exactly the board's).

Definitions (quoted by the report and the README):

- *flags lost* of a team: its distinct flags stolen at least once (the board's "lost");
  *by attacker*: the distinct flags of the team each attacker stole (a flag stolen by two
  teams counts once for each of them, once in "lost");
- *attacks made*: accepted captures, by victim and service;
- *first blood* of a service: its first accepted capture;
- *fixed*: a team fixed a service from round R+1, R being the flag round of its last
  stolen flag of that service, when flags of that service placed after round R were
  still stolen from other teams (the exploit kept working elsewhere, not on this team).
  When nobody lost such later flags, a fix cannot be told from the end of the attacks:
  "no fix seen". A team nobody attacks any more looks fixed too (the events cannot tell
  the two apart). *Time to fix*: from the team's first flag lost on the service to the
  start of round R+1. A team's *first fix*: its earliest fixed service;
- *SLA*: the share of judged rounds a box was up (OK or RECOVERING; see scoring/policy.py),
  as on the board.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any, Literal

from ..scoring.policy import UNCHECKED
from ..types import Round, ServiceID, Status, TeamID
from .timeline import PastBoard, Timeline, differences

PatchState = Literal["never_lost", "fixed", "not_fixed"]


@dataclass
class Patch:
    """How one team's service fared against the exploit (see *fixed* above)."""

    team: TeamID
    service: ServiceID
    state: PatchState
    first_lost_t: float | None = None  # the first capture of its flags
    first_lost_round: Round | None = None  # the round that capture was made in
    last_flag_round: Round | None = None  # the flag round of its last stolen flag
    fixed_round: Round | None = None
    seconds_to_fix: float | None = None


@dataclass
class TeamFacts:
    """One team's part of the report."""

    id: TeamID
    name: str
    row: dict[str, Any]  # its final ranking row, as on the board
    statuses: dict[ServiceID, dict[Round, int]]  # the status code each round was counted with (0: unchecked)
    lost_by_service: dict[ServiceID, int]
    lost_by_attacker: dict[TeamID, int]
    attacks: dict[tuple[TeamID, ServiceID], int]  # (victim, service) -> captures made
    first_bloods: list[ServiceID]
    patches: dict[ServiceID, Patch]
    first_fix: Patch | None

    @property
    def attacks_made(self) -> int:
        return sum(self.attacks.values())


@dataclass
class ServiceFacts:
    """One service's part of the report."""

    id: ServiceID
    name: str
    first_blood: dict[str, Any] | None
    attackers: list[TeamID]  # teams that stole its flags, first exploiter first
    victims: list[TeamID]
    captures: int
    flags: int  # distinct flags stolen
    attackers_per_round: dict[Round, int]  # by the round the captures were made in
    victims_per_round: dict[Round, int]
    patches: list[Patch]  # of every team that lost its flags


@dataclass
class Facts:
    """The whole report's numbers."""

    game: str
    formula: str
    rounds: list[Round]
    round_opened: dict[Round, float]
    round_closed: dict[Round, float]
    ranking: list[dict[str, Any]]  # final rows, best first (the board's rows at the end of the replay)
    history: dict[Round, dict[TeamID, tuple[float, int]]]  # totals and ranks after each round
    teams: list[TeamFacts]  # in ranking order
    services: list[ServiceFacts]
    captures: int
    flags: int
    differences: list[str] = field(default_factory=list)  # replay vs the live record (empty: equal)

    def team_name(self, team: TeamID) -> str:
        for row in self.ranking:
            if row["team"] == team:
                return row["name"]
        return f"#{team}"


def _round_times(timeline: Timeline) -> tuple[dict[Round, float], dict[Round, float]]:
    opened, closed = {}, {}
    for step in timeline.steps:
        if step.stream == "round":
            r = int(step.event["r"])
            if step.event.get("type") == "opened":
                opened.setdefault(r, float(step.event.get("t") or step.t))
            elif step.event.get("type") == "closed":
                closed[r] = float(step.event.get("t") or step.t)
    return opened, closed


def _statuses(timeline: Timeline) -> dict[tuple[TeamID, ServiceID], dict[Round, int]]:
    """Box -> round -> the status code its close counted."""
    out: dict[tuple[TeamID, ServiceID], dict[Round, int]] = collections.defaultdict(dict)
    for step in timeline.steps:
        if step.stream == "round" and step.event.get("type") == "closed":
            for item in step.event.get("boxes", "").split():
                box, code = item.split("=")
                team, service = box.split(":")
                out[(int(team), int(service))][int(step.event["r"])] = int(code)
    return out


def _patches(captures: list[dict[str, Any]], teams: list[TeamID], service: ServiceID,
             opened: dict[Round, float]) -> dict[TeamID, Patch]:
    """Every team's `Patch` for one service, by the *fixed* rule."""
    mine = [c for c in captures if c["s"] == service]
    out = {}
    for team in teams:
        lost = [c for c in mine if c["v"] == team]
        if not lost:
            out[team] = Patch(team, service, "never_lost")
            continue
        first = min(lost, key=lambda c: c["t"])
        last = max(c["fr"] for c in lost)
        later_elsewhere = any(c["fr"] > last for c in mine if c["v"] != team)
        patch = Patch(team, service, "not_fixed", first["t"], first["r"], last)
        if later_elsewhere:
            patch.state, patch.fixed_round = "fixed", last + 1
            start = opened.get(last + 1)
            patch.seconds_to_fix = None if start is None else max(0.0, start - first["t"])
        out[team] = patch
    return out


def compute(timeline: Timeline) -> Facts:
    """The report's numbers for a game's timeline (replayed to its end)."""
    config = timeline.config
    final = timeline.final()
    ranking = PastBoard(config, final).ranking(public=True)
    playing = [row["team"] for row in ranking]
    opened, closed = _round_times(timeline)
    statuses = _statuses(timeline)
    captures = [{"a": int(e["a"]), "v": int(e["v"]), "s": int(e["s"]), "r": int(e["r"]),
                 "fr": int(e.get("fr") or e["r"]), "f": e["f"], "t": step.t}
                for step in timeline.steps if step.stream == "capture" for e in (step.event,)]
    services = [s for s in config.services]
    bloods: dict[ServiceID, dict[str, Any]] = {}
    for c in captures:
        bloods.setdefault(c["s"], {k: c[k] for k in ("a", "v", "s", "r", "t")})
    patches = {s.id: _patches(captures, playing, s.id, opened) for s in services}

    teams = []
    for row in ranking:
        team = row["team"]
        lost_flags: dict[ServiceID, set[str]] = collections.defaultdict(set)
        by_attacker: collections.Counter[TeamID] = collections.Counter()
        attacks: collections.Counter[tuple[TeamID, ServiceID]] = collections.Counter()
        for c in captures:
            if c["v"] == team:
                lost_flags[c["s"]].add(c["f"])
                by_attacker[c["a"]] += 1
            if c["a"] == team:
                attacks[(c["v"], c["s"])] += 1
        fixed = [patches[s.id][team] for s in services if patches[s.id][team].state == "fixed"]
        teams.append(TeamFacts(
            id=team, name=row["name"], row=row,
            statuses={s.id: statuses.get((team, s.id), {}) for s in services},
            lost_by_service={s.id: len(lost_flags.get(s.id, ())) for s in services},
            lost_by_attacker=dict(sorted(by_attacker.items(), key=lambda kv: (-kv[1], kv[0]))),
            attacks=dict(sorted(attacks.items())),
            first_bloods=[s for s, blood in sorted(bloods.items()) if blood["a"] == team],
            patches={s.id: patches[s.id][team] for s in services},
            first_fix=min(fixed, key=lambda p: (p.fixed_round or 0, p.service)) if fixed else None,
        ))

    service_facts = []
    for service in services:
        mine = [c for c in captures if c["s"] == service.id]
        attackers_round: dict[Round, set[TeamID]] = collections.defaultdict(set)
        victims_round: dict[Round, set[TeamID]] = collections.defaultdict(set)
        for c in mine:
            attackers_round[c["r"]].add(c["a"])
            victims_round[c["r"]].add(c["v"])
        service_facts.append(ServiceFacts(
            id=service.id, name=service.name, first_blood=bloods.get(service.id),
            attackers=list(dict.fromkeys(c["a"] for c in mine)),
            victims=list(dict.fromkeys(c["v"] for c in mine)),
            captures=len(mine), flags=len({c["f"] for c in mine}),
            attackers_per_round={r: len(v) for r, v in sorted(attackers_round.items())},
            victims_per_round={r: len(v) for r, v in sorted(victims_round.items())},
            patches=[p for p in patches[service.id].values() if p.state != "never_lost"],
        ))
    return Facts(
        game=config.game.name, formula=config.game.scoring.formula, rounds=sorted(closed),
        round_opened=opened, round_closed=closed, ranking=ranking, history=timeline.history(),
        teams=teams, services=service_facts, captures=len(captures), flags=len({c["f"] for c in captures}),
        differences=differences(timeline),
    )


def status_name(code: int) -> str:
    """A counted status code's name (UNCHECKED for a box without a verdict at its close)."""
    if code == UNCHECKED:
        return "UNCHECKED"
    try:
        return Status(code).name
    except ValueError:
        return "CHECKER_ERROR"
