"""The ticker: the round clock. Exactly one is active per game; others wait as standby.

Its jobs, in order, every `poll` seconds while it holds the lease:

1. hold the lease (``SET NX PX`` + renew; a standby takes over within `lease_seconds`
   when the active ticker dies);
2. follow the game state: start the game at ``game.start``, end it at ``game.end``,
   obey pause / resume / stop set by admins (paused: nothing new starts and the round
   clock stops; resumed: the round gets its remaining time, via `GameStore.apply_resume`);
3. open round N, then dispatch one `check_box` chain per (team, service) of every team
   (NOP included: teams test exploits against it; it never scores) and enabled service,
   spread over the first part of the round;
4. at the round's end: revoke the round's unfinished chains, give every box without a
   result one (`round_plan.missing_result`) and close the round (idempotent), then open
   the next one (`round_plan.next_round_start`).

State lives in Redis, so a ticker restarted mid-game continues the current round
(a round is dispatched once: `GameStore.claim_dispatch`; closed once: `close_round`).
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import time

from scoreboard.check_requests import queue_name
from scoreboard.config import GameConfig
from scoreboard.store import GameStore
from scoreboard.types import GameState, Round, Status

from . import round_plan
from .celery_app import configure
from .chain import OLD_GETS
from .tasks import check_box

log = logging.getLogger(__name__)

# Seconds added to a chain's budget before Celery kills the worker process running it.
HARD_LIMIT_SLACK = 5.0


class Ticker:
    """The round clock of one game; `run` until the game is over or `stop` is set."""

    def __init__(self, config: GameConfig, store: GameStore | None = None, lease_seconds: float = 3.0,
                 poll: float = 0.2, rng: random.Random | None = None) -> None:
        self.config = config
        self.store = store or GameStore(config)
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
        """Hold the lease and drive rounds until the game is over or `stop` is set."""
        log.info("ticker %s for game %s: waiting for the lease", self.owner, self.config.game.name)
        try:
            while not self.stop.is_set():
                if not self.store.take_ticker_lease(self.owner, self.lease_seconds):
                    if self.active:
                        log.warning("lost the lease: standby")
                    self.active = False
                elif not self.active:
                    self.active = True
                    log.info("active (lease held by %s)", self.owner)
                if self.active and self.step(time.time()):
                    log.info("game over: ticker exits")
                    return
                self.stop.wait(self.poll)
        finally:
            self.store.release_ticker_lease(self.owner)

    def step(self, now: float) -> bool:
        """One look at the clock and the game state; True once the game is over."""
        game = self.config.game
        st = self.store.state()
        if st["state"] == GameState.NOT_STARTED:
            if not (game.start and now >= game.start.timestamp()):
                return False
            self.store.set_state(GameState.RUNNING, actor="ticker", reason="game.start reached")
            st = self.store.state()
        if game.end and now >= game.end.timestamp() and st["state"] != GameState.OVER:
            self.store.set_state(GameState.OVER, actor="ticker", reason="game.end reached")
            st["state"] = GameState.OVER
        if st["state"] == GameState.OVER:
            if st["round"] > st["closed_round"]:
                self.end_round(st["round"], now, (Status.CHECKER_ERROR, "game ended", "the game ended mid-round"))
            return True
        if st["state"] == GameState.PAUSED:
            return False
        if self.store.apply_resume(now):
            st = self.store.state()
        round_, start = st["round"], st["round_start"]
        if round_ == 0:
            self.open_round(1, now, now)
        elif st["closed_round"] < round_:
            if self.store.claim_dispatch(round_):  # a restarted ticker: the round never went out
                self.dispatch(round_, start + game.round_seconds, now)
            if now >= start + game.round_seconds:
                self.end_round(round_, now)
                self.open_round(round_ + 1, round_plan.next_round_start(start, game.round_seconds, now), now)
        else:  # closed, next not opened (a ticker died in between)
            self.open_round(round_ + 1, round_plan.next_round_start(start, game.round_seconds, now), now)
        return False

    # -- round work -----------------------------------------------------------------
    def open_round(self, round_: Round, start: float, now: float) -> None:
        """Open `round_` starting at `start` and dispatch its chains (each only once)."""
        if self.store.open_round(round_, start):
            log.info("round %d opened (started %.1fs ago)", round_, now - start)
        if self.store.claim_dispatch(round_):
            self.dispatch(round_, start + self.config.game.round_seconds, now)

    def dispatch(self, round_: Round, round_end: float, now: float, window: float | None = None) -> int:
        """Send one chain per (team, service) with random start delays (within `window`
        seconds; default `round_plan.spread_window`); return how many."""
        with check_box.app.producer_or_acquire() as producer:  # one connection for the whole round
            sent = self._send(round_, round_end, now, window, producer)
        self._sent[round_] = sent
        log.info("round %d: %d chains dispatched in %.2fs", round_, len(sent), time.time() - now)
        return len(sent)

    def _send(self, round_: Round, round_end: float, now: float, window: float | None, producer: object) -> list[str]:
        queue = queue_name(self.config)
        sent: list[str] = []
        for service in self.config.services:
            if not service.enabled:
                continue
            budget = min((3 + OLD_GETS) * service.checker.timeout, self.config.game.round_seconds)
            spread = window if window is not None else round_plan.spread_window(
                max(0.0, round_end - now), 3 * service.checker.timeout)
            delays = round_plan.start_offsets(len(self.config.teams), spread, self.rng)
            for team, delay in zip(self.config.teams, delays, strict=True):
                result = check_box.apply_async(
                    (round_, team.id, service.id, round_end, budget), countdown=delay, expires=round_end,
                    time_limit=budget + HARD_LIMIT_SLACK, queue=queue, producer=producer,
                )
                sent.append(result.id)
                if len(sent) % 200 == 0:  # a big game takes a while to send: keep the lease
                    self.store.take_ticker_lease(self.owner, self.lease_seconds)
        return sent

    def end_round(self, round_: Round, now: float,
                  missing: tuple[Status, str, str] | None = None) -> None:
        """Revoke the round's unfinished chains, fill boxes without a result, close the round."""
        sent = self._sent.pop(round_, [])
        if sent:
            check_box.app.control.revoke(sent)
        marks = self.store.chain_marks(round_)
        have = self.store.round_statuses(round_)
        filled = 0
        for team in self.config.teams:
            for service in self.config.services:
                box = (team.id, service.id)
                if not service.enabled or box in have:
                    continue
                status, public, private = missing or round_plan.missing_result(*marks.get(box, (0, 0.0)), now)
                filled += self.store.record_round_check(round_, team.id, service.id, status, public, private,
                                                        {"actions": [], "filled_by": "ticker"}, only_if_absent=True)
        closed = self.store.close_round(round_, now)
        log.info("round %d %s (%d boxes without a result)", round_, "closed" if closed else "was closed", filled)


def run_ticker(config: GameConfig, lease_seconds: float = 3.0) -> None:
    """Run a ticker until the game is over or SIGTERM / SIGINT (the `adrange ticker` command)."""
    import signal

    ticker = Ticker(config, lease_seconds=lease_seconds)

    def stop(signum: int, frame: object) -> None:
        ticker.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    ticker.run()
