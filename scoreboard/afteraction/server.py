"""`adrange replay`: the real board page and its Socket.IO client, fed from a game's timeline.

Each spectator gets its own `Player`: the game's steps applied to a `PastStore` at the
chosen speed, and the live board's own emitter (`web.live.Live`) turning each step into
the very messages the live board got (``board`` on connect and after a jump, then
``attacks``, ``statuses``, ``ranking``, ``round``, ``first_blood``, ``announcement``).
The page is the board's (templates/replay.html extends board.html) plus a control bar
(static/replay.js): play/pause, speed, jump to the end of a round, and a time scrubber.
Control messages: ``replay`` {action: play | pause | speed | seek, speed, round, t}; the
server answers each, and every tick, with ``replay`` {clock, start, end, playing, speed, rounds}.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

from flask import Flask, render_template, request
from flask_socketio import SocketIO, emit

from ..web.i18n import table
from ..web.live import Live
from .texts import texts
from .timeline import PastBoard, Timeline

WEB = Path(__file__).resolve().parent.parent / "web"
TICK = 0.25  # seconds between two steps of a playing replay
SPEEDS = (1, 2, 5, 10, 30, 60, 120, 300)


class _ToOne:
    """The part of a SocketIO server `Live` uses, sending to one spectator only."""

    def __init__(self, socketio: SocketIO, sid: str) -> None:
        self.socketio, self.sid = socketio, sid

    def emit(self, event: str, data: Any) -> None:
        self.socketio.emit(event, data, to=self.sid)


class Player:
    """One spectator's replay: a position in the timeline, playing or paused, at a speed."""

    def __init__(self, timeline: Timeline, socketio: Any, speed: float) -> None:
        self.timeline = timeline
        self.socketio = socketio
        self.speed = speed
        self.playing = False
        self.clock = timeline.start
        self.lock = threading.RLock()
        self._reset(0)

    def _reset(self, index: int) -> None:
        """Be after the first `index` steps, with a fresh emitter (forward: from where we are)."""
        self.past = self.timeline.store_at(index, getattr(self, "past", None))
        self.board = PastBoard(self.timeline.config, self.past, lambda: self.clock)
        self.live = Live(self.socketio, self.board, self.past)  # type: ignore[arg-type]

    def status(self) -> dict[str, Any]:
        """Where the replay is, for the control bar and the page's clock."""
        timeline = self.timeline
        rounds = [{"r": r, "t": timeline.times[i - 1]} for r, i in sorted(timeline.closes.items())]
        return {"clock": self.clock, "start": timeline.start, "end": timeline.end, "playing": self.playing,
                "speed": self.speed, "rounds": rounds, "closed_round": self.past.state()["closed_round"]}

    def jump(self, index: int, clock: float) -> None:
        """Show the board after the first `index` steps, at `clock`."""
        with self.lock:
            self._reset(index)
            self.clock = clock
            self.socketio.emit("board", self.board.snapshot(public=True))
            self.socketio.emit("replay", self.status())

    def jump_to_round(self, round_: int) -> None:
        """Show the board the moment round `round_` closed (0: the start of the game; past the
        last closed round: the last)."""
        closes = self.timeline.closes
        if closes and round_ > max(closes):
            round_ = max(closes)
        index = closes.get(round_, 0)
        self.jump(index, self.timeline.times[index - 1] if index else self.timeline.start)

    def jump_to_time(self, t: float) -> None:
        t = min(max(t, self.timeline.start), self.timeline.end)
        self.jump(self.timeline.index_at(t), t)

    def control(self, message: dict[str, Any]) -> None:
        """Apply a control message from the page (anything malformed is ignored)."""
        action = message.get("action")
        with self.lock:
            if action == "play":
                if self.clock >= self.timeline.end:
                    self.jump_to_round(0)
                self.playing = True
            elif action == "pause":
                self.playing = False
            elif action == "speed" and (speed := _number(message.get("speed"))) and speed > 0:
                self.speed = min(speed, max(SPEEDS))
            elif action == "seek" and (round_ := _number(message.get("round"))) is not None:
                self.jump_to_round(int(round_))
            elif action == "seek" and (t := _number(message.get("t"))) is not None:
                self.jump_to_time(t)
            self.socketio.emit("replay", self.status())

    def advance(self, seconds: float) -> None:
        """Play `seconds` of wall time: apply the steps that happened meanwhile in game time,
        through the live board's handler, then send what gathered (as the live board does)."""
        with self.lock:
            if not self.playing:
                return
            self.clock = min(self.timeline.end, self.clock + seconds * self.speed)
            target = self.timeline.index_at(self.clock)
            for step in self.timeline.steps[self.past.applied:target]:
                self.past.apply(step)
                self.live.handle(step.stream, dict(step.event))  # as the live follower handles it
            self.live.flush()
            if self.clock >= self.timeline.end:
                self.playing = False
            self.socketio.emit("replay", self.status())


def _number(value: Any) -> float | None:
    """A finite number from a control message, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def create_replay_app(timeline: Timeline, speed: float = 10.0, start_round: int = 0,
                      paused: bool = False) -> tuple[Flask, SocketIO]:
    """A Flask app serving the replay of one game's timeline."""
    app = Flask(__name__, template_folder=str(WEB / "templates"), static_folder=str(WEB / "static"))
    socketio = SocketIO(app, async_mode="gevent", logger=False, engineio_logger=False)
    players: dict[str, Player] = {}
    config = timeline.config

    @app.get("/")
    def index():
        first = config.web.language
        board_texts = {"zh": table("zh"), "en": table("en")}
        lang = request.args.get("lang") if request.args.get("lang") in board_texts else first
        return render_template("replay.html", texts=board_texts, replay_texts={"zh": texts("zh"), "en": texts("en")},
                               lang=lang, languages=[first, "en" if first == "zh" else "zh"],
                               big=request.args.get("big") == "1", game=config.game.name, speeds=SPEEDS)

    @socketio.on("connect")
    def _connect(auth: Any = None) -> None:
        sid = request.sid  # type: ignore[attr-defined]
        player = Player(timeline, _ToOne(socketio, sid), speed)
        players[sid] = player
        player.jump_to_round(start_round)
        player.playing = not paused
        emit("replay", player.status())
        socketio.start_background_task(_play, sid)

    @socketio.on("disconnect")
    def _disconnect(*_: Any) -> None:
        players.pop(request.sid, None)  # type: ignore[attr-defined]

    @socketio.on("replay")
    def _control(message: Any) -> None:
        player = players.get(request.sid)  # type: ignore[attr-defined]
        if player is not None and isinstance(message, dict):
            player.control(message)

    def _play(sid: str) -> None:
        last = time.monotonic()
        while sid in players:
            socketio.sleep(TICK)
            now = time.monotonic()
            player = players.get(sid)
            if player is not None:
                player.advance(now - last)
            last = now

    return app, socketio


def serve_replay(timeline: Timeline, host: str, port: int, speed: float, start_round: int = 0,
                 paused: bool = False) -> None:
    """Serve the replay until killed (gevent: the caller has monkey-patched the standard library)."""
    app, socketio = create_replay_app(timeline, speed, start_round, paused)
    socketio.run(app, host=host, port=port, log_output=False)
