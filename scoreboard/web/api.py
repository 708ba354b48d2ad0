"""Public and team JSON APIs (DESIGN 8) and Prometheus metrics.

Public: ``/api/teams``, ``/api/services``, ``/api/round``, ``/api/scoreboard``,
``/api/client/attack_data`` (ForcAD shape), ``/api/attack.json`` (saarCTF shape),
``/api/ctftime`` and ``/metrics``. Team-only (X-Team-Token or portal session):
``/api/team/status`` and ``/api/team/submissions``. No token ever leaves in a public answer;
scores follow the freeze like the public board.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from ..ranking import ctftime_feed
from ..scoring.base import flag_counts
from ..submission.history import team_history
from ..types import TeamID
from .auth import team_required
from .board_data import attack_of
from .context import board_data, game_store
from .metrics import render

api = Blueprint("api", __name__)


@api.get("/api/teams")
def teams():
    """Playing teams: id, name, address (no tokens)."""
    config = board_data().config()
    return jsonify([{"id": t.id, "name": t.name, "address": t.address} for t in config.playing_teams])


@api.get("/api/services")
def services():
    """Enabled services: id, name, ports."""
    config = board_data().config()
    return jsonify([{"id": s.id, "name": s.name, "ports": s.ports} for s in config.services if s.enabled])


@api.get("/api/round")
def round_():
    """Current round, game state, round start, round length and seconds remaining."""
    info = board_data().round_info()
    return jsonify({k: info[k] for k in ("round", "state", "round_start", "round_seconds", "remaining")})


@api.get("/api/scoreboard")
def scoreboard():
    """The public board: ranking, status matrix, round, attacks, first bloods, history."""
    return jsonify(board_data().snapshot(public=True))


def _valid_flag_ids() -> dict[str, dict[str, dict[int, list[str]]]]:
    """service name -> team address -> round -> public flag ids, for flags still valid."""
    data = board_data()
    config = data.config()
    current = game_store().state()["round"]
    lifetime = config.game.flag_lifetime
    teams = {t.id: t for t in config.playing_teams}
    names = {s.id: s.name for s in config.services if s.enabled}
    out: dict[str, dict[str, dict[int, list[str]]]] = {name: {} for name in names.values()}
    for round_ in range(max(1, current - lifetime + 1), current + 1):
        for (team, service, _slot), flag in sorted(game_store().placed_flags(round_).items()):
            if team in teams and service in names and flag.get("public"):
                per_team = out[names[service]].setdefault(teams[team].address or str(team), {})
                per_team.setdefault(round_, []).append(flag["public"])
    return out


@api.get("/api/client/attack_data")
def attack_data():
    """ForcAD shape: {service: {team address: [flag ids of valid flags]}}."""
    out = {service: {address: [fid for ids in by_round.values() for fid in ids]
                     for address, by_round in per_team.items()}
           for service, per_team in _valid_flag_ids().items()}
    return jsonify(out)


@api.get("/api/attack.json")
def attack_json():
    """saarCTF shape: {"teams": [...], "flag_ids": {service: {ip: {round: [ids]}}}}."""
    config = board_data().config()
    teams = [{"id": t.id, "name": t.name, "ip": t.address} for t in config.playing_teams]
    flag_ids = {service: {ip: {str(r): ids for r, ids in by_round.items()} for ip, by_round in per_team.items()}
                for service, per_team in _valid_flag_ids().items()}
    return jsonify({"teams": teams, "flag_ids": flag_ids})


@api.get("/api/ctftime")
def ctftime():
    """CTFtime scoreboard feed."""
    data = board_data()
    ranking = data.ranking(public=True)
    return jsonify(ctftime_feed([s.name for s in data.config().services if s.enabled], ranking))


@api.get("/metrics")
def metrics():
    """Prometheus text: round, state, flags by verdict, boxes per status, the round engine's
    dispatch delays, unstarted and unfinished chains and checker action durations."""
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(render(game_store()), mimetype=CONTENT_TYPE_LATEST.split(";")[0],
                    headers={"Content-Type": CONTENT_TYPE_LATEST})


def team_view(team: TeamID) -> dict[str, Any]:
    """A team's own boxes (status, public message, counters) and its recent accepted captures."""
    data = board_data()
    config = data.config()
    matrix = data.matrix(public=False)
    counters = game_store().counters(config)
    boxes = []
    for service in config.services:
        if not service.enabled:
            continue
        cell = matrix.get(f"{team}:{service.id}", {})
        stolen, lost = flag_counts(counters.get((team, service.id), {}))
        boxes.append({"service": service.id, "name": service.name, "status": cell.get("status"),
                      "message": cell.get("message", ""), "stolen": stolen, "lost": lost})
    captures = [attack_of(e) for e in game_store().recent_events("capture", 5000) if int(e["a"]) == team]
    return {"team": team, "services": boxes, "captures": captures[:200]}


@api.get("/api/team/status")
@team_required
def team_status(team: TeamID):
    """The team's own boxes and accepted captures (token or portal session)."""
    return jsonify(team_view(team))


@api.get("/api/team/submissions")
@team_required
def team_submissions(team: TeamID):
    """The team's recent submissions over every channel with verdicts, newest first."""
    return jsonify(team_history(game_store(), team))
