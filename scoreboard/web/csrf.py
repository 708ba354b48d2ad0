"""CSRF protection for cookie-authenticated portal and admin requests (Flask-WTF).

A POST that the session cookie authenticates (and every login form) must carry the
session's token: form field ``csrf`` or header ``X-CSRF-Token``. Tokens last as long as
the session (an admin panel stays open all day). A request that brings a credential
header (HTTP Basic, ``X-Team-Token``) needs none: no browser adds those by itself, and
such a request is judged by its header alone, never by the cookie (auth.is_admin). The
signing key is generated once per game and kept in Redis, so a token made by one web
node is accepted by every other.
"""

from __future__ import annotations

import secrets

from flask import Flask, jsonify, request, session
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect

from ..store import GameStore

PROTECTED_BLUEPRINTS = ("portal", "admin")


def init_csrf(app: Flask, store: GameStore) -> CSRFProtect:
    """Protect the portal and admin blueprints of `app`; `csrf_token()` in templates."""
    store.set_web_value_once("csrf_key", secrets.token_urlsafe(32))
    app.config.update(WTF_CSRF_CHECK_DEFAULT=False, WTF_CSRF_FIELD_NAME="csrf",
                      WTF_CSRF_HEADERS=["X-CSRF-Token"], WTF_CSRF_TIME_LIMIT=None,
                      WTF_CSRF_SECRET_KEY=store.web_value("csrf_key"))
    csrf = CSRFProtect(app)

    @app.before_request
    def protect_cookie_requests() -> None:
        if request.method not in app.config["WTF_CSRF_METHODS"] or request.blueprint not in PROTECTED_BLUEPRINTS:
            return
        if request.authorization is not None or "X-Team-Token" in request.headers:
            return  # authenticated by a header, which no other site can make a browser send
        logging_in = (request.endpoint or "").endswith(".login")
        if logging_in or session.get("admin") or session.get("team"):
            csrf.protect()
        # no session: the view refuses the request as unauthenticated

    @app.errorhandler(CSRFError)
    def refused(error: CSRFError) -> ResponseReturnValue:
        message = f"missing or wrong CSRF token ({error.description}): reload the page and try again"
        if request.path.startswith(("/api/", "/admin/api/")) or request.is_json:
            return jsonify({"status": False, "msg": message}), 400
        return message, 400, {"Content-Type": "text/plain; charset=utf-8"}

    return csrf
