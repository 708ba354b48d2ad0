"""Access to the current app's game objects from request handlers."""

from __future__ import annotations

from flask import current_app

from ..config import GameConfig
from ..store import GameStore


def game_config() -> GameConfig:
    """The game this app serves."""
    return current_app.extensions["adrange.config"]


def game_store() -> GameStore:
    """The game's store."""
    return current_app.extensions["adrange.store"]
