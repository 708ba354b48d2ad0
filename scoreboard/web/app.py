"""Application factory: one Flask app and its Socket.IO server for a game.

Blueprints: board (public page), api (JSON + metrics), portal (teams), admin, and the
HTTP flag submission. Socket.IO runs on gevent with the game's Redis as message queue,
so several web nodes can serve one game (see live.py for who emits). Sessions are signed
cookies backed by revocable records in Redis (sessions.py), with Flask-WTF CSRF tokens for
cookie-authenticated requests (csrf.py); Engine.IO polling payloads are checked before
Engine.IO sees them (guard.py). The captures blueprint hands teams their boxes' pcap files.
"""

from __future__ import annotations

from flask import Flask
from flask_socketio import SocketIO

from ..config import GameConfig
from ..effective import EffectiveGame, PerVersion
from ..store import GameStore
from ..submission.sync import Submissions
from ..teams import TeamDirectory
from .admin import admin
from .api import api
from .auth import ensure_admin_password, refuse_locked_source
from .board import board
from .board_data import BoardData
from .captures import captures
from .csrf import init_csrf
from .guard import PollingPostCheck
from .i18n import language, t
from .live import Live, register_spectators
from .portal import portal
from .proxies import TrustedProxyFix
from .sessions import RevocableSessions
from .submit_api import submit_api


def create_app(config: GameConfig, store: GameStore | None = None) -> Flask:
    """A Flask app serving one game; the store is created from config when not given."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.submission.limits.request_bytes
    app.config.update(SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_NAME=f"adrange-{config.game.name}")
    app.extensions["adrange.config"] = config
    store = store or GameStore(config)
    store.init()
    app.extensions["adrange.store"] = store
    app.session_interface = RevocableSessions(store, config.web)
    game = EffectiveGame(store)  # admin edits show within a second on every node
    app.extensions["adrange.game"] = game
    app.extensions["adrange.submissions"] = (Submissions(store, game), PerVersion(game, TeamDirectory))
    data = BoardData(config, store, game)
    app.extensions["adrange.board"] = data
    ensure_admin_password(config, store)

    if config.submission.http:
        app.register_blueprint(submit_api)
    app.before_request(refuse_locked_source)
    app.register_blueprint(board)
    app.register_blueprint(api)
    app.register_blueprint(portal)
    app.register_blueprint(admin)
    app.register_blueprint(captures)
    init_csrf(app, store)
    app.jinja_env.globals.update(t=t, language=language)

    socketio = SocketIO(app, async_mode="gevent", message_queue=config.redis_url,
                        channel=store.keys.socketio_channel,
                        logger=False, engineio_logger=False)
    register_spectators(socketio, data)
    polling = PollingPostCheck(app.wsgi_app, socketio.sockio_mw.engineio_path, socketio.server.eio.max_http_buffer_size)
    app.wsgi_app = TrustedProxyFix(polling, config.web.trusted_proxies,  # type: ignore[method-assign]
                                   config.web.proxy_hops)
    app.extensions["adrange.live"] = Live(socketio, data, store)
    return app
