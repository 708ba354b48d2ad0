"""Who is asking: team sessions and tokens, the admin password.

- Teams log in to the portal with their token (a session: a signed cookie backed by a
  revocable record in Redis, see sessions.py) or send it as ``X-Team-Token`` to the team APIs.
- The admin password hash comes from ``web.admin_password_hash`` (werkzeug format); when
  the game file has none, one password is generated once per game, stored hashed in
  Redis and printed once to the log of the node that generated it. Admins log in with
  it (session) or send it by HTTP Basic auth (user ``admin``) to ``/admin/api``.
- Every cookie-authenticated POST carries the session's CSRF token (csrf.py).
- Logging out revokes the session on every web node; `revoke_all_sessions` logs everyone
  out, `rotate_session_key` also replaces the cookie signing key.
- Guessing is locked out: every wrong token or password, at any door (portal and admin
  login, ``X-Team-Token``, HTTP Basic, ``PUT /flags``), counts against the source address
  in the game's `TokenGuard` (in Redis, shared with the submit servers); a locked source
  gets 429 for any credentialed request but its home team's right token.
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Callable
from typing import Any

from flask import current_app, jsonify, redirect, request, session, url_for
from werkzeug.security import check_password_hash, generate_password_hash

from ..config import GameConfig
from ..store import GameStore
from ..submission.limits import TokenGuard
from ..types import TeamID
from .context import board_data, game_config, game_store, submissions
from .sessions import RevocableSessions

log = logging.getLogger("adrange.web")


def token_guard() -> TokenGuard:
    """The game's guard against guessed tokens and passwords (shared by every process)."""
    ext = current_app.extensions
    if "adrange.token_guard" not in ext:
        limits = game_config().submission.limits
        ext["adrange.token_guard"] = TokenGuard(game_store(), limits.token_failures, limits.token_lockout)
    return ext["adrange.token_guard"]


def record_credential(ok: bool, what: str) -> None:
    """Count a right or wrong token/password from this request's source; log lockouts."""
    token_guard().record(request.remote_addr or "?", ok, what)


def refuse_locked_source() -> Any:
    """before_request: a locked-out source presenting any credential gets 429, unless it
    is its home team's right token (a neighbour's guessing never locks a team out)."""
    logging_in = request.method == "POST" and (request.endpoint or "").endswith(".login")
    if not ("X-Team-Token" in request.headers or request.authorization is not None or logging_in):
        return None
    source = request.remote_addr or "?"
    token = request.headers.get("X-Team-Token") or (request.form.get("token", "").strip() if logging_in else "")
    directory = submissions()[1]
    if token_guard().admits(source, directory.by_token(token), directory.by_address(source)):
        return None
    return jsonify({"status": False, "msg": "too many wrong credentials from your address, "
                                            "try again later"}), 429


def _sessions() -> RevocableSessions:
    interface = current_app.session_interface
    assert isinstance(interface, RevocableSessions)
    return interface


def revoke_all_sessions() -> int:
    """Log every team and admin out, on every web node; how many sessions there were."""
    return _sessions().revoke_all()


def rotate_session_key() -> bool:
    """Revoke every session and sign cookies with a new generated key from now on (every
    node follows within a second). False when ``web.session_key`` in the game file sets
    the key: then only the sessions are revoked (change the key there and restart)."""
    return _sessions().rotate_key()


def fresh_session() -> None:
    """Forget who this session was (login, logout: a revoked record), keep its language."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


def new_admin_password(config: GameConfig, store: GameStore) -> str | None:
    """Generate and store the game's admin password if it has none (neither in the game file
    nor in Redis); the password in clear when this call made it, else None."""
    if config.web.admin_password_hash or store.web_value("admin_hash"):
        return None
    password = secrets.token_urlsafe(12)
    return password if store.set_web_value_once("admin_hash", generate_password_hash(password)) else None


def ensure_admin_password(config: GameConfig, store: GameStore) -> str:
    """The admin password hash; generates, stores and logs a password once if there is none."""
    if config.web.admin_password_hash:
        return config.web.admin_password_hash
    password = new_admin_password(config, store)
    if password:
        log.warning("generated admin password (shown once): %s", password)
    return store.web_value("admin_hash") or ""


def admin_password_ok(password: str | None) -> bool:
    """True when the password matches the admin hash (wrong ones count as guesses)."""
    ok = bool(password) and check_password_hash(ensure_admin_password(game_config(), game_store()), password or "")
    record_credential(ok, "admin password")
    return ok


def is_admin() -> bool:
    """Correct HTTP Basic credentials on this request, or else an admin session. A request
    that brings a credential header (Authorization, X-Team-Token) is judged by it alone: it
    skips the CSRF check, so it must never fall back to the session cookie."""
    basic = request.authorization
    if basic is not None:
        return basic.type == "basic" and admin_password_ok(basic.password)
    return "X-Team-Token" not in request.headers and bool(session.get("admin"))


def team_by_token(token: str | None) -> TeamID | None:
    """The team holding a token (admin-added teams included); wrong ones count as guesses."""
    team = submissions()[1].by_token(token)
    record_credential(team is not None, "team token")
    return team


def current_team() -> TeamID | None:
    """The team of the X-Team-Token header or of the portal session (a team disabled since
    it logged in has none)."""
    header = request.headers.get("X-Team-Token")
    if header is not None:
        return team_by_token(header)
    team = session.get("team")
    if team is None:
        return None
    known = {t.id for t in board_data().config().teams}
    return team if team in known else None


def _refuse(json_api: bool, login_endpoint: str, status: int, message: str) -> Any:
    if json_api or request.path.startswith(("/api/", "/admin/api/")):
        return jsonify({"status": False, "msg": message}), status
    return redirect(url_for(login_endpoint, next=request.path))


def team_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Only for a logged-in team (or a valid X-Team-Token); passes `team` to the view."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        team = current_team()
        if team is None:
            return _refuse(False, "portal.login", 401, "team token required (X-Team-Token header)")
        return view(*args, team=team, **kwargs)

    return wrapper


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Only for an admin session or HTTP Basic admin credentials."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not is_admin():
            return _refuse(False, "admin.login", 401, "admin credentials required")
        return view(*args, **kwargs)

    return wrapper
