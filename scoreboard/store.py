"""The Redis store: every key and script of a game lives here, nowhere else.

All keys start with ``adr:<game>:``. Live state is small hashes; history is append-only
streams (``ev:capture``, ``ev:check``, ``ev:flag``, ``ev:round``, ``ev:admin``) from which
every score can be recomputed. Flag acceptance and round close are Lua scripts, so each
is one atomic step that Redis logs to its AOF before the caller sees the answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from importlib import resources
from typing import Any

import redis
import redis.asyncio

from .config import GameConfig
from .scoring.rating import LIMIT, STEP, delta_table
from .scoring.replay import normalize
from .types import GameState, Round, ServiceID, Status, TeamID

STREAMS = ("capture", "check", "flag", "round", "admin")
_TRANSITIONS = {
    GameState.NOT_STARTED: {GameState.RUNNING, GameState.OVER},
    GameState.RUNNING: {GameState.PAUSED, GameState.OVER},
    GameState.PAUSED: {GameState.RUNNING, GameState.OVER},
    GameState.OVER: set(),
}


class StateError(Exception):
    """A game state change that is not allowed from the current state."""


def _script(name: str) -> str:
    return resources.files("scoreboard").joinpath(f"lua/{name}.lua").read_text()


def connect(url: str) -> redis.Redis:
    """A sync client that answers in str."""
    return redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)


def connect_async(url: str) -> redis.asyncio.Redis:
    """An asyncio client that answers in str."""
    return redis.asyncio.Redis.from_url(url, decode_responses=True)


class Keys:
    """Key names of one game."""

    def __init__(self, game: str) -> None:
        self.prefix = f"adr:{game}:"
        p = self.prefix
        self.state = p + "state"
        self.closed = p + "closed"
        self.counters = p + "counters"
        self.live_status = p + "live_status"
        self.rating = p + "rating"
        self.announcements = p + "announcements"

    def stream(self, name: str) -> str:
        return f"{self.prefix}ev:{name}"

    def box(self, team: TeamID, service: ServiceID) -> str:
        return f"{self.prefix}ts:{team}:{service}"

    def status(self, round_: Round) -> str:
        return f"{self.prefix}status:{round_}"

    def check_detail(self, round_: Round) -> str:
        return f"{self.prefix}check:{round_}"

    def flag_ids(self, round_: Round) -> str:
        return f"{self.prefix}flagids:{round_}"


class GameStore:
    """Sync access to one game's state (web, ticker, workers, tools)."""

    def __init__(self, config: GameConfig, client: redis.Redis | None = None) -> None:
        self.config = config
        self.redis = client or connect(config.redis_url)
        self.keys = Keys(config.game.name)
        self._submit = self.redis.register_script(_script("submit"))
        self._open = self.redis.register_script(_script("open_round"))
        self._close = self.redis.register_script(_script("close_round"))

    # -- setup and state ---------------------------------------------------------
    def init(self) -> None:
        """Make the game's keys exist; keeps any state already there (restart-safe)."""
        k = self.keys
        pipe = self.redis.pipeline()
        pipe.hsetnx(k.state, "state", GameState.NOT_STARTED.value)
        pipe.hsetnx(k.state, "round", 0)
        table = delta_table(self.config.game.scoring.rating)
        mapping: dict[str, Any] = {f"d:{b}": v for b, v in table.items()}
        mapping.update(initial=self.config.game.scoring.rating.initial, step=STEP, limit=LIMIT)
        pipe.hset(k.rating, mapping=mapping)
        pipe.execute()

    def state(self) -> dict[str, Any]:
        """Game state, current round, its start time and the last closed round."""
        raw = self.redis.hgetall(self.keys.state)
        return {
            "state": GameState(raw.get("state", GameState.NOT_STARTED.value)),
            "round": int(raw.get("round", 0)),
            "round_start": float(raw.get("round_start", 0) or 0),
            "closed_round": int(raw.get("closed_round", 0)),
            "paused_at": float(raw.get("paused_at", 0) or 0),
        }

    def set_state(self, new: GameState, actor: str = "system", reason: str = "") -> GameState:
        """Move the game to a new state (checked against allowed moves); return the old one."""
        k = self.keys
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(k.state)
                    old = GameState(pipe.hget(k.state, "state") or GameState.NOT_STARTED.value)
                    if new == old:
                        pipe.unwatch()
                        return old
                    if new not in _TRANSITIONS[old]:
                        raise StateError(f"cannot go from {old.value} to {new.value}")
                    now = time.time()
                    pipe.multi()
                    pipe.hset(k.state, "state", new.value)
                    if new == GameState.PAUSED:
                        pipe.hset(k.state, "paused_at", now)
                    pipe.xadd(k.stream("admin"), {"type": "state", "from": old.value, "to": new.value,
                                                  "actor": actor, "reason": reason, "t": now})
                    pipe.execute()
                    return old
                except redis.WatchError:
                    continue

    def shift_round_start(self, seconds: float) -> None:
        """Move the current round's start later (after a pause, so it gets its full length)."""
        self.redis.hincrbyfloat(self.keys.state, "round_start", seconds)

    def log_admin(self, action: str, actor: str, **data: Any) -> None:
        """Append an admin action to the admin stream."""
        fields = {"type": action, "actor": actor, "t": time.time()}
        fields.update({key: json.dumps(value) for key, value in data.items()})
        self.redis.xadd(self.keys.stream("admin"), fields)

    # -- rounds ----------------------------------------------------------------
    def open_round(self, round_: Round, now: float | None = None) -> bool:
        """Open round N once; False when the game is already at or past N."""
        return bool(self._open(args=[self.keys.prefix, round_, now or time.time()]))

    def active_boxes(self) -> list[str]:
        """'team:service' of every playing team's every enabled service."""
        return [f"{t.id}:{s.id}" for t in self.config.playing_teams for s in self.config.services if s.enabled]

    def close_round(self, round_: Round, now: float | None = None) -> bool:
        """Count round N's statuses into SLA exactly once; False if it was closed before."""
        args = [self.keys.prefix, round_, now or time.time(), *self.active_boxes()]
        return bool(self._close(args=args))

    # -- checker results and flags ---------------------------------------------------
    def record_check(self, round_: Round, team: TeamID, service: ServiceID, status: Status,
                     public: str = "", private: str = "", detail: dict[str, Any] | None = None) -> None:
        """Store one (team, service)'s result for a round and append it to the check stream."""
        k = self.keys
        box = f"{team}:{service}"
        record = {"status": int(status), "public": public, "private": private,
                  "detail": detail or {}, "t": time.time(), "round": round_}
        pipe = self.redis.pipeline()
        pipe.hset(k.status(round_), box, int(status))
        pipe.hset(k.live_status, box, int(status))
        pipe.hset(k.check_detail(round_), box, json.dumps(record))
        pipe.xadd(k.stream("check"), {"r": round_, "team": team, "service": service,
                                      "status": int(status), "public": public, "private": private,
                                      "detail": json.dumps(detail or {})})
        pipe.execute()

    def round_statuses(self, round_: Round) -> dict[tuple[TeamID, ServiceID], Status]:
        """Every box's status in a round."""
        raw = self.redis.hgetall(self.keys.status(round_))
        return {_box_key(box): Status(int(code)) for box, code in raw.items()}

    def check_details(self, round_: Round) -> dict[tuple[TeamID, ServiceID], dict[str, Any]]:
        """Every box's full check record in a round (with private messages: admin only)."""
        raw = self.redis.hgetall(self.keys.check_detail(round_))
        return {_box_key(box): json.loads(value) for box, value in raw.items()}

    def record_flag(self, round_: Round, team: TeamID, service: ServiceID, slot: int, flag: str,
                    flag_id: str, public_flag_id: str | None) -> None:
        """Remember a placed flag's id (private) and its public part (attack data)."""
        k = self.keys
        value = json.dumps({"flag_id": flag_id, "public": public_flag_id, "flag": flag})
        pipe = self.redis.pipeline()
        pipe.hset(k.flag_ids(round_), f"{team}:{service}:{slot}", value)
        pipe.xadd(k.stream("flag"), {"r": round_, "team": team, "service": service, "slot": slot,
                                     "flag": flag, "flag_id": flag_id, "public": public_flag_id or ""})
        pipe.execute()

    def placed_flags(self, round_: Round) -> dict[tuple[TeamID, ServiceID, int], dict[str, Any]]:
        """Flags placed in a round: (team, service, slot) -> {flag_id, public, flag}."""
        raw = self.redis.hgetall(self.keys.flag_ids(round_))
        out = {}
        for key, value in raw.items():
            team, service, slot = (int(x) for x in key.split(":"))
            out[(team, service, slot)] = json.loads(value)
        return out

    # -- submission --------------------------------------------------------------
    def submit_args(self, attacker: TeamID, candidates: list[tuple[str, int, int, int]]) -> list[Any]:
        """ARGV for the submit script: header, then flag, victim, service, round per flag."""
        game = self.config.game
        args: list[Any] = [self.keys.prefix, attacker, game.scoring.formula, game.flag_lifetime,
                           time.time(), int(game.require_service_up)]
        for candidate in candidates:
            args.extend(candidate)
        return args

    def submit(self, attacker: TeamID, candidates: list[tuple[str, int, int, int]]) -> list[str]:
        """Run the submit script on (flag, victim, service, flag_round) tuples."""
        if not candidates:
            return []
        return self._submit(args=self.submit_args(attacker, candidates))

    # -- scores and events -------------------------------------------------------------
    def counters(self) -> dict[tuple[TeamID, ServiceID], dict[str, int]]:
        """Every box's live counters, zero fields left out."""
        boxes = [(t.id, s.id) for t in self.config.teams for s in self.config.services]
        pipe = self.redis.pipeline()
        for team, service in boxes:
            pipe.hgetall(self.keys.box(team, service))
        return {box: normalize(raw) for box, raw in zip(boxes, pipe.execute(), strict=True) if normalize(raw)}

    def events(self, stream: str, start: str = "-", batch: int = 10000) -> Iterator[dict[str, str]]:
        """Every event of a stream in order, read in chunks; each has its id under '_id'."""
        key = self.keys.stream(stream)
        cursor = start
        while True:
            chunk = self.redis.xrange(key, min=cursor, count=batch)
            for event_id, fields in chunk:
                yield {"_id": event_id, **fields}
            if len(chunk) < batch:
                return
            cursor = "(" + chunk[-1][0]

    def stats(self) -> dict[str, int]:
        """Running counters (accepted flags and others)."""
        return {k: int(v) for k, v in self.redis.hgetall(self.keys.counters).items()}

    def reset(self) -> None:
        """Delete every key of this game (admin reset)."""
        cursor = 0
        while True:
            cursor, keys = self.redis.scan(cursor, match=self.keys.prefix + "*", count=1000)
            if keys:
                self.redis.unlink(*keys)
            if cursor == 0:
                break


class AsyncSubmitter:
    """The submit script over an asyncio client, for the TCP server."""

    def __init__(self, store: GameStore, client: redis.asyncio.Redis) -> None:
        self.store = store
        self.redis = client
        self._script = client.register_script(_script("submit"))

    async def submit(self, attacker: TeamID, candidates: list[tuple[str, int, int, int]]) -> list[str]:
        """Run the submit script; see GameStore.submit."""
        if not candidates:
            return []
        return await self._script(args=self.store.submit_args(attacker, candidates))


def _box_key(box: str) -> tuple[TeamID, ServiceID]:
    team, service = box.split(":")
    return int(team), int(service)
