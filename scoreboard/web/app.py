"""Application factory: one Flask app and its Socket.IO server for a game."""

from __future__ import annotations

from flask import Flask

from ..config import GameConfig
from ..store import GameStore
from .submit_api import submit_api


def create_app(config: GameConfig, store: GameStore | None = None) -> Flask:
    """A Flask app serving one game; the store is created from config when not given."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.submission.limits.request_bytes
    app.extensions["adrange.config"] = config
    store = store or GameStore(config)
    store.init()
    app.extensions["adrange.store"] = store
    if config.submission.http:
        app.register_blueprint(submit_api)
    return app
