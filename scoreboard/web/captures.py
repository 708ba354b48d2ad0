"""Traffic captures for the teams: the portal page and the API (scoreboard/captures.py has the rules).

``GET /api/captures`` lists the asking team's released pcap files (``X-Team-Token`` or portal
session), ``GET /api/captures/<file>`` downloads one. A file name is taken only in the exact
form the capture process writes, and looked up only in the folder of the team it names: a
team asking for another team's file, for a file not released yet, or for a name that is not
a capture file gets 404, the same answer as for a file that does not exist. Admins (session
or HTTP Basic) have ``GET /admin/api/captures`` and ``/admin/api/captures/<file>``: every
team's files, released or not. ``GET /team/captures`` shows the list with download links
in the portal. A game without captures answers the lists with ``"enabled": false``.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, jsonify, render_template, send_file, url_for

from .. import captures as files
from ..types import TeamID
from .auth import admin_required, team_required
from .context import board_data, game_config, game_store

captures = Blueprint("captures", __name__)
PCAP_TYPE = "application/vnd.tcpdump.pcap"


@captures.app_context_processor
def portal_link() -> dict:
    """`config_captures` for the portal page's link (None when the game captures nothing)."""
    settings = game_config().captures
    return {"config_captures": settings if settings.enabled else None}


def _listing(shown: list[files.CaptureFile], endpoint: str) -> Response:
    settings = game_config().captures
    return jsonify({"enabled": settings.enabled, "delay_rounds": settings.delay_rounds,
                    "round": game_store().state()["round"],
                    "files": [{**f.as_json(), "url": url_for(endpoint, name=f.name)} for f in shown]})


def _send(name: str, team: TeamID | None) -> Response:
    """The file `name` for `team` (None: an admin), or 404."""
    config = game_config()
    parsed = files.parse_name(name, config.game.name) if config.captures.enabled else None
    if parsed is None or (team is not None and (parsed[0] != team or not files.released(
            parsed[2], game_store().state(), config.captures.delay_rounds))):
        abort(404)
    path = files.team_dir(config, parsed[0]) / name  # the name matched NAME: no separator, no '..'
    try:
        handle = path.open("rb")
    except (FileNotFoundError, IsADirectoryError):  # never written, or pruned (oldest first) meanwhile
        abort(404)
    return send_file(handle, mimetype=PCAP_TYPE, as_attachment=True, download_name=name, max_age=0)


def team_released(team: TeamID) -> list[files.CaptureFile]:
    """The team's files it may have now ([] when the game captures nothing)."""
    config = game_config()
    return files.released_files(config, game_store().state(), team) if config.captures.enabled else []


@captures.get("/api/captures")
@team_required
def listing(team: TeamID):
    """The team's released capture files: name, team, service, round, part, bytes, url."""
    return _listing(team_released(team), "captures.download")


@captures.get("/api/captures/<name>")
@team_required
def download(name: str, team: TeamID):
    """One of the team's released pcap files (404 otherwise, whatever the reason)."""
    return _send(name, team)


@captures.get("/admin/api/captures")
@admin_required
def admin_listing():
    """Every team's finished capture files, released or not."""
    config = game_config()
    shown = [f for t in board_data().config().teams for f in files.team_files(config, t.id)] \
        if config.captures.enabled else []
    return _listing(shown, "captures.admin_download")


@captures.get("/admin/api/captures/<name>")
@admin_required
def admin_download(name: str):
    """Any team's finished pcap file."""
    return _send(name, None)


@captures.get("/team/captures")
@team_required
def page(team: TeamID):
    """The portal's list of the team's released capture files."""
    config = board_data().config()
    return render_template("captures.html", team=config.team(team), files=team_released(team),
                           enabled=config.captures.enabled,
                           delay=config.captures.delay_rounds, game=config.game.name)
