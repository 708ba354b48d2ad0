"""The web side: Flask + Flask-SocketIO app (board, team portal, admin, JSON APIs, HTTP submission)."""

from .app import create_app

__all__ = ["create_app"]
