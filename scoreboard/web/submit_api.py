"""HTTP flag submission, Hackerdom/ForcAD style: ``PUT /flags`` with ``X-Team-Token``.

Body: a JSON list of flag strings (surrounding whitespace stripped, as over TCP). Answer
200 with one ``{"flag", "status", "msg"}`` per flag, in order, ``flag`` exactly as sent;
429 with the same list when every flag is over the team's rate. Request-level problems get
``{"status": false, "msg": ...}``: 400, 401 for a bad token, 413 too large, 429 when the
address is locked out after too many wrong tokens.
"""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from ..submission.verdicts import Verdict
from .auth import record_credential
from .context import game_config, json_body, submissions

submit_api = Blueprint("submit_api", __name__)
log = logging.getLogger("adrange.submit")


def _error(status: int, message: str):
    return jsonify({"status": False, "msg": message}), status


@submit_api.errorhandler(RequestEntityTooLarge)
def _too_large(_exc: RequestEntityTooLarge):
    return _error(413, f"request too large (limit {game_config().submission.limits.request_bytes} bytes)")


@submit_api.route("/flags", methods=["PUT"], strict_slashes=False)
def put_flags():
    """Judge a batch of flags for the team named by X-Team-Token."""
    judge, teams = submissions()
    team = teams.by_token(request.headers.get("X-Team-Token"))
    record_credential(team is not None, "team token")
    if team is None:
        return _error(401, "invalid team token (send it in the X-Team-Token header)")
    flags = json_body()
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        return _error(400, "body must be a JSON list of flag strings")
    limit = game_config().submission.limits.batch_size
    if len(flags) > limit:
        return _error(400, f"too many flags in one request: {len(flags)} > {limit}")
    results = judge.submit(team, [f.strip() for f in flags], channel="http")
    line_limit = game_config().submission.limits.line_length
    answer = jsonify([{"flag": flag, "status": r.accepted, "msg": f"[{flag.strip()[:line_limit]}] {r.text}"}
                      for flag, r in zip(flags, results, strict=True)])
    if flags and all(r.verdict is Verdict.RATE_LIMITED for r in results):
        return answer, 429  # still the list: farms read it whatever the status
    return answer
