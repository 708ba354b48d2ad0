"""Admin panel and admin API: game state, schedule, teams and services, announcements,
checker logs, re-running a check, reset.

Pages under ``/admin`` use the admin session (forms carry the CSRF token); the same
actions are JSON under ``/admin/api`` for scripts, with HTTP Basic auth or the session.
Every action is logged to the admin stream.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from flask import Blueprint, jsonify, redirect, render_template, request, session, url_for

from ..check_requests import request_rerun
from ..store import StateError
from ..types import GameState, Status
from .auth import admin_password_ok, admin_required, ensure_admin_password
from .context import board_data, game_config, game_store, json_body
from .overrides import apply_overrides, disabled_teams

admin = Blueprint("admin", __name__, url_prefix="/admin")
CHECK_ROUNDS = 10


class ActionError(Exception):
    """An admin action that cannot be done; the message says why."""


# -- actions (shared by forms and the JSON API) -----------------------------------------
def change_state(action: str) -> str:
    """start, pause, resume or stop the game; resume gives the round back its paused time."""
    store = game_store()
    targets = {"start": GameState.RUNNING, "pause": GameState.PAUSED, "resume": GameState.RUNNING,
               "stop": GameState.OVER}
    if action not in targets:
        raise ActionError(f"unknown action {action!r}: use start, pause, resume or stop")
    state = store.state()
    if action == "resume":
        if state["state"] != GameState.PAUSED:
            raise ActionError("the game is not paused")
        store.shift_round_start(time.time() - state["paused_at"])
    if action == "start" and state["state"] != GameState.NOT_STARTED:
        raise ActionError("the game has started already (use resume after a pause)")
    try:
        store.set_state(targets[action], actor="admin", reason=action)
    except StateError as exc:
        raise ActionError(str(exc)) from None
    return f"game {action}: now {targets[action].value}"


def _epoch(value: Any) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return dt.datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        raise ActionError(f"not a time: {value!r} (use ISO 8601, e.g. 2025-01-01T10:00)") from None


def set_schedule(start: Any, stop: Any) -> str:
    """Start and/or stop the game automatically at these times (ISO text or epoch seconds)."""
    schedule = {"start": _epoch(start), "stop": _epoch(stop)}
    game_store().set_web_value("schedule", json.dumps(schedule))
    game_store().log_admin("schedule", "admin", **schedule)
    return "schedule saved"


def save_team(values: dict[str, Any]) -> str:
    """Edit a team (id given) or add one (no id): name, address, disabled."""
    config = board_data().config()
    changes = {k: values[k] for k in ("name", "address") if values.get(k)}
    if "disabled" in values:
        changes["disabled"] = values["disabled"] in (True, "1", "on", "true")
    if values.get("id"):
        team_id = int(values["id"])
        if team_id not in {t.id for t in game_config().teams} and ("team", team_id) not in game_store().overrides():
            raise ActionError(f"no team with id {team_id}")
    else:
        if not changes.get("name"):
            raise ActionError("a new team needs a name")
        if changes["name"] in {t.name for t in config.teams}:
            raise ActionError(f"team name {changes['name']!r} is taken")
        team_id = max(t.id for t in _all_teams()) + 1
        changes["new"] = True
        if values.get("token"):
            changes["token"] = values["token"]
    game_store().set_override("team", team_id, changes, "admin")
    return f"team {team_id} saved"


def save_service(values: dict[str, Any]) -> str:
    """Rename or disable/enable a service."""
    service_id = int(values.get("id") or 0)
    if service_id not in {s.id for s in game_config().services}:
        raise ActionError(f"no service with id {service_id}")
    changes: dict[str, Any] = {"disabled": values.get("disabled") in (True, "1", "on", "true")}
    if values.get("name"):
        changes["name"] = values["name"]
    game_store().set_override("service", service_id, changes, "admin")
    return f"service {service_id} saved"


def announce(text: str) -> str:
    """Publish an announcement on the board."""
    text = (text or "").strip()
    if not text:
        raise ActionError("an announcement needs text")
    game_store().add_announcement(text[:2000], "admin")
    return "announcement published"


def check_log(team: int, service: int) -> list[dict[str, Any]]:
    """The box's last checker results, newest first, with private messages and details."""
    store = game_store()
    current = store.state()["round"]
    out = []
    for round_ in range(current, max(0, current - CHECK_ROUNDS), -1):
        record = store.check_details(round_).get((team, service))
        if record:
            out.append({**record, "round": round_, "status_name": Status(int(record["status"])).name})
    return out


def rerun_check(team: int, service: int) -> str:
    """Ask the checker workers to run the box's check chain again now."""
    config = game_config()
    round_ = game_store().state()["round"]
    request_rerun(config, round_, team, service)
    game_store().log_admin("rerun", "admin", team=team, service=service, round=round_)
    return f"check of team {team} service {service} queued"


def reset_game(confirm: str) -> str:
    """Delete the game's state; confirm must be the game's name."""
    config = game_config()
    if confirm != config.game.name:
        raise ActionError(f"type the game name {config.game.name!r} to confirm the reset")
    store = game_store()
    admin_hash = store.web_value("admin_hash")
    store.reset()
    store.init()
    if admin_hash:
        store.set_web_value_once("admin_hash", admin_hash)
    store.log_admin("reset", "admin")
    return "game reset"


def _all_teams():
    overrides = {k: {f: v for f, v in vals.items() if f != "disabled"} for k, vals in game_store().overrides().items()}
    return apply_overrides(game_config(), overrides).teams


# -- pages ---------------------------------------------------------------------------------
@admin.route("/login", methods=["GET", "POST"])
def login():
    """The admin password form."""
    error = False
    if request.method == "POST":
        if admin_password_ok(request.form.get("password")):
            session.clear()
            session["admin"] = True
            return redirect(url_for("admin.panel"))
        error = True
    return render_template("login.html", error=error, field="password", game=game_config().game.name,
                           action=url_for("admin.login"), title_key="admin")


@admin.post("/logout")
def logout():
    """End the admin session."""
    session.clear()
    return redirect(url_for("board.index"))


@admin.get("/")
@admin_required
def panel():
    """State, schedule, teams, services, announcements, checker logs, reset."""
    ensure_admin_password(game_config(), game_store())
    data = board_data()
    schedule = json.loads(game_store().web_value("schedule") or "{}")
    return render_template(
        "admin.html", game=game_config().game.name, board=data.snapshot(public=False), teams=_all_teams(),
        disabled=disabled_teams(game_store().overrides()), services=game_config().services,
        effective_services={s.id: s for s in data.config().services}, schedule=schedule,
        notice=session.pop("notice", None), error=session.pop("error", None))


@admin.get("/checks")
@admin_required
def checks():
    """One box's checker log with private messages, durations and commands."""
    team, service = request.args.get("team", type=int), request.args.get("service", type=int)
    return render_template("checks.html", game=game_config().game.name, team=team, service=service,
                           log=check_log(team or 0, service or 0))


_FORM_ACTIONS = {
    "state": lambda f: change_state(f.get("action", "")),
    "schedule": lambda f: set_schedule(f.get("start"), f.get("stop")),
    "team": lambda f: save_team(dict(f)),
    "service": lambda f: save_service(dict(f)),
    "announce": lambda f: announce(f.get("text", "")),
    "rerun": lambda f: rerun_check(int(f.get("team", 0)), int(f.get("service", 0))),
    "reset": lambda f: reset_game(f.get("confirm", "")),
}


@admin.post("/do/<name>")
@admin_required
def do(name: str):
    """Run a form action and go back to the panel with its outcome."""
    action = _FORM_ACTIONS.get(name)
    if action is None:
        return jsonify({"status": False, "msg": f"unknown action {name}"}), 404
    try:
        session["notice"] = action(request.form)
    except (ActionError, ValueError) as exc:
        session["error"] = str(exc)
    return redirect(url_for("admin.panel"))


# -- JSON API --------------------------------------------------------------------------------
@admin.get("/api/board")
@admin_required
def api_board():
    """The true board (ignores the freeze), with private checker messages."""
    return jsonify(board_data().snapshot(public=False))


@admin.get("/api/checks")
@admin_required
def api_checks():
    """One box's checker log (?team=&service=)."""
    return jsonify(check_log(request.args.get("team", 0, type=int), request.args.get("service", 0, type=int)))


@admin.post("/api/<name>")
@admin_required
def api_action(name: str):
    """Run an action with a JSON body: state {action}, schedule {start, stop}, team, service,
    announce {text}, rerun {team, service}, reset {confirm}."""
    action = _FORM_ACTIONS.get(name)
    if action is None:
        return jsonify({"status": False, "msg": f"unknown action {name}"}), 404
    body = json_body()
    if not isinstance(body, dict):
        return jsonify({"status": False, "msg": "body must be a JSON object"}), 400
    try:
        return jsonify({"status": True, "msg": action(body)})
    except (ActionError, ValueError) as exc:
        return jsonify({"status": False, "msg": str(exc)}), 409
