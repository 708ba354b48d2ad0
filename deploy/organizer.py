"""What an organizer hands out and asks for from a shell: team access sheets, the game's
state and clock requests (`adrange teams`, `adrange game ...`)."""

from __future__ import annotations

import csv
import io
import json
import secrets
import time
from typing import Any

from scoreboard import access
from scoreboard.config import GameConfig
from scoreboard.effective import EffectiveGame
from scoreboard.store import GameStore, connect

FIELDS = ["id", "name", "nop", "address", "network", "token", "ssh_user", "ssh_password", "ssh"]


def effective_config(config: GameConfig) -> tuple[GameConfig, str]:
    """The game as the platform plays it (admin edits included) and where that came from;
    the game file alone when its Redis does not answer."""
    try:
        store = GameStore(config, connect(config.redis_url))
        store.redis.ping()
    except Exception as exc:  # no Redis yet: the file is still the truth to hand out
        return config, f"game file only (Redis not reachable: {exc.__class__.__name__})"
    return EffectiveGame(store).current(), "game file plus admin edits"


def team_rows(config: GameConfig) -> list[dict[str, Any]]:
    """One row per team: ids, names, addresses, tokens and SSH logins to hand out."""
    rows = []
    for team in config.teams:
        logins = access.team_access(config, team.id) if not team.nop else []
        rows.append({
            "id": team.id, "name": team.name, "nop": team.nop, "address": team.address or "",
            "network": team.network or "", "token": team.token or "",
            "ssh_user": logins[0]["user"] if logins else "",
            "ssh_password": logins[0]["password"] if logins else "",
            "ssh": " ".join(f"{x['service']}={x['host']}:{x['port']}" for x in logins),
        })
    return rows


def render_rows(rows: list[dict[str, Any]], fmt: str) -> str:
    """Rows as CSV or JSON text."""
    if fmt == "json":
        return json.dumps(rows, ensure_ascii=False, indent=2)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def game_status(config: GameConfig) -> dict[str, Any]:
    """State, round, seconds left in it, the ticker holding the clock, pending requests."""
    store = GameStore(config, connect(config.redis_url))
    state = store.state()
    left = None
    if state["round"] and state["state"].value == "running":
        left = max(0.0, state["round_start"] + config.game.round_seconds - time.time())
    return {"game": config.game.name, "state": state["state"].value, "round": state["round"],
            "closed_round": state["closed_round"], "round_seconds_left": None if left is None else round(left, 1),
            "ticker": store.ticker_lease_holder(), "pending": [r["action"] for r in store.pending_state_requests()],
            "schedule": store.schedule()}


def replace_admin_password(config: GameConfig, store: GameStore) -> str:
    """A new generated admin password (stored hashed) with every web session logged out;
    the password in clear, to show once. Refused when the game file sets the hash."""
    from werkzeug.security import generate_password_hash

    from scoreboard.web.sessions import SessionRecords

    if config.web.admin_password_hash:
        raise ValueError("the game file sets web.admin_password_hash: put a new hash there "
                         "(adrange hash-password) and restart the web nodes")
    password = secrets.token_urlsafe(12)
    store.set_web_value("admin_hash", generate_password_hash(password))
    SessionRecords(store, 1).revoke_all()
    return password
