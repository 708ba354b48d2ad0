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
    """A sync client that answers in str; callers beyond its pool wait for a connection
    (up to 10 s) instead of failing, so a burst of web requests cannot exhaust it."""
    pool = redis.BlockingConnectionPool.from_url(url, decode_responses=True, health_check_interval=30,
                                                 max_connections=64, timeout=10)
    return redis.Redis(connection_pool=pool)


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
        self.ticker_lease = p + "ticker:lease"
        self.dispatched = p + "ticker:dispatched"
        self.web = p + "web"  # web-only values: admin password hash, emitter lease
        self.overrides = p + "overrides"
        self.history = p + "history"
        self.first_blood = p + "firstblood"
        self.socketio_channel = p + "socketio"  # pub/sub channel of the web nodes

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

    def chain_attempts(self, round_: Round) -> str:
        return f"{self.prefix}chain:attempts:{round_}"

    def chain_deadlines(self, round_: Round) -> str:
        return f"{self.prefix}chain:deadline:{round_}"

    def portal_submissions(self, team: TeamID) -> str:
        return f"{self.prefix}portal:{team}"


class GameStore:
    """Sync access to one game's state (web, ticker, workers, tools)."""

    def __init__(self, config: GameConfig, client: redis.Redis | None = None) -> None:
        self.config = config
        self.redis = client or connect(config.redis_url)
        self.keys = Keys(config.game.name)
        self._submit = self.redis.register_script(_script("submit"))
        self._open = self.redis.register_script(_script("open_round"))
        self._close = self.redis.register_script(_script("close_round"))
        self._record_round_check = self.redis.register_script(_script("record_round_check"))
        self._lease = self.redis.register_script(_script("lease"))

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

    # -- round engine (ticker and checker workers) -------------------------------------
    def record_round_check(self, round_: Round, team: TeamID, service: ServiceID, status: Status,
                           public: str = "", private: str = "", detail: dict[str, Any] | None = None,
                           only_if_absent: bool = False) -> bool:
        """Like `record_check`, but refused (False) once the round is closed, or, with
        `only_if_absent`, when the box already has a result for the round."""
        record = {"status": int(status), "public": public, "private": private,
                  "detail": detail or {}, "t": time.time(), "round": round_}
        args = [self.keys.prefix, round_, f"{team}:{service}", int(status), json.dumps(record),
                int(only_if_absent), team, service, public, private, json.dumps(detail or {})]
        return bool(self._record_round_check(args=args))

    def box_flags(self, rounds: list[Round], team: TeamID, service: ServiceID,
                  slots: int) -> dict[tuple[Round, int], dict[str, Any]]:
        """One box's placed flags in `rounds` (slots 0..slots-1): (round, slot) -> record."""
        fields = [f"{team}:{service}:{slot}" for slot in range(slots)]
        pipe = self.redis.pipeline()
        for round_ in rounds:
            pipe.hmget(self.keys.flag_ids(round_), fields)
        out = {}
        for round_, values in zip(rounds, pipe.execute(), strict=True):
            for slot, value in enumerate(values):
                if value is not None:
                    out[(round_, slot)] = json.loads(value)
        return out

    def start_chain(self, round_: Round, team: TeamID, service: ServiceID, deadline: float) -> int:
        """Mark a box's checker chain as started (finishing by `deadline`); return the attempt number."""
        k, box, keep = self.keys, f"{team}:{service}", 86400
        pipe = self.redis.pipeline()
        pipe.hincrby(k.chain_attempts(round_), box, 1)
        pipe.hset(k.chain_deadlines(round_), box, deadline)
        pipe.expire(k.chain_attempts(round_), keep)
        pipe.expire(k.chain_deadlines(round_), keep)
        return int(pipe.execute()[0])

    def chain_marks(self, round_: Round) -> dict[tuple[TeamID, ServiceID], tuple[int, float]]:
        """Started chains of a round: box -> (attempts, deadline)."""
        pipe = self.redis.pipeline()
        pipe.hgetall(self.keys.chain_attempts(round_))
        pipe.hgetall(self.keys.chain_deadlines(round_))
        attempts, deadlines = pipe.execute()
        return {_box_key(box): (int(n), float(deadlines.get(box, 0))) for box, n in attempts.items()}

    def claim_dispatch(self, round_: Round) -> bool:
        """True exactly once per round: whoever gets True dispatches the round's checks."""
        return bool(self.redis.sadd(self.keys.dispatched, round_))

    def _take_lease(self, key: str, owner: str, seconds: float) -> bool:
        """Take a lease if nobody holds it, or renew it (atomically) if `owner` does."""
        ms = max(1, int(seconds * 1000))
        if self._lease(keys=[key], args=[owner, "renew", ms]):
            return True
        return bool(self.redis.set(key, owner, nx=True, px=ms))

    def take_ticker_lease(self, owner: str, seconds: float) -> bool:
        """Take or renew the ticker lease (one active ticker per game)."""
        return self._take_lease(self.keys.ticker_lease, owner, seconds)

    def release_ticker_lease(self, owner: str) -> bool:
        """Give the ticker lease up if `owner` holds it."""
        return bool(self._lease(keys=[self.keys.ticker_lease], args=[owner, "release", 0]))

    def ticker_lease_holder(self) -> str | None:
        """Who holds the ticker lease now, if anyone."""
        return self.redis.get(self.keys.ticker_lease)

    def apply_resume(self, now: float | None = None) -> float:
        """After a pause, move the current round's start by the pause's length, once per pause.

        Returns the seconds shifted (0 when the game is not running or this pause was applied).
        """
        k = self.keys
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(k.state)
                    raw = pipe.hgetall(k.state)
                    paused_at = raw.get("paused_at", "")
                    if raw.get("state") != GameState.RUNNING.value or not paused_at \
                            or raw.get("pause_applied") == paused_at:
                        pipe.unwatch()
                        return 0.0
                    shift = max(0.0, (now or time.time()) - float(paused_at))
                    pipe.multi()
                    pipe.hincrbyfloat(k.state, "round_start", shift)
                    pipe.hset(k.state, "pause_applied", paused_at)
                    pipe.execute()
                    return shift
                except redis.WatchError:
                    continue

    # -- submission --------------------------------------------------------------
    def submit_args(self, attacker: TeamID, candidates: list[tuple[str, int, int, int]],
                    denied: dict[str, int] | None = None) -> list[Any]:
        """ARGV for the submit script: header, one line "flag victim service round" per flag,
        then the counts of flags denied before Redis, by verdict code."""
        game = self.config.game
        lines = "".join(f"{flag} {victim} {service} {round_}\n" for flag, victim, service, round_ in candidates)
        counts = " ".join(f"{code}={count}" for code, count in (denied or {}).items() if count)
        return [self.keys.prefix, attacker, game.scoring.formula, game.flag_lifetime,
                int(game.require_service_up), lines, counts]

    def submit(self, attacker: TeamID, candidates: list[tuple[str, int, int, int]],
               denied: dict[str, int] | None = None) -> list[str]:
        """Run the submit script on (flag, victim, service, flag_round) tuples; count `denied`."""
        if not candidates and not denied:
            return []
        return self._submit(args=self.submit_args(attacker, candidates, denied))

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

    # -- web-only state (board, portal, admin) -------------------------------------------
    def recent_events(self, stream: str, count: int = 30) -> list[dict[str, str]]:
        """The newest events of a stream, newest first; each has its id under '_id'."""
        return [{"_id": i, **f} for i, f in self.redis.xrevrange(self.keys.stream(stream), count=count)]

    def read_streams(self, cursors: dict[str, str], block_ms: int,
                     count: int = 1000) -> list[tuple[str, list[tuple[str, dict[str, str]]]]]:
        """XREAD BLOCK over named streams from cursors; answers (stream name, [(id, fields)])."""
        keys = {self.keys.stream(name): cursor for name, cursor in cursors.items()}
        answer = self.redis.xread(keys, count=count, block=block_ms) or []
        cut = len(self.keys.stream(""))
        return [(key[cut:], events) for key, events in answer]

    def last_event_id(self, stream: str) -> str:
        """The id of a stream's newest event ('0-0' when empty), to follow it from now."""
        newest = self.redis.xrevrange(self.keys.stream(stream), count=1)
        return newest[0][0] if newest else "0-0"

    def add_announcement(self, text: str, actor: str) -> dict[str, Any]:
        """Publish an announcement (kept in a list and logged to the admin stream)."""
        item = {"text": text, "t": time.time(), "actor": actor}
        self.redis.rpush(self.keys.announcements, json.dumps(item))
        self.log_admin("announcement", actor, text=text)
        return item

    def announcements(self) -> list[dict[str, Any]]:
        """Every announcement, oldest first."""
        return [json.loads(raw) for raw in self.redis.lrange(self.keys.announcements, 0, -1)]

    def set_first_blood(self, service: ServiceID, record: dict[str, Any]) -> bool:
        """Remember the first capture of a service; False when one is already known."""
        return bool(self.redis.hsetnx(self.keys.first_blood, str(service), json.dumps(record)))

    def first_bloods(self) -> dict[ServiceID, dict[str, Any]]:
        """Service id -> its first capture {a, v, s, r, t}."""
        return {int(s): json.loads(v) for s, v in self.redis.hgetall(self.keys.first_blood).items()}

    def record_history(self, round_: Round, totals: dict[TeamID, tuple[float, int]]) -> bool:
        """Keep every team's (total, rank) after round N closed, once; False if already kept."""
        value = json.dumps({str(t): list(v) for t, v in totals.items()})
        return bool(self.redis.hsetnx(self.keys.history, str(round_), value))

    def history(self) -> dict[Round, dict[TeamID, tuple[float, int]]]:
        """Round -> team -> (total, rank) after that round closed."""
        out = {}
        for round_, raw in self.redis.hgetall(self.keys.history).items():
            out[int(round_)] = {int(t): (float(v[0]), int(v[1])) for t, v in json.loads(raw).items()}
        return dict(sorted(out.items()))

    def set_override(self, kind: str, item_id: int, values: dict[str, Any], actor: str) -> None:
        """Store an admin change to a team or service ('team'/'service'), merged into earlier ones."""
        field = f"{kind}:{item_id}"
        current = json.loads(self.redis.hget(self.keys.overrides, field) or "{}")
        current.update(values)
        self.redis.hset(self.keys.overrides, field, json.dumps(current))
        self.log_admin("override", actor, kind=kind, id=item_id, values=values)

    def overrides(self) -> dict[tuple[str, int], dict[str, Any]]:
        """(kind, id) -> changed fields, as set by admins mid-game."""
        out = {}
        for field, raw in self.redis.hgetall(self.keys.overrides).items():
            kind, item_id = field.split(":")
            out[(kind, int(item_id))] = json.loads(raw)
        return out

    def web_value(self, name: str) -> str | None:
        """A web-only setting (e.g. 'admin_hash')."""
        return self.redis.hget(self.keys.web, name)

    def set_web_value_once(self, name: str, value: str) -> bool:
        """Set a web-only setting unless set before; True when this call set it."""
        return bool(self.redis.hsetnx(self.keys.web, name, value))

    def set_web_value(self, name: str, value: str) -> None:
        """Set (or replace) a web-only setting."""
        self.redis.hset(self.keys.web, name, value)

    def take_lease(self, name: str, holder: str, seconds: float) -> bool:
        """Hold (or renew) a named lease for `seconds`; True while this holder has it."""
        return self._take_lease(f"{self.keys.prefix}lease:{name}", holder, seconds)

    def record_portal_submissions(self, team: TeamID, items: list[dict[str, Any]], keep: int = 500) -> None:
        """Remember a team's portal submissions and verdicts (newest first, bounded)."""
        if not items:
            return
        key = self.keys.portal_submissions(team)
        pipe = self.redis.pipeline()
        pipe.lpush(key, *(json.dumps(i) for i in items))
        pipe.ltrim(key, 0, keep - 1)
        pipe.hincrby(self.keys.counters, "portal_submitted", len(items))
        pipe.execute()

    def portal_submissions(self, team: TeamID) -> list[dict[str, Any]]:
        """A team's portal submissions, newest first."""
        return [json.loads(r) for r in self.redis.lrange(self.keys.portal_submissions(team), 0, -1)]

    def live_statuses(self) -> dict[tuple[TeamID, ServiceID], Status]:
        """Every box's latest status."""
        return {_box_key(b): Status(int(c)) for b, c in self.redis.hgetall(self.keys.live_status).items()}


class AsyncSubmitter:
    """The submit script over an asyncio client, for the TCP server."""

    def __init__(self, store: GameStore, client: redis.asyncio.Redis) -> None:
        self.store = store
        self.redis = client
        self._script = client.register_script(_script("submit"))

    async def submit(self, attacker: TeamID, candidates: list[tuple[str, int, int, int]],
                     denied: dict[str, int] | None = None) -> list[str]:
        """Run the submit script; see GameStore.submit."""
        if not candidates and not denied:
            return []
        return await self._script(args=self.store.submit_args(attacker, candidates, denied))


def _box_key(box: str) -> tuple[TeamID, ServiceID]:
    team, service = box.split(":")
    return int(team), int(service)
