"""The Redis store: every key and script of a game lives here, nowhere else.

All keys start with ``adr:<game>:``. Live state is small hashes; history is append-only
streams (``ev:capture``, ``ev:check``, ``ev:flag``, ``ev:round``, ``ev:admin``) from which
every score can be recomputed. Flag acceptance and round close are Lua scripts, so each
is one atomic step that Redis logs to its AOF before the caller sees the answer.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
import re
import secrets
import time
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

import redis
import redis.asyncio

from .config import GameConfig
from .effective import apply_overrides
from .ranking import rank
from .scoring.policy import UP_CODES, lua_rules
from .scoring.rating import LIMIT, STEP, delta_table
from .scoring.replay import normalize
from .types import GameState, Round, ServiceID, Status, TeamID

log = logging.getLogger("adrange.store")
STREAMS = ("capture", "check", "flag", "round", "admin")
# Bounds (seconds) of the dispatch-delay histogram in /metrics.
DELAY_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
_TRANSITIONS = {
    GameState.NOT_STARTED: {GameState.RUNNING, GameState.OVER},
    GameState.RUNNING: {GameState.PAUSED, GameState.OVER},
    GameState.PAUSED: {GameState.RUNNING, GameState.OVER},
    GameState.OVER: {GameState.PAUSED},  # reopened by an admin: paused until resumed
}


# What an operator may ask the ticker for (admin panel, API, `adrange game`), and from
# which states; the ticker maps each to its target state.
REQUESTS: dict[str, tuple[GameState, frozenset[GameState]]] = {
    "start": (GameState.RUNNING, frozenset({GameState.NOT_STARTED})),
    "pause": (GameState.PAUSED, frozenset({GameState.RUNNING})),
    "resume": (GameState.RUNNING, frozenset({GameState.PAUSED})),
    "stop": (GameState.OVER, frozenset({GameState.NOT_STARTED, GameState.RUNNING, GameState.PAUSED})),
    "reopen": (GameState.PAUSED, frozenset({GameState.OVER})),
}


class StateError(Exception):
    """A game state change that is not allowed from the current `state` (None: the request
    itself is wrong)."""

    def __init__(self, message: str, state: GameState | None = None) -> None:
        super().__init__(message)
        self.state = state


def _script(name: str) -> str:
    return resources.files("scoreboard").joinpath(f"lua/{name}.lua").read_text()


def connect(url: str) -> redis.Redis:
    """A sync client that answers in str; callers beyond its pool wait for a connection
    (up to 10 s) instead of failing, so a burst of web requests cannot exhaust it."""
    pool = redis.BlockingConnectionPool.from_url(url, decode_responses=True, health_check_interval=30,
                                                 max_connections=64, timeout=10)
    return redis.Redis(connection_pool=pool)


def wait_for_redis(url: str, who: str, max_wait: float = 5.0) -> None:
    """Block until Redis at `url` answers PING; log the cause now and then while it does not.

    Every process calls this at its start, so a platform started before its Redis (or
    during a Redis restart) waits instead of exiting."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    delay, said = 0.2, 0.0
    try:
        while True:
            try:
                client.ping()
                if said:
                    log.info("%s: Redis reachable, starting", who)
                return
            except (redis.AuthenticationError, redis.ResponseError) as exc:  # waiting will not help
                raise SystemExit(f"{who}: Redis at {without_password(url)} refuses us: {exc} "
                                 "(check the password in redis_url)") from None
            except redis.RedisError as exc:
                if time.monotonic() - said > 10:
                    log.warning("%s: waiting for Redis at %s (%s)", who, without_password(url), exc)
                    said = time.monotonic()
                time.sleep(delay)
                delay = min(max_wait, delay * 2)
    finally:
        client.close()


def without_password(url: str) -> str:
    """A Redis URL fit for a log line."""
    return re.sub(r"//[^@/]*@", "//***@", url)


def connect_async(url: str) -> redis.asyncio.Redis:
    """An asyncio client that answers in str, with at most 64 connections (callers beyond
    wait): many sessions submitting at once cannot spend the files a flood budget keeps."""
    pool = redis.asyncio.BlockingConnectionPool.from_url(url, decode_responses=True, max_connections=64, timeout=10)
    return redis.asyncio.Redis(connection_pool=pool)


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
        self.overrides_version = p + "overrides:version"  # bumped with every admin edit
        self.history = p + "history"
        self.first_blood = p + "firstblood"
        self.requests = p + "ticker:requests"  # clock requests (start, pause, ...) the ticker applies
        self.schedule = p + "schedule"
        self.engine = p + "engine"  # round-engine counters for /metrics
        self.socketio_channel = p + "socketio"  # pub/sub channel of the web nodes

    def processes(self, kind: str) -> str:
        """The live processes of one kind (member -> lease end), e.g. the submit servers."""
        return f"{self.prefix}processes:{kind}"

    def web_session(self, sid: str) -> str:
        """A logged-in web session's record (who it is for), by its id."""
        return f"{self.web}:session:{sid}"

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

    def submissions(self, team: TeamID) -> str:
        """A team's recent submissions over every channel (`submission.history` entries, newest pushed first)."""
        return f"{self.prefix}submissions:{team}"

    def release_plan(self, round_: Round) -> str:
        return f"{self.prefix}plan:{round_}"

    def round_stats(self, round_: Round) -> str:
        return f"{self.prefix}roundstats:{round_}"

    def durations(self, service: ServiceID) -> str:
        return f"{self.prefix}durations:{service}"


class GameStore:
    """Sync access to one game's state (web, ticker, workers, tools)."""

    def __init__(self, config: GameConfig, client: redis.Redis | None = None) -> None:
        self.config = config
        self.redis = client or connect(config.redis_url)
        self.keys = Keys(config.game.name)
        self._submit = self.redis.register_script(_script("submit"))
        self._open = self.redis.register_script(_script("open_round"))
        self._close = self.redis.register_script(_script("close_round"))
        self._record_check = self.redis.register_script(_script("record_check"))
        self._lease = self.redis.register_script(_script("lease"))
        self._history_cache: dict[Round, dict[TeamID, tuple[float, int]]] = {}
        self._history_shape: tuple[Any, ...] = ()

    # -- setup and state ---------------------------------------------------------
    def init(self) -> None:
        """Make the game's keys exist; keeps any state already there (restart-safe)."""
        k = self.keys
        pipe = self.redis.pipeline()
        pipe.hsetnx(k.state, "state", GameState.NOT_STARTED.value)
        pipe.hsetnx(k.state, "round", 0)
        pipe.hsetnx(k.state, "run", secrets.token_hex(8))  # new after a reset: older chains are stale
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
            "run": raw.get("run", ""),
        }

    def set_state(self, new: GameState, actor: str = "system", reason: str = "",
                  now: float | None = None) -> GameState:
        """Move the game to a new state (checked against allowed moves); return the old one.

        Pausing notes the time; resuming moves the current round's start by the pause's
        length in the same step, so a pause of P seconds moves the round's end by exactly P.
        Only the ticker calls this in a running game (admins send `request_state`)."""
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
                        raise StateError(f"cannot go from {old.value} to {new.value}", old)
                    at = now or time.time()
                    paused_at = float(pipe.hget(k.state, "paused_at") or 0)
                    has_round = int(pipe.hget(k.state, "round") or 0) > 0
                    pipe.multi()
                    pipe.hset(k.state, "state", new.value)
                    if new == GameState.PAUSED:
                        pipe.hset(k.state, "paused_at", at)
                    elif old == GameState.PAUSED and new == GameState.RUNNING and has_round:
                        pipe.hincrbyfloat(k.state, "round_start", max(0.0, at - paused_at))
                    pipe.xadd(k.stream("admin"), {"type": "state", "from": old.value, "to": new.value,
                                                  "actor": actor, "reason": reason, "t": at})
                    pipe.execute()
                    return old
                except redis.WatchError:
                    continue

    # -- requests to the clock owner (the ticker applies them) -------------------------------
    def request_state(self, action: str, actor: str) -> None:
        """Ask the ticker to start, pause, resume, stop or reopen the game at its next step;
        StateError if the game's state does not allow it now (see `REQUESTS`)."""
        state = self.state()["state"]
        if action not in REQUESTS:
            raise StateError(f"unknown action {action!r}: use {', '.join(REQUESTS)}")
        if state not in REQUESTS[action][1]:
            hint = " (reopen it first)" if state == GameState.OVER else ""
            raise StateError(f"cannot {action} the game: it is {state.value}{hint}", state)
        self.redis.rpush(self.keys.requests, json.dumps({"action": action, "actor": actor, "t": time.time()}))

    def reopen(self, stop: float | None, actor: str) -> None:
        """Ask the ticker to reopen a finished game (paused) with a new end, or none: the
        admin's schedule keeps its start and overrides the game file's end either way."""
        state = self.state()["state"]
        if state != GameState.OVER:
            raise StateError(f"only a finished game can be reopened: it is {state.value}", state)
        if stop is not None and stop <= time.time():
            raise StateError("the new stop must be in the future")
        self.set_schedule(self.schedule().get("start"), stop, actor, no_stop=stop is None)
        self.request_state("reopen", actor)

    def take_state_requests(self) -> list[dict[str, Any]]:
        """The pending clock requests, oldest first, removed from the queue (ticker only)."""
        pipe = self.redis.pipeline()
        pipe.lrange(self.keys.requests, 0, -1)
        pipe.delete(self.keys.requests)
        return [json.loads(raw) for raw in pipe.execute()[0]]

    def pending_state_requests(self) -> list[dict[str, Any]]:
        """Clock requests the ticker has not applied yet (for the admin panel)."""
        return [json.loads(raw) for raw in self.redis.lrange(self.keys.requests, 0, -1)]

    def set_schedule(self, start: float | None, stop: float | None, actor: str,
                     no_stop: bool = False) -> None:
        """Start and/or stop the game automatically at these epoch times (None: the game
        file's); `no_stop`: no automatic end at all, whatever the game file says."""
        for name, value in (("start", start), ("stop", stop)):
            if value is not None and not math.isfinite(value):
                raise ValueError(f"schedule {name} must be a finite time")
        values: dict[str, float | str] = {name: value for name, value in (("start", start), ("stop", stop))
                                          if value is not None}
        if no_stop:
            values["stop"] = ""
        pipe = self.redis.pipeline()
        pipe.delete(self.keys.schedule)
        if values:
            pipe.hset(self.keys.schedule, mapping=values)
        pipe.execute()
        self.log_admin("schedule", actor, start=start, stop=stop, no_stop=no_stop)

    def schedule(self) -> dict[str, float | None]:
        """The admin's scheduled start/stop (epoch seconds), where set; None: explicitly none."""
        return {name: float(value) if value else None for name, value in self.redis.hgetall(self.keys.schedule).items()}

    def log_admin(self, action: str, actor: str, **data: Any) -> None:
        """Append an admin action to the admin stream."""
        fields = {"type": action, "actor": actor, "t": time.time()}
        fields.update({key: json.dumps(value) for key, value in data.items()})
        self.redis.xadd(self.keys.stream("admin"), fields)

    # -- rounds ----------------------------------------------------------------
    def open_round(self, round_: Round, now: float | None = None) -> bool:
        """Open round N once; False when the game is already at or past N."""
        return bool(self._open(args=[self.keys.prefix, round_, now or time.time()]))

    def active_boxes(self, config: GameConfig | None = None) -> list[str]:
        """'team:service' of every playing team's every enabled service, in the effective game
        (`config`; default: the game file plus the current admin overrides)."""
        config = self._effective(config)
        return [f"{t.id}:{s.id}" for t in config.playing_teams for s in config.services if s.enabled]

    def close_round(self, round_: Round, now: float | None = None, config: GameConfig | None = None) -> bool:
        """Count round N's statuses into the counters exactly once (by `policy.RULES`) and
        keep the per-round history; False if it was closed before. `config`: the effective
        game whose boxes are played and scored (default: file plus admin overrides)."""
        config = self._effective(config)
        scored = " ".join(f"{t.id}:{s.id}" for t in config.playing_teams for s in config.services)
        args = [self.keys.prefix, round_, now or time.time(), lua_rules(), " ".join(self.active_boxes(config)),
                scored]
        return bool(self._close(args=args))

    # -- checker results and flags ---------------------------------------------------
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
    def record_check(self, round_: Round, team: TeamID, service: ServiceID, status: Status,
                     public: str = "", private: str = "", detail: dict[str, Any] | None = None,
                     only_if_absent: bool = False) -> bool:
        """Store one box's result for a round (its status, the live status, the record with
        private messages) and append it to the check stream; refused (False) once the round
        is closed, or, with `only_if_absent`, when the box already has a result for the round."""
        record = {"status": int(status), "public": public, "private": private,
                  "detail": detail or {}, "t": time.time(), "round": round_}
        args = [self.keys.prefix, round_, f"{team}:{service}", int(status), json.dumps(record),
                int(only_if_absent), team, service, public, private, json.dumps(detail or {})]
        return bool(self._record_check(args=args))

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
        """True exactly once per round: whoever gets True plans the round's chains."""
        return bool(self.redis.sadd(self.keys.dispatched, round_))

    def save_release_plan(self, round_: Round, plan: list[tuple[float, int, int]]) -> None:
        """Keep a round's chain releases: (offset in seconds from the round's start, team, service)."""
        if not plan:
            return
        key = self.keys.release_plan(round_)
        pipe = self.redis.pipeline()
        pipe.zadd(key, {f"{team}:{service}": offset for offset, team, service in plan})
        pipe.expire(key, 86400)
        pipe.hset(self.keys.round_stats(round_), "planned", len(plan))
        pipe.expire(self.keys.round_stats(round_), 86400)
        pipe.execute()

    def take_due_releases(self, round_: Round, offset: float) -> list[tuple[TeamID, ServiceID, float]]:
        """Remove and return the releases due by `offset` seconds into the round, earliest
        first, as (team, service, planned offset); each is returned once, whoever asks."""
        key = self.keys.release_plan(round_)
        due = self.redis.zrangebyscore(key, "-inf", offset, withscores=True)
        if not due:
            return []
        pipe = self.redis.pipeline()
        for member, _ in due:
            pipe.zrem(key, member)
        taken = pipe.execute()
        out = []
        for (member, planned), removed in zip(due, taken, strict=True):
            if removed:
                team, service = _box_key(member)
                out.append((team, service, float(planned)))
        return out

    def count_round(self, round_: Round, **counts: float) -> None:
        """Add to a round's engine figures (released, started, late, cut, unstarted, ...)."""
        self._add(self.keys.round_stats(round_), counts, expire=86400)

    def note_max_delay(self, round_: Round, delay: float) -> None:
        """Keep the round's largest dispatch delay (best effort: figures for the organizers)."""
        key = self.keys.round_stats(round_)
        if delay > float(self.redis.hget(key, "max_delay") or 0):
            self.redis.hset(key, "max_delay", round(delay, 3))

    def drop_release_plan(self, round_: Round) -> None:
        """Forget a round's releases not sent yet (its close: they will never run)."""
        self.redis.delete(self.keys.release_plan(round_))

    def round_stats(self, round_: Round) -> dict[str, float]:
        """A round's engine figures (see `count_round`)."""
        return {k: float(v) for k, v in self.redis.hgetall(self.keys.round_stats(round_)).items()}

    def record_chain_timing(self, service: ServiceID, sample: float, delay: float,
                            actions: list[dict[str, Any]], samples: int) -> None:
        """Keep a finished chain's planning sample (the last `samples` per service), its
        dispatch delay and each action's duration in the engine counters (for /metrics)."""
        k = self.keys
        pipe = self.redis.pipeline()
        pipe.lpush(k.durations(service), round(sample, 4))
        pipe.ltrim(k.durations(service), 0, samples - 1)
        pipe.hincrbyfloat(k.engine, "delay_sum", delay)
        pipe.hincrby(k.engine, "delay_count", 1)
        for bound in DELAY_BUCKETS:
            if delay <= bound:
                pipe.hincrby(k.engine, f"delay_le:{bound:g}", 1)
        for action in actions:
            name = f"{service}:{action['action']}"
            pipe.hincrbyfloat(k.engine, f"action_sum:{name}", float(action.get("duration", 0)))
            pipe.hincrby(k.engine, f"action_count:{name}", 1)
        pipe.execute()

    def recent_durations(self) -> dict[ServiceID, list[float]]:
        """Each service's recent chain planning samples (seconds), newest first."""
        pipe = self.redis.pipeline()
        for service in self.config.services:
            pipe.lrange(self.keys.durations(service.id), 0, -1)
        return {s.id: [float(x) for x in values]
                for s, values in zip(self.config.services, pipe.execute(), strict=True)}

    def engine_counters(self) -> dict[str, float]:
        """The round engine's counters (dispatch delays, action durations, unfinished chains)."""
        return {k: float(v) for k, v in self.redis.hgetall(self.keys.engine).items()}

    def count_engine(self, **counts: float) -> None:
        """Add to the engine counters."""
        self._add(self.keys.engine, counts)

    def _add(self, key: str, counts: dict[str, float], expire: int | None = None) -> None:
        pipe = self.redis.pipeline()
        for name, value in counts.items():
            pipe.hincrbyfloat(key, name, value)
        if expire:
            pipe.expire(key, expire)
        pipe.execute()

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

    # -- submission --------------------------------------------------------------
    def submit_args(self, attacker: TeamID, candidates: list[tuple[str, int, int, int]]) -> list[Any]:
        """ARGV for the submit script: header, then one line "flag victim service round" per flag."""
        game = self.config.game
        lines = "".join(f"{flag} {victim} {service} {round_}\n" for flag, victim, service, round_ in candidates)
        up = " ".join(str(code) for code in UP_CODES) if game.require_service_up else ""
        return [self.keys.prefix, attacker, game.scoring.formula, game.flag_lifetime, up, lines]

    def submit(self, attacker: TeamID, candidates: list[tuple[str, int, int, int]]) -> list[str]:
        """Run the submit script on (flag, victim, service, flag_round) tuples (none: no call)."""
        if not candidates:
            return []
        return self._submit(args=self.submit_args(attacker, candidates))

    # -- scores and events -------------------------------------------------------------
    def counters(self, config: GameConfig | None = None) -> dict[tuple[TeamID, ServiceID], dict[str, int]]:
        """Live counters of every box of the effective game (`config`; default: the game file
        plus the current admin overrides): disabled teams left out, added teams in; a disabled
        service keeps what it earned before (it only stops scoring); zero fields left out."""
        config = self._effective(config)
        boxes = [(t.id, s.id) for t in config.teams for s in config.services]
        pipe = self.redis.pipeline()
        for team, service in boxes:
            pipe.hgetall(self.keys.box(team, service))
        counters = ((box, normalize(raw)) for box, raw in zip(boxes, pipe.execute(), strict=True))
        return {box: values for box, values in counters if values}

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

    def live_processes(self, kind: str, member: str, lease: float) -> int:
        """Register `member` as a live process of `kind` for `lease` more seconds; return how
        many processes of that kind are live (a killed one drops out when its lease ends)."""
        key, now = self.keys.processes(kind), time.time()
        pipe = self.redis.pipeline()
        pipe.zadd(key, {member: now + lease})
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.zcard(key)
        return int(pipe.execute()[-1])

    def leave_processes(self, kind: str, member: str) -> None:
        """`member` stops: it no longer counts as live."""
        self.redis.zrem(self.keys.processes(kind), member)

    def add_stats(self, counts: dict[str, int]) -> None:
        """Add to the running counters (each process adds its own, so they sum over processes)."""
        if counts:
            pipe = self.redis.pipeline()
            for name, more in counts.items():
                pipe.hincrby(self.keys.counters, name, more)
            pipe.execute()

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

    def history(self, config: GameConfig | None = None) -> dict[Round, dict[TeamID, tuple[float, int]]]:
        """Round -> team -> (total, rank) right after that round closed, ranked from the
        counters the close script kept (`config`: the effective game, default the file).
        A round's snapshot never changes once written: each is read from Redis and ranked
        once per process (and again only when the teams or services change)."""
        config = config or self.config
        shape = (self.redis.hget(self.keys.state, "run"),  # a reset starts a new run: forget the old rounds
                 tuple((t.id, t.name) for t in config.playing_teams), tuple(s.id for s in config.services))
        if self._history_shape != shape:
            self._history_cache, self._history_shape = {}, shape
        rounds = sorted(int(field) for field in self.redis.hkeys(self.keys.history))
        missing = [r for r in rounds if r not in self._history_cache]
        if missing:
            for round_, raw in zip(missing, self.redis.hmget(self.keys.history, missing), strict=True):
                if raw is None:  # gone since HKEYS (an admin reset)
                    continue
                counters = {_box_key(box): normalize(c) for box, c in json.loads(raw).items()}
                self._history_cache[round_] = {row.team: (row.total, row.rank) for row in rank(config, counters)}
        return {r: self._history_cache[r] for r in rounds if r in self._history_cache}

    def set_override(self, kind: str, item_id: int, values: dict[str, Any], actor: str) -> int:
        """Store an admin change to a team or service ('team'/'service'), merged into earlier
        ones, and bump the overrides version in the same transaction; return the new version.

        The first version (of a game, or after a reset) is the clock in milliseconds, so it
        never repeats one that a process cached before a reset."""
        k, field = self.keys, f"{kind}:{item_id}"
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(k.overrides, k.overrides_version)
                    current = json.loads(pipe.hget(k.overrides, field) or "{}")
                    version = int(pipe.get(k.overrides_version) or 0)
                    current.update(values)
                    version = version + 1 if version else int(time.time() * 1000)
                    pipe.multi()
                    pipe.hset(k.overrides, field, json.dumps(current))
                    pipe.set(k.overrides_version, version)
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        self.log_admin("override", actor, kind=kind, id=item_id, values=values)
        return version

    def overrides_version(self) -> int:
        """The version of the admin overrides (0 before the first edit)."""
        return int(self.redis.get(self.keys.overrides_version) or 0)

    def overrides(self) -> dict[tuple[str, int], dict[str, Any]]:
        """(kind, id) -> changed fields, as set by admins mid-game."""
        out = {}
        for field, raw in self.redis.hgetall(self.keys.overrides).items():
            kind, item_id = field.split(":")
            out[(kind, int(item_id))] = json.loads(raw)
        return out

    def _effective(self, config: GameConfig | None) -> GameConfig:
        """`config`, or else the game file with the current admin overrides."""
        return config if config is not None else apply_overrides(self.config, self.overrides())

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

    def record_submissions(self, entries: dict[TeamID, list[str]], keep: int,
                           denied: Mapping[str, int] | None = None) -> None:
        """Add each team's submission entries (oldest first) to its history, which keeps the
        newest `keep`, and the `denied` flags by verdict to the counters: one pipeline, not a
        transaction (the entries: `submission.history`)."""
        pipe = self.redis.pipeline(transaction=False)
        for team, items in entries.items():
            if not items:
                continue
            key = self.keys.submissions(team)
            pipe.lpush(key, *items)
            pipe.ltrim(key, 0, keep - 1)
        for verdict, count in (denied or {}).items():
            pipe.hincrby(self.keys.counters, f"denied:{verdict}", count)
        pipe.execute()

    def submission_history(self, team: TeamID) -> list[str]:
        """A team's submission entries, the last pushed first."""
        return self.redis.lrange(self.keys.submissions(team), 0, -1)

    def live_statuses(self) -> dict[tuple[TeamID, ServiceID], Status]:
        """Every box's latest status."""
        return {_box_key(b): Status(int(c)) for b, c in self.redis.hgetall(self.keys.live_status).items()}


SUBMIT_PIPELINES = 4  # submit-script pipelines one TCP server process has under way at once
PIPELINE_FLAGS = 4096  # flags one pipeline carries at most (beyond its first call): Redis runs a
# pipeline's calls back to back, so a huge one would hold the round's close and other servers


class AsyncSubmitter:
    """The submit script over an asyncio client, for the TCP server, with group commit.

    Up to `SUBMIT_PIPELINES` pipelines are under way at once (so Redis works while this
    process reads answers and judges the next reads); calls made while all of them are
    wait, and go out together as the next pipeline: one round trip for all of them, and
    one fsync (Redis writes the AOF once per turn of its event loop, `appendfsync always`).
    Many farms that each send a flag and wait for its answer then cost one client round
    trip per turn instead of one each. Each call is still its own script run: atomic. A
    pipeline takes calls in the order they came, up to `PIPELINE_FLAGS` flags.
    """

    def __init__(self, store: GameStore, client: redis.asyncio.Redis) -> None:
        self.store = store
        self.redis = client
        self._script = client.register_script(_script("submit"))
        self._waiting: collections.deque[tuple[list[Any], int, asyncio.Future[list[str]]]] = collections.deque()
        self._sending = 0  # senders running; each counts itself out as it stops, so no call waits on none
        self._senders: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    async def submit(self, attacker: TeamID, candidates: list[tuple[str, int, int, int]]) -> list[str]:
        """Run the submit script; see GameStore.submit."""
        if not candidates:
            return []
        answer: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._waiting.append((self.store.submit_args(attacker, candidates), len(candidates), answer))
        if self._sending < SUBMIT_PIPELINES:
            self._sending += 1
            sender = asyncio.create_task(self._send())
            self._senders.add(sender)
            sender.add_done_callback(self._senders.discard)
        return await answer

    async def _send(self) -> None:
        """Send what waits, one pipeline at a time, until nothing does."""
        try:
            while self._waiting:
                group, flags = [], 0
                while self._waiting and (not group or flags + self._waiting[0][1] <= PIPELINE_FLAGS):
                    args, count, answer = self._waiting.popleft()
                    if not answer.done():  # not cancelled meanwhile
                        group.append((args, answer))
                        flags += count
                try:
                    results = await self._run([args for args, _ in group])
                except Exception as exc:  # Redis down: every caller of the group gets the error
                    results = [exc] * len(group)
                for (_, answer), result in zip(group, results, strict=True):
                    if answer.done():
                        continue
                    if isinstance(result, Exception):
                        answer.set_exception(result)
                    else:
                        answer.set_result(result)
        finally:
            self._sending -= 1

    async def _run(self, calls: list[list[Any]]) -> list[Any]:
        """One pipeline of script calls; a result is an answer or the call's error. Calls
        Redis refused as NOSCRIPT (it restarted without the script) did not run: they run
        again once the script is loaded."""
        results = await self._pipeline(calls)
        again = [i for i, result in enumerate(results) if isinstance(result, redis.exceptions.NoScriptError)]
        if again:
            await self.redis.script_load(self._script.script)
            for i, result in zip(again, await self._pipeline([calls[i] for i in again]), strict=True):
                results[i] = result
        return results

    async def _pipeline(self, calls: list[list[Any]]) -> list[Any]:
        pipe = self.redis.pipeline(transaction=False)
        for args in calls:
            pipe.evalsha(self._script.sha, 0, *args)
        return await pipe.execute(raise_on_error=False)


def _box_key(box: str) -> tuple[TeamID, ServiceID]:
    team, service = box.split(":")
    return int(team), int(service)
