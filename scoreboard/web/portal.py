"""Team portal: log in with the team token, see own services, submit flags, see history.

Flags sent through the portal form are judged exactly like ``PUT /flags`` (same judge
and rate limiter). The history lists the team's newest submissions over every channel
(TCP dialects, HTTP, this form) with their verdicts (`submission.history`); accepted
captures show from the capture stream.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for

from ..access import team_access
from ..flags import FlagCodec
from ..submission.dialects import printable
from ..submission.history import FLAG_CHARS, KEEP, team_history
from ..types import TeamID
from .api import team_view
from .auth import current_team, fresh_session, team_by_token, team_required
from .context import board_data, game_store, submissions
from .i18n import clock

portal = Blueprint("portal", __name__, url_prefix="/team")
portal.add_app_template_filter(clock, "clock")


def submit_instructions(team: TeamID) -> dict:
    """How this team submits: TCP host and port per dialect, HTTP, its token, its source
    network (address-identified dialects) and the flag format, from the effective game."""
    config = board_data().config()
    sub = config.submission
    host = sub.host if sub.host not in ("0.0.0.0", "::") else request.host.rsplit(":", 1)[0]
    me = config.team(team)
    tcp = [{"dialect": name, "port": port, "by_token": name == "forcad"}
           for name, port in (("faust", sub.faust_port), ("ructf", sub.ructf_port), ("forcad", sub.forcad_port))
           if port is not None]
    return {"host": host, "tcp": tcp, "http": sub.http, "url": request.host_url.rstrip("/") + "/flags",
            "token": me.token, "network": me.network, "pattern": FlagCodec(config.game.secret,
                                                                           config.game.flag_prefix).pattern,
            "batch": sub.limits.batch_size}


def target_access(team: TeamID) -> list[dict]:
    """SSH logins for the team's hosted boxes ([] for external targets)."""
    return team_access(board_data().config(), team)


@portal.route("/login", methods=["GET", "POST"])
def login():
    """The token form; a right token starts a team session."""
    error = False
    if request.method == "POST":
        team = team_by_token(request.form.get("token", "").strip())
        if team is not None:
            fresh_session()
            session["team"] = team
            return redirect(url_for("portal.home"))
        error = True
    if current_team() is not None and request.method == "GET":
        return redirect(url_for("portal.home"))
    return render_template("login.html", error=error, field="token", game=board_data().config().game.name,
                           action=url_for("portal.login"), title_key="portal")


@portal.post("/logout")
def logout():
    """End the team session."""
    fresh_session()
    return redirect(url_for("board.index"))


@portal.get("/")
@team_required
def home(team: TeamID):
    """Own services, submission form, submission history, attack data and access."""
    config = board_data().config()
    view = team_view(team)
    names = {t.id: t.name for t in config.teams}
    services = {s.id: s.name for s in config.services}
    return render_template("portal.html", team=config.team(team), view=view, names=names, services=services,
                           history=team_history(game_store(), team), keep=KEEP,
                           access=target_access(team), how=submit_instructions(team),
                           game=config.game.name, result=session.pop("result", None))


@portal.post("/submit")
@team_required
def submit(team: TeamID):
    """Judge the flags of the form (one per line) and show their verdicts."""
    flags = [line.strip() for line in request.form.get("flags", "").splitlines() if line.strip()]
    limit = board_data().config().submission.limits.batch_size
    flags = flags[:limit]
    subs, _ = submissions()
    results = subs.submit(team, flags, channel="portal")
    subs.history.flush()  # the form's verdicts are in the history at once (a person's pace, not a farm's)
    game_store().add_stats({"portal_submitted": len(flags)})
    session["result"] = [{"flag": printable(flag.encode(), FLAG_CHARS), "verdict": r.verdict.value, "points": r.points}
                         for flag, r in zip(flags[:50], results, strict=False)]  # the cookie carries it: lean
    return redirect(url_for("portal.home"))
