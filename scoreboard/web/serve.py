"""Run the web app under gevent (many websocket spectators on one process)."""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402

from ..config import GameConfig  # noqa: E402
from .app import create_app  # noqa: E402

log = logging.getLogger("adrange.web")


def serve(config: GameConfig, host: str | None = None, port: int | None = None) -> None:
    """Serve the game's web app until killed."""
    from gevent.pywsgi import WSGIServer

    app = create_app(config)
    socketio = app.extensions.get("socketio")
    host = host or config.web.host
    port = port or config.web.port
    log.info("web on http://%s:%s", host, port)
    if socketio is not None:
        socketio.run(app, host=host, port=port, log_output=False)
    else:
        WSGIServer((host, port), app, log=None).serve_forever()
