"""The ticker: the round clock and its only owner. Exactly one is active per game; others
wait as standby.

Its jobs, in order, every `poll` seconds while it holds the lease:

1. hold the lease (``SET NX PX`` + renew; a standby takes over within `lease_seconds`
   when the active ticker dies);
2. apply the clock requests admins queued (start, pause, resume, stop: `GameStore.request_state`)
   and the schedule (the admin's, else ``game.start`` / ``game.end``), at this one moment:
   nothing else changes the game's state or its clock. A pause stops the clock; the resume
   moves the round's start by exactly the pause's length (`GameStore.set_state`);
3. open round N and plan it once (`round_plan.release_plan`: every (team, service) of every
   team, NOP included: teams test exploits against it; it never scores), then release each
   box's `check_box` chain to the workers when its planned offset in the round comes;
4. at the round's end: drop unreleased chains, give every box without a result
   CHECKER_ERROR (`round_plan.missing_result`: never the team's fault), count the round's
   late, cut, unstarted and unfinished chains, close the round (idempotent; the close
   script keeps the score history), then open the next one (`round_plan.next_round_start`).

State lives in Redis, so a ticker restarted mid-game continues the current round and its
plan. Teams and services come from the effective game (the game file plus admin edits).
A Redis or broker outage makes it wait and retry; it never exits for one.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import secrets
import socket
import threading
import time

from scoreboard.check_requests import queue_name
from scoreboard.config import GameConfig
from scoreboard.effective import EffectiveGame
from scoreboard.store import REQUESTS, GameStore, StateError
from scoreboard.types import GameState, Round, Status

from . import round_plan
from .celery_app import configure
from .tasks import check_box

log = logging.getLogger(__name__)

# Seconds added to a chain's budget before Celery kills the worker process running it.
HARD_LIMIT_SLACK = 5.0
# Longest wait between retries while Redis or the broker is unreachable.
MAX_BACKOFF = 5.0
OVER_POLL = 1.0  # seconds between looks at a finished game (an admin may reopen it)


class Ticker:
    """The round clock of one game; `run` until `stop` is set."""

    def __init__(self, config: GameConfig, store: GameStore | None = None, lease_seconds: float = 3.0,
                 poll: float = 0.2, rng: random.Random | None = None) -> None:
        self.config = config
        self.store = store or GameStore(config)
        self.game = EffectiveGame(self.store)
        self.lease_seconds = lease_seconds
        self.poll = poll
        self.rng = rng or random.Random()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.active = False
        self.stop = threading.Event()
        self._sent: dict[Round, list[str]] = {}
        configure(config)

    # -- the loop --------------------------------------------------------------------
    def run(self) -> None:
        """Hold the lease and drive rounds until `stop` is set; wait out Redis and broker
        outages. A finished game keeps it waiting (slower), for an admin's reopen."""
        log.info("ticker %s for game %s: waiting for the lease", self.owner, self.config.game.name)
        backoff = 0.0
        over = False
        try:
            while not self.stop.is_set():
                try:
                    was_over, over = over, self._tick()
                    if over and not was_over:
                        log.info("game over: waiting in case an admin reopens it")
                    if backoff:
                        log.info("Redis and broker reachable again")
                    backoff = 0.0
                except Exception as exc:  # Redis restart, broker loss: wait and retry, never exit
                    self.active = False
                    backoff = min(MAX_BACKOFF, max(self.poll, backoff * 2))
                    log.warning("ticker step failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, backoff)
                    self.stop.wait(backoff)
                    continue
                self.stop.wait(OVER_POLL if over else self.poll)
        finally:
            try:
                self.store.release_ticker_lease(self.owner)
            except Exception:
                log.warning("could not release the ticker lease (it expires by itself)")

    def _tick(self) -> bool:
        if not self.store.take_ticker_lease(self.owner, self.lease_seconds):
            if self.active:
                log.warning("lost the lease: standby")
            self.active = False
            return False
        if not self.active:
            self.active = True
            log.info("active (lease held by %s)", self.owner)
        return self.step(time.time())

    def step(self, now: float) -> bool:
        """One look at the requests, the clock and the game state; True once the game is over."""
        config = self.game.current()
        self.apply_requests(now)
        start, end = self.schedule(config)
        st = self.store.state()
        if st["state"] == GameState.NOT_STARTED:
            if start is None or now < start:
                return False
            self.store.set_state(GameState.RUNNING, actor="ticker", reason="scheduled start reached", now=now)
            st = self.store.state()
        if end is not None and now >= end and st["state"] != GameState.OVER:
            self.store.set_state(GameState.OVER, actor="ticker", reason="scheduled end reached", now=now)
            st = self.store.state()
        if st["state"] == GameState.OVER:
            if st["round"] > st["closed_round"]:
                ended = (Status.CHECKER_ERROR, "game ended", "the game ended mid-round")
                self.end_round(config, st["round"], now, ended)
            return True
        if st["state"] == GameState.PAUSED:
            return False
        round_, round_start, seconds = st["round"], st["round_start"], config.game.round_seconds
        if round_ == 0:
            self.open_round(config, 1, now, now)
        elif st["closed_round"] < round_:
            if self.store.claim_dispatch(round_):  # a restarted ticker: the round was never planned
                self.plan(config, round_)
            self.release(config, round_, round_start, st["run"], now)
            if now >= round_start + seconds:
                self.end_round(config, round_, now)
                self.open_round(config, round_ + 1, round_plan.next_round_start(round_start, seconds, now), now)
        else:  # closed, next not opened (a ticker died in between)
            self.open_round(config, round_ + 1, round_plan.next_round_start(round_start, seconds, now), now)
        return False

    # -- the clock owner's inputs -------------------------------------------------------
    def apply_requests(self, now: float) -> None:
        """Apply the admins' queued start / pause / resume / stop, oldest first."""
        for request in self.store.take_state_requests():
            action, actor = request.get("action", ""), request.get("actor", "admin")
            if action not in REQUESTS:
                continue
            target = REQUESTS[action][0]
            try:
                self.store.set_state(target, actor=actor, reason=action, now=now)
                log.info("%s by %s applied", action, actor)
            except StateError as exc:
                self.store.log_admin("refused", actor, action=action, reason=str(exc))

    def schedule(self, config: GameConfig) -> tuple[float | None, float | None]:
        """(start, end) epoch times: the admin's schedule where set, else the game file's."""
        schedule = self.store.schedule()
        start = schedule.get("start", config.game.start.timestamp() if config.game.start else None)
        end = schedule.get("stop", config.game.end.timestamp() if config.game.end else None)  # None: no end
        return start, end

    # -- round work -----------------------------------------------------------------
    def open_round(self, config: GameConfig, round_: Round, start: float, now: float) -> None:
        """Open `round_` starting at `start`, plan it (once) and release what is due."""
        if self.store.open_round(round_, start):
            log.info("round %d opened (started %.1fs ago)", round_, now - start)
        if self.store.claim_dispatch(round_):
            self.plan(config, round_)
        self.release(config, round_, start, self.store.state()["run"], now)

    def plan(self, config: GameConfig, round_: Round) -> int:
        """Plan the round's chain releases, interleaved, each service's spread leaving room for
        its chains (`round_plan.chain_room`); return how many chains."""
        recent = self.store.recent_durations()
        boxes = []
        for service in config.services:
            if not service.enabled:
                continue
            room = round_plan.chain_room(service, recent.get(service.id, []))
            window = round_plan.spread_window(config.game.round_seconds, room)
            boxes += [(team.id, service.id, window) for team in config.teams]
        plan = round_plan.release_plan(boxes, self.rng)
        self.store.save_release_plan(round_, plan)
        log.info("round %d: %d chains planned", round_, len(plan))
        return len(plan)

    def release(self, config: GameConfig, round_: Round, round_start: float, run: str, now: float) -> int:
        """Send the chains whose planned offset has come; return how many."""
        due = self.store.take_due_releases(round_, now - round_start)
        if not due:
            return 0
        seconds = config.game.round_seconds
        round_end = round_start + seconds
        expires = dt.datetime.fromtimestamp(round_end, dt.UTC)  # a datetime: a number means "seconds from now"
        queue = queue_name(config)
        sent = self._sent.setdefault(round_, [])
        with check_box.app.producer_or_acquire() as producer:  # one connection per release batch
            for index, (team, service_id, _offset) in enumerate(due):
                service = config.service(service_id)
                limit = min(round_plan.chain_budget(service), seconds) + HARD_LIMIT_SLACK
                result = check_box.apply_async((round_, team, service_id, round_end, run, time.time()),
                                               expires=expires, time_limit=limit, queue=queue, producer=producer)
                sent.append(result.id)
                if index % 200 == 199:  # a big game takes a while to send: keep the lease
                    self.store.take_ticker_lease(self.owner, self.lease_seconds)
        self.store.count_round(round_, released=len(due))
        return len(due)

    def end_round(self, config: GameConfig, round_: Round, now: float,
                  missing: tuple[Status, str, str] | None = None) -> None:
        """Drop unreleased chains, fill boxes without a result (not judged), count the round's
        engine figures and close it."""
        sent = self._sent.pop(round_, [])
        if sent:
            check_box.app.control.revoke(sent)
        self.store.drop_release_plan(round_)
        marks = self.store.chain_marks(round_)
        have = self.store.round_statuses(round_)
        unstarted = unfinished = 0
        for team in config.teams:
            for service in config.services:
                box = (team.id, service.id)
                if not service.enabled or box in have:
                    continue
                attempts, deadline = marks.get(box, (0, 0.0))
                status, public, private = missing or round_plan.missing_result(attempts, deadline, now)
                if self.store.record_check(round_, team.id, service.id, status, public, private,
                                           {"actions": [], "filled_by": "ticker"}, only_if_absent=True):
                    unstarted += attempts == 0
                    unfinished += attempts > 0
        self.store.count_round(round_, unstarted=unstarted, unfinished=unfinished)
        self.store.count_engine(chains_unstarted=unstarted, chains_unfinished=unfinished)
        closed = self.store.close_round(round_, now, config)
        log.info("round %d %s (%d chains never started, %d unfinished)", round_,
                 "closed" if closed else "was closed", unstarted, unfinished)


def run_ticker(config: GameConfig, lease_seconds: float = 3.0) -> None:
    """Run a ticker until SIGTERM / SIGINT (the `adrange ticker` command)."""
    import signal

    ticker = Ticker(config, lease_seconds=lease_seconds)

    def stop(signum: int, frame: object) -> None:
        ticker.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    ticker.run()
