"""Live board over Socket.IO: the full board on connect, then deltas from the event streams.

Jobs of the `Live` follower, a background greenlet of the web process:

1. follow ``ev:capture``, ``ev:check``, ``ev:round`` and ``ev:admin`` (XREAD BLOCK, from
   the newest entry when it starts) and emit ``first_blood``, ``round`` and
   ``announcement`` events at once;
2. coalesce: captures and status changes are gathered, and a second greenlet sends them
   at most every ``RANKING_INTERVAL`` seconds as one ``attacks`` message (the newest
   ``ATTACK_BATCH`` attacks, per-(attacker, victim, service) counts of all of them, and
   the total), one ``statuses`` message (each changed box once) and one ``ranking``:
   a flood of flags costs spectators a few messages a second, never one per flag;
3. after each round close, send the score history the close script kept.

Several web nodes may serve one game: they share a Socket.IO message queue on the
game's Redis, and only the node holding the ``board-emitter`` lease follows the streams
and emits (through the queue, so every node's spectators get each event exactly once).
If that node dies, another takes the lease within ``LEASE_SECONDS``.
After ``game.freeze_at`` the public events that would reveal scores (ranking, attacks,
first_blood, statuses) stop; round and announcement events go on.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import socket
import time
from typing import Any

import gevent
from flask_socketio import SocketIO, emit

from ..store import GameStore
from ..types import Status
from .board_data import BoardData, attack_of

log = logging.getLogger("adrange.live")

RANKING_INTERVAL = 0.33
ATTACK_BATCH = 30
LEASE_SECONDS = 10.0
STREAMS = ("capture", "check", "round", "admin")


class Live:
    """Follows one game's streams and emits board deltas to every spectator."""

    def __init__(self, socketio: SocketIO, board: BoardData, store: GameStore) -> None:
        self.socketio = socketio
        self.board = board
        self.store = store
        self.node = f"{socket.gethostname()}:{os.getpid()}:{id(self)}"
        self.leader = False
        self._dirty = False
        self._started = False
        self._attacks: collections.deque[dict[str, Any]] = collections.deque(maxlen=ATTACK_BATCH)
        self._pairs: collections.Counter[tuple[int, int, int]] = collections.Counter()
        self._statuses: dict[tuple[int, int], dict[str, Any]] = {}
        self._blooded: set[int] = set()  # services whose first blood is known: no Redis call per capture

    def start(self) -> None:
        """Start the follower and the ranking coalescer (once per process)."""
        if not self._started:
            self._started = True
            self.socketio.start_background_task(self._follow_forever)
            self.socketio.start_background_task(self._coalesce_forever)

    # -- leadership and following -----------------------------------------------------------
    def _follow_forever(self) -> None:
        while True:
            try:
                if self.store.take_lease("board-emitter", self.node, LEASE_SECONDS):
                    if not self.leader:
                        log.info("board emitter lease taken by %s", self.node)
                    self.leader = True
                    self._follow()
                else:
                    self.leader = False
                    gevent.sleep(LEASE_SECONDS / 3)
            except Exception:
                log.exception("board follower failed; retrying")
                self.leader = False
                gevent.sleep(1)

    def _follow(self) -> None:
        """Follow the streams while the lease is ours (renewed every few seconds)."""
        cursors = {name: self.store.last_event_id(name) for name in STREAMS}
        self._backfill_first_bloods(cursors["capture"])
        self._dirty = True
        renewed = time.monotonic()
        while True:
            if time.monotonic() - renewed > LEASE_SECONDS / 3:
                if not self.store.take_lease("board-emitter", self.node, LEASE_SECONDS):
                    log.warning("board emitter lease lost by %s", self.node)
                    return
                renewed = time.monotonic()
            for stream, events in self.store.read_streams(cursors, block_ms=1000):
                for event_id, fields in events:
                    cursors[stream] = event_id
                    self.handle(stream, {"_id": event_id, **fields})

    def _backfill_first_bloods(self, until: str) -> None:
        """First bloods of captures made while no emitter ran (scans until all are known)."""
        missing = {s.id for s in self.board.base.services} - set(self.store.first_bloods())
        for event in self.store.events("capture"):
            if not missing or _id_order(event["_id"]) > _id_order(until):
                return
            attack = attack_of(event)
            if attack["s"] in missing:
                self.store.set_first_blood(attack["s"], attack)
                missing.discard(attack["s"])

    def handle(self, stream: str, event: dict[str, str]) -> None:
        """Take one event of a followed stream (`STREAMS`) into what the next `flush` sends;
        first bloods, rounds, state changes and announcements are sent at once."""
        frozen = self.board.frozen()
        if stream == "capture":
            self._dirty = True
            attack = attack_of(event)
            first = attack["s"] not in self._blooded and self.store.set_first_blood(attack["s"], attack)
            self._blooded.add(attack["s"])
            if not frozen:
                self._attacks.append(attack)
                self._pairs[(attack["a"], attack["v"], attack["s"])] += 1
                if first:
                    self.socketio.emit("first_blood", attack)
        elif stream == "check" and not frozen:
            box = (int(event["team"]), int(event["service"]))
            self._statuses[box] = {"team": box[0], "service": box[1], "round": int(event["r"]),
                                   "status": Status(int(event["status"])).name, "message": event.get("public", "")}
        elif stream == "round":
            payload: dict[str, Any] = {"type": event.get("type"), **self.board.round_info()}
            if event.get("type") == "closed":  # the close script kept the round's history
                self._dirty = True
                if not frozen:
                    payload["history"] = self.board.history(self.board.ranking(public=True))
            self.socketio.emit("round", payload)
        elif stream == "admin":
            kind = event.get("type")
            if kind == "state":
                self.socketio.emit("round", {"type": "state", **self.board.round_info()})
            elif kind == "announcement":
                self.socketio.emit("announcement", {"text": json.loads(event.get("text", '""')),
                                                    "t": float(event.get("t", 0))})
            elif kind in ("override", "reset"):
                self._blooded.clear()
                self.socketio.emit("board", self.board.snapshot(public=True))

    # -- ranking coalescing -----------------------------------------------------------------
    def _coalesce_forever(self) -> None:
        while True:
            gevent.sleep(RANKING_INTERVAL)
            if not self.leader:
                continue
            try:
                self.flush()
            except Exception:
                log.exception("board emit failed")

    def flush(self) -> None:
        """Send what gathered since the last flush: attacks, status changes, the ranking."""
        if self._pairs:
            attacks, pairs = list(self._attacks), self._pairs
            self._attacks.clear()
            self._pairs = collections.Counter()
            self.socketio.emit("attacks", {
                "attacks": attacks[::-1], "count": sum(pairs.values()),
                "pairs": [{"a": a, "v": v, "s": s, "n": n} for (a, v, s), n in pairs.items()]})
        if self._statuses:
            statuses, self._statuses = list(self._statuses.values()), {}
            self.socketio.emit("statuses", statuses)
        if self._dirty:
            self._dirty = False
            if not self.board.frozen():
                self.socketio.emit("ranking", {"ranking": self.board.ranking(public=True), "t": time.time()})


def _id_order(event_id: str) -> tuple[int, int]:
    milliseconds, sequence = event_id.split("-")
    return int(milliseconds), int(sequence)


def register_spectators(socketio: SocketIO, board: BoardData) -> None:
    """Send the whole (public) board to each spectator as it connects."""

    @socketio.on("connect")
    def _on_connect(auth: Any = None) -> None:
        emit("board", board.public_snapshot())
