"""Traffic captures for the teams: the portal page and the API (scoreboard/captures.py has the rules).

``GET /api/captures`` lists the released pcap files of the asking team (``X-Team-Token`` or
portal session; an admin, by session or HTTP Basic, gets every team's, released or not);
``GET /api/captures/<file>`` downloads one. A file name is taken only in the exact form the
capture process writes, and looked up only in the folder of the team it names: a team asking
for another team's file, a file not released yet or a name that is not a capture file gets
404, the same answer as for a file that does not exist. ``GET /team/captures`` shows the list
with download links in the portal.
"""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, render_template, send_file, url_for

from .. import captures as files
from ..types import TeamID
from .auth import current_team, is_admin, team_required
from .context import board_data, game_config, game_store

captures = Blueprint("captures", __name__)
PCAP_TYPE = "application/vnd.tcpdump.pcap"


def _viewer() -> tuple[bool, TeamID | None] | None:
    """(admin, team) of the request, or None when it brings no valid credential."""
    if is_admin():
        return True, None
    team = current_team()
    return (False, team) if team is not None else None


def _off():
    return jsonify({"status": False, "msg": "this game hands out no traffic captures (captures.enabled is false)"}), 404


def _unknown():
    return jsonify({"status": False, "msg": "team token required (X-Team-Token header)"}), 401


def visible(admin: bool, team: TeamID | None) -> list[files.CaptureFile]:
    """The finished files this viewer may have: a team its released ones, an admin every one."""
    config = game_config()
    if admin:
        return [f for t in board_data().config().teams for f in files.team_files(config, t.id)]
    assert team is not None
    return files.released_files(config, game_store().state(), team)


@captures.app_context_processor
def portal_link() -> dict:
    """`config_captures` for the portal page's link (None when the game captures nothing)."""
    settings = game_config().captures
    return {"config_captures": settings if settings.enabled else None}


@captures.get("/api/captures")
def listing():
    """The viewer's capture files: name, team, service, round, part, bytes, download url."""
    if not game_config().captures.enabled:
        return _off()
    viewer = _viewer()
    if viewer is None:
        return _unknown()
    shown = [{**f.as_json(), "url": url_for("captures.download", name=f.name)} for f in visible(*viewer)]
    return jsonify({"delay_rounds": game_config().captures.delay_rounds, "round": game_store().state()["round"],
                    "files": shown})


@captures.get("/api/captures/<name>")
def download(name: str):
    """One pcap file, if the viewer may have it (404 otherwise, whatever the reason)."""
    config = game_config()
    if not config.captures.enabled:
        return _off()
    viewer = _viewer()
    if viewer is None:
        return _unknown()
    admin, team = viewer
    parsed = files.parse_name(name, config.game.name)
    if parsed is None or (not admin and parsed[0] != team):
        abort(404)
    if not admin and not files.released(parsed[2], game_store().state(), config.captures.delay_rounds):
        abort(404)
    path = files.team_dir(config, parsed[0]) / name  # the name matched NAME: no separator, no '..'
    if not path.is_file():
        abort(404)
    return send_file(path, mimetype=PCAP_TYPE, as_attachment=True, download_name=name, max_age=0)


@captures.get("/team/captures")
@team_required
def page(team: TeamID):
    """The portal's list of the team's released capture files."""
    config = board_data().config()
    shown = visible(False, team) if config.captures.enabled else []
    return render_template("captures.html", team=config.team(team), files=shown, enabled=config.captures.enabled,
                           delay=config.captures.delay_rounds, game=config.game.name)
