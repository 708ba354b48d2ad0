"""Access to the current app's game objects from request handlers."""

from __future__ import annotations

import json
from typing import Any

from flask import current_app, request

from ..config import GameConfig
from ..effective import EffectiveGame
from ..store import GameStore
from ..submission.sync import Submissions
from ..teams import TeamDirectory
from .board_data import BoardData


def game_config() -> GameConfig:
    """The game file this app serves (without admin edits: see `effective_game`)."""
    return current_app.extensions["adrange.config"]


def effective_game() -> EffectiveGame:
    """The game file plus admin overrides, shared by everything this app serves."""
    return current_app.extensions["adrange.game"]


def game_store() -> GameStore:
    """The game's store."""
    return current_app.extensions["adrange.store"]


def board_data() -> BoardData:
    """Board pieces (ranking, matrix, ...) of the game, with admin overrides applied."""
    return current_app.extensions["adrange.board"]


def submissions() -> tuple[Submissions, TeamDirectory]:
    """The shared judge/rate limiter and the token directory of the effective game (the
    ones PUT /flags, the portal and the team APIs use)."""
    subs, directory = current_app.extensions["adrange.submissions"]
    return subs, directory.get()


def json_body() -> Any:
    """The request body as JSON, or None when it is not JSON (or nested too deep to parse)."""
    try:
        return json.loads(request.get_data(cache=False))
    except (ValueError, RecursionError):
        return None
