"""Run the web app under gevent (many websocket spectators on one process)."""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402

from ..config import GameConfig  # noqa: E402
from .app import create_app  # noqa: E402

log = logging.getLogger("adrange.web")


def serve(config: GameConfig, host: str | None = None, port: int | None = None) -> None:
    """Serve the game's web app (and its live board follower) until killed."""
    app = create_app(config)
    socketio = app.extensions["socketio"]
    app.extensions["adrange.live"].start()
    host = host or config.web.host
    port = port or config.web.port
    logging.getLogger("geventwebsocket.handler").setLevel(logging.WARNING)  # no access log per request
    log.info("web on http://%s:%s", host, port)
    socketio.run(app, host=host, port=port, log_output=False)
