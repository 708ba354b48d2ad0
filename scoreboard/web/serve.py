"""Run the web app under gevent (many websocket spectators on one process), behind the
edge's connection budgets and deadlines (guard.py). SIGTERM writes the buffered submission
history, then ends the process as before."""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import errno  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402

import gevent  # noqa: E402

from ..budgets import ThrottledLog  # noqa: E402
from ..config import GameConfig  # noqa: E402
from ..submission.history import SubmissionHistory  # noqa: E402
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
    history = app.extensions["adrange.submissions"][0].history
    history.start()
    gevent.signal_handler(signal.SIGTERM, _flush_then_terminate, history)
    log.info("web on http://%s:%s (at most %d connections)", host, port, server.budget.total)
    server.serve_forever()


def _flush_then_terminate(history: SubmissionHistory) -> None:
    """SIGTERM: write the buffered submission history, then die of the signal (as without this handler)."""
    try:
        history.flush()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
