"""The public board page; its script (static/board.js) fills it from Socket.IO events."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from .context import game_config
from .i18n import table

board = Blueprint("board", __name__)


@board.get("/")
def index():
    """The live board (``?big=1`` for a big screen, ``?lang=zh|en`` to pick the language)."""
    config = game_config()
    first = config.web.language
    texts = {"zh": table("zh"), "en": table("en")}
    lang = request.args.get("lang") if request.args.get("lang") in texts else first
    return render_template("board.html", texts=texts, lang=lang, languages=[first, "en" if first == "zh" else "zh"],
                           big=request.args.get("big") == "1", game=config.game.name)
