"""Admin panel and admin API: game state, schedule, teams and services, announcements,
checker logs, re-running a check, reset.

Pages under ``/admin`` use the admin session (forms carry the CSRF token); the same
actions are JSON under ``/admin/api`` for scripts, with HTTP Basic auth or the session.
Every action is logged to the admin stream. Actions answer with an i18n `Message`: the
panel shows it in the admin's language, the JSON API in English.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import re
import time
from typing import Any

from flask import Blueprint, jsonify, redirect, render_template, request, session, url_for

from ..check_requests import request_rerun
from ..config import Team, derive_token
from ..effective import apply_overrides, disabled_teams
from ..store import REQUESTS, StateError
from ..types import GameState, Status
from .auth import (
    admin_password_ok,
    admin_required,
    ensure_admin_password,
    fresh_session,
    revoke_all_sessions,
    rotate_session_key,
)
from .context import board_data, effective_game, game_config, game_store, json_body
from .i18n import Message, say, t

admin = Blueprint("admin", __name__, url_prefix="/admin")
CHECK_ROUNDS = 10
# The round engine's figures per round, as the panel lists them (see `engine_rounds`).
ENGINE_FIGURES = ("planned", "released", "started", "late", "cut", "unstarted", "unfinished", "max_delay")
MAX_TEAM_ID = 4095  # flags carry 12 bits of team id
_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


class ActionError(Exception):
    """An admin action that cannot be done; the message says why (409)."""

    def __init__(self, message: Message) -> None:
        super().__init__(message)
        self.message = message


class BadInput(ActionError):
    """A field of the wrong type or shape; the message names it (400)."""


def _number(values: Any, key: str) -> int:
    """A whole-number field (a JSON number or digits in a form)."""
    value = values.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise BadInput(Message("admin.must_be_number", key=key, value=repr(value)))


# -- actions (shared by forms and the JSON API) -----------------------------------------
def change_state(action: str) -> Message:
    """Ask the ticker (the clock's only owner) to start, pause, resume or stop the game; it
    applies the request at its next step (well within a second while it runs)."""
    store = game_store()
    if action == "reopen":
        raise ActionError(Message("admin.reopen_apart"))
    if action not in REQUESTS:
        raise ActionError(Message("admin.unknown_action", action=repr(action), known=", ".join(REQUESTS)))
    try:
        store.request_state(action, "admin")
    except StateError as exc:
        raise ActionError(_refused(action, exc)) from None
    word = Message(f"action.{action}")
    if store.ticker_lease_holder() is None:
        return Message("admin.requested_no_ticker", action=word)
    return Message("admin.requested", action=word)


def _refused(action: str, exc: StateError) -> Message:
    """Why the game's state does not allow a clock request, in the admin's words."""
    if exc.state is None:
        return Message("admin.refused", reason=str(exc))
    hint = Message("admin.reopen_first") if exc.state is GameState.OVER and action != "reopen" else ""
    return Message("admin.cannot", action=Message(f"action.{action}"), state=Message(f"admin.is.{exc.state.value}"),
                   hint=hint)


# Scheduled times must lie in these years (anything else is a typo or hostile input).
SCHEDULE_YEARS = (2000, 2100)


def _epoch(name: str, value: Any) -> float | None:
    """The epoch seconds of schedule field `name` ("start" or "stop"); None when empty."""
    if value in (None, ""):
        return None
    field, shown = Message(f"admin.schedule.{name}"), repr(value)
    if isinstance(value, bool):
        raise BadInput(Message("admin.not_a_time", name=field, value=shown))
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ActionError(Message("admin.not_a_time_text", name=field, value=shown)) from None
        seconds = parsed.timestamp()
    else:
        raise BadInput(Message("admin.not_a_time_kind", name=field, value=shown))
    low, high = (dt.datetime(year, 1, 1, tzinfo=dt.UTC).timestamp() for year in SCHEDULE_YEARS)
    if not math.isfinite(seconds) or not low <= seconds < high:
        raise ActionError(Message("admin.time_range", name=field, value=shown, low=SCHEDULE_YEARS[0],
                                  high=SCHEDULE_YEARS[1]))
    return seconds


def set_schedule(start: Any, stop: Any, confirm: Any = False) -> Message:
    """Start and/or stop the game automatically at these times (ISO text or epoch seconds);
    the ticker applies them. A stop in the past ends the game at once: only with `confirm`."""
    begin, end = _epoch("start", start), _epoch("stop", stop)
    if begin is not None and end is not None and end <= begin:
        raise ActionError(Message("admin.stop_before_start"))
    if end is not None and end <= time.time() and not _flag(confirm, "confirm"):
        raise ActionError(Message("admin.stop_in_past"))
    game_store().set_schedule(begin, end, "admin")
    return Message("admin.schedule_saved")


def reopen_game(stop: Any) -> Message:
    """Reopen a finished game, paused (resume it to play on); the new `stop` time (in the
    future), or none: no automatic end (the game file's end is overridden either way)."""
    end = _epoch("stop", stop)
    if end is not None and end <= time.time():
        raise ActionError(Message("admin.stop_not_future"))
    try:
        game_store().reopen(end, "admin")
    except StateError as exc:
        raise ActionError(_refused("reopen", exc)) from None
    if end is None:
        return Message("admin.reopened_open")
    return Message("admin.reopened_until", stop=dt.datetime.fromtimestamp(end).isoformat(timespec="seconds"))


def _flag(value: Any, key: str) -> bool:
    """A yes/no field: JSON true/false, or a form's "1"/"on"/"true" (absent: no)."""
    if isinstance(value, bool):
        return value
    if value in (None, "", "0", "off", "false"):
        return False
    if value in ("1", "on", "true"):
        return True
    raise BadInput(Message("admin.must_be_yes_no", key=key, value=repr(value)))


def save_team(values: dict[str, Any]) -> Message:
    """Edit a team (id given: name, address, disabled) or add one (no id: name, optional
    address and token). Every process plays the change within about a second: the judge,
    the submission servers, the checkers (a new address) and the board. Token and SSH
    password derive from the team id, so a rename changes neither."""
    teams = _all_teams()
    name, address, token = (_text_field(values, key) for key in ("name", "address", "token"))
    changes: dict[str, Any] = {}
    if values.get("id"):
        team_id = _team_id(values["id"])
        if team_id not in {t.id for t in teams}:
            raise ActionError(Message("admin.no_team", id=team_id))
        if token is not None:
            raise ActionError(Message("admin.token_fixed"))
    else:
        if name is None:
            raise ActionError(Message("admin.team_needs_name"))
        team_id = max(t.id for t in teams) + 1
        if team_id > MAX_TEAM_ID:
            raise ActionError(Message("admin.no_team_id_left", max=MAX_TEAM_ID))
        changes["new"] = True
    others = [t for t in teams if t.id != team_id]
    if name is not None:
        if not 1 <= len(name) <= 64:
            raise ActionError(Message("admin.team_name_length"))
        if name in {t.name for t in others}:
            raise ActionError(Message("admin.team_name_taken", name=repr(name)))
        changes["name"] = name
    if address is not None:
        if not _is_host(address):
            raise ActionError(Message("admin.bad_address", address=repr(address)))
        changes["address"] = address
    if token is not None:
        if len(token) < 8:
            raise ActionError(Message("admin.token_short"))
        if token in {t.token for t in others}:
            raise ActionError(Message("admin.token_taken"))
        changes["token"] = token
    if "disabled" in values:
        changes["disabled"] = values["disabled"] in (True, "1", "on", "true")
    game_store().set_override("team", team_id, changes, "admin")
    if changes.get("new"):
        return Message("admin.team_added", id=team_id,
                       token=token or derive_token(game_config().game.secret, team_id))
    return Message("admin.team_saved", id=team_id)


def _text_field(values: dict[str, Any], key: str) -> str | None:
    """A text field without surrounding white space; None when absent or empty."""
    value = values.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadInput(Message("admin.must_be_text", key=key, value=repr(value)))
    return value.strip()


def _team_id(value: Any) -> int:
    try:
        return _number({"id": value}, "id")
    except BadInput:
        raise BadInput(Message("admin.team_id", value=repr(value))) from None


def _is_host(text: str) -> bool:
    """An IP address, or a host name of letters, digits and '-' labels (not all-numeric)."""
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        labels = text.removesuffix(".").split(".")
        return (len(text) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)
                and not labels[-1].isdigit())


def save_service(values: dict[str, Any]) -> Message:
    """Rename or disable/enable a service."""
    service_id = _number(values, "id")
    if service_id not in {s.id for s in game_config().services}:
        raise ActionError(Message("admin.no_service", id=service_id))
    changes: dict[str, Any] = {"disabled": values.get("disabled") in (True, "1", "on", "true")}
    name = _text_field(values, "name")
    if name:
        if len(name) > 64:
            raise BadInput(Message("admin.service_name_length"))
        changes["name"] = name
    game_store().set_override("service", service_id, changes, "admin")
    return Message("admin.service_saved", id=service_id)


def announce(text: str) -> Message:
    """Publish an announcement on the board."""
    text = (text or "").strip()
    if not text:
        raise ActionError(Message("admin.announcement_empty"))
    game_store().add_announcement(text[:2000], "admin")
    return Message("admin.announced")


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


def rerun_check(team: int, service: int) -> Message:
    """Ask the checker workers to run the box's check chain again now."""
    config = game_config()
    effective = effective_game().current()
    if team not in {t.id for t in effective.playing_teams}:
        raise ActionError(Message("admin.no_playing_team", id=team))
    if service not in {s.id for s in effective.services if s.enabled}:
        raise ActionError(Message("admin.no_enabled_service", id=service))
    round_ = game_store().state()["round"]
    if not round_:
        raise ActionError(Message("admin.no_round"))
    request_rerun(config, round_, team, service)
    game_store().log_admin("rerun", "admin", team=team, service=service, round=round_)
    return Message("admin.rerun_queued", team=team, service=service)


def reset_game(confirm: str) -> Message:
    """Delete the game's state; confirm must be the game's name."""
    config = game_config()
    if confirm != config.game.name:
        raise ActionError(Message("admin.reset_confirm", name=repr(config.game.name)))
    store = game_store()
    admin_hash = store.web_value("admin_hash")
    store.reset()
    store.init()
    if admin_hash:
        store.set_web_value_once("admin_hash", admin_hash)
    store.log_admin("reset", "admin")
    return Message("admin.reset_done")


def end_sessions(what: str) -> Message:
    """Log everyone out ("revoke"), or that and a new cookie signing key ("rotate")."""
    if what == "revoke":
        count = revoke_all_sessions()
        game_store().log_admin("sessions", "admin", what=what, count=count)
        return Message("admin.revoked", count=count)
    if what == "rotate":
        generated = rotate_session_key()
        game_store().log_admin("sessions", "admin", what=what, generated=generated)
        return Message("admin.rotated" if generated else "admin.key_in_file")
    raise ActionError(Message("admin.unknown_sessions", what=repr(what)))


def _all_teams() -> list[Team]:
    """Every team as admins changed it, disabled ones included, from the overrides as they
    are now (not a cached effective game: two quick edits must see each other)."""
    overrides = {k: {f: v for f, v in vals.items() if f != "disabled"} for k, vals in game_store().overrides().items()}
    return apply_overrides(game_config(), overrides).teams


def _last_values(form: Any) -> dict[str, Any]:
    """Fields with their last value (a checked box comes after its hidden default "0");
    a JSON object as it is."""
    getlist = getattr(form, "getlist", None)
    return {key: getlist(key)[-1] for key in form} if getlist else dict(form)


# -- pages ---------------------------------------------------------------------------------
@admin.route("/login", methods=["GET", "POST"])
def login():
    """The admin password form."""
    error = False
    if request.method == "POST":
        if admin_password_ok(request.form.get("password")):
            fresh_session()
            session["admin"] = True
            return redirect(url_for("admin.panel"))
        error = True
    return render_template("login.html", error=error, field="password", game=game_config().game.name,
                           action=url_for("admin.login"), title_key="admin")


@admin.post("/logout")
def logout():
    """End the admin session."""
    fresh_session()
    return redirect(url_for("board.index"))


@admin.get("/")
@admin_required
def panel():
    """State, schedule, teams, services, announcements, checker logs, reset."""
    ensure_admin_password(game_config(), game_store())
    data = board_data()
    schedule = {name: dt.datetime.fromtimestamp(value).isoformat(timespec="seconds") if value else t("none")
                for name, value in game_store().schedule().items()}
    return render_template(
        "admin.html", game=game_config().game.name, board=data.snapshot(public=False), teams=_all_teams(),
        disabled=disabled_teams(game_store().overrides()), services=game_config().services,
        effective_services={s.id: s for s in data.config().services}, schedule=schedule,
        engine=engine_rounds(), figures=ENGINE_FIGURES, pending=game_store().pending_state_requests(),
        notice=session.pop("notice", None), error=session.pop("error", None))


def engine_rounds(count: int = CHECK_ROUNDS) -> list[dict[str, Any]]:
    """The round engine's figures of the newest rounds: chains planned, released, started,
    late (started over a second after release), cut (an action had no time), unstarted and
    unfinished at the close (both not checked: never charged to the team), largest delay."""
    store = game_store()
    current = store.state()["round"]
    return [{"round": r, **{k: round(v, 3) for k, v in store.round_stats(r).items()}}
            for r in range(current, max(0, current - count), -1)]


@admin.get("/checks")
@admin_required
def checks():
    """One box's checker log with private messages, durations and commands."""
    team, service = request.args.get("team", type=int), request.args.get("service", type=int)
    return render_template("checks.html", game=game_config().game.name, team=team, service=service,
                           log=check_log(team or 0, service or 0))


_FORM_ACTIONS = {
    "state": lambda f: change_state(_text_field(f, "action") or ""),
    "schedule": lambda f: set_schedule(f.get("start"), f.get("stop"), f.get("confirm")),
    "reopen": lambda f: reopen_game(f.get("stop")),
    "team": lambda f: save_team(_last_values(f)),
    "service": lambda f: save_service(dict(f)),
    "announce": lambda f: announce(_text_field(f, "text") or ""),
    "rerun": lambda f: rerun_check(_number(f, "team"), _number(f, "service")),
    "reset": lambda f: reset_game(_text_field(f, "confirm") or ""),
    "sessions": lambda f: end_sessions(_text_field(f, "what") or ""),
}


@admin.post("/do/<name>")
@admin_required
def do(name: str):
    """Run a form action and go back to the panel with its outcome, in the admin's language."""
    action = _FORM_ACTIONS.get(name)
    if action is None:
        return jsonify({"status": False, "msg": f"unknown action {name}"}), 404
    try:
        session["notice"] = say(action(request.form))
    except (ActionError, ValueError) as exc:
        session["error"] = say(exc.message if isinstance(exc, ActionError) else str(exc))
    return redirect(url_for("admin.panel"))


@admin.after_request
def _show_own_edits(response: Any) -> Any:
    """After an admin action this node reads the effective game at once (others within a second)."""
    if request.method == "POST":
        effective_game().refresh()
    return response


# -- JSON API --------------------------------------------------------------------------------
@admin.get("/api/board")
@admin_required
def api_board():
    """The true board (ignores the freeze), with private checker messages."""
    return jsonify(board_data().snapshot(public=False))


@admin.get("/api/engine")
@admin_required
def api_engine():
    """The round engine's per-round figures, newest first (see `engine_rounds`)."""
    return jsonify(engine_rounds())


@admin.get("/api/checks")
@admin_required
def api_checks():
    """One box's checker log (?team=&service=)."""
    return jsonify(check_log(request.args.get("team", 0, type=int), request.args.get("service", 0, type=int)))


@admin.post("/api/<name>")
@admin_required
def api_action(name: str):
    """Run an action with a JSON body: state {action}, schedule {start, stop, confirm},
    reopen {stop}, team, service, announce {text}, rerun {team, service}, reset {confirm},
    sessions {what: revoke | rotate}."""
    action = _FORM_ACTIONS.get(name)
    if action is None:
        return jsonify({"status": False, "msg": f"unknown action {name}"}), 404
    body = json_body()
    if not isinstance(body, dict):
        return jsonify({"status": False, "msg": "body must be a JSON object"}), 400
    try:
        return jsonify({"status": True, "msg": str(action(body))})
    except BadInput as exc:
        return jsonify({"status": False, "msg": str(exc)}), 400
    except (ActionError, ValueError) as exc:
        return jsonify({"status": False, "msg": str(exc)}), 409
