"""Run the web app under gevent (many websocket spectators on one process), behind the
edge's connection budgets and deadlines (guard.py)."""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import errno  # noqa: E402
import logging  # noqa: E402

from ..budgets import ThrottledLog  # noqa: E402
from ..config import GameConfig  # noqa: E402
from .app import create_app  # noqa: E402
from .guard import EdgeServer  # noqa: E402

log = logging.getLogger("adrange.web")


def serve(config: GameConfig, host: str | None = None, port: int | None = None) -> None:
    """Serve the game's web app (and its live board follower) until killed."""
    app = create_app(config)
    host = host or config.web.host
    port = port or config.web.port
    websocket_log = logging.getLogger("geventwebsocket.handler")
    websocket_log.setLevel(logging.WARNING)  # no access log per request
    websocket_log.addFilter(ThrottledLog(per_logger=True))  # nor a warning per bad upgrade in a flood
    server = EdgeServer((host, port), app, config.web, app.extensions["adrange.submissions"][1],
                        app.extensions["adrange.store"])
    try:
        server.init_socket()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise SystemExit(f"web: port {port} on {host} is already in use (another web server of this game? "
                         "`adrange run` is refused twice for one game; give this one --port)") from None
    app.extensions["adrange.live"].start()
    log.info("web on http://%s:%s (at most %d connections)", host, port, server.budget.total)
    server.serve_forever()
