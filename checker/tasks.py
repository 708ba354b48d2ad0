"""Celery tasks of the round engine: `check_box` runs one box's chain and records its result.

A chain runs only while its round is the current, unclosed round of the same game run (a
late or redelivered message for an old round, or one queued before an admin reset, does
nothing). Its first delivery marks it started; a second delivery means the worker process
running the first was lost (``reject_on_worker_lost`` requeued it): that box gets
CHECKER_ERROR, which costs the team nothing. Results reach the store through
`GameStore.record_check`, which refuses a closed round. Every chain's duration, its
dispatch delay and its actions' durations feed the next rounds' plan and /metrics.
"""

from __future__ import annotations

import time
import traceback
from functools import lru_cache

from scoreboard.check_requests import CHECK_TASK, RERUN_TASK
from scoreboard.effective import EffectiveGame
from scoreboard.store import GameStore
from scoreboard.types import GameState, Round, ServiceID, Status, TeamID

from . import round_plan
from .celery_app import app, current_store
from .chain import NOT_CHECKED, ChainResult, run_chain

TASK_NAME = CHECK_TASK
# A chain that starts this many seconds after its release counts as late in the round's figures.
LATE_START = 1.0


@lru_cache(maxsize=1)
def current_game() -> EffectiveGame:
    """The game file plus admin edits, as this worker process sees it."""
    return EffectiveGame(current_store())


@app.task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def check_box(round_: Round, team: TeamID, service: ServiceID, round_end: float, run: str = "",
              released: float = 0.0) -> str:
    """Run the chain of (team, service) for `round_` of game run `run` by its deadline (the
    round's end, moved by any pause since `round_end` was sent, less the record margin);
    return the status name recorded ("stale" when the round is over or the game was reset
    since)."""
    store = current_store()
    state = store.state()
    if state["round"] != round_ or state["closed_round"] >= round_ or (run and state["run"] != run):
        return "stale"
    started = time.time()
    delay = max(0.0, started - released) if released else 0.0
    round_end = state["round_start"] + current_game().current().game.round_seconds if state["round_start"] \
        else round_end
    deadline = round_plan.chain_deadline(round_end)
    attempt = store.start_chain(round_, team, service, deadline)
    if attempt > 1:
        result = ChainResult(Status.CHECKER_ERROR, NOT_CHECKED,
                             f"the worker process running this chain was lost (delivery {attempt})")
    elif state["state"] == GameState.PAUSED:
        result = ChainResult(Status.CHECKER_ERROR, NOT_CHECKED, "the game is paused")
    else:
        result = _run_chain(store, round_, team, service, deadline)
        after = store.state()
        if after["state"] == GameState.PAUSED or after["paused_at"] > started:
            result = ChainResult(Status.CHECKER_ERROR, NOT_CHECKED,
                                 f"the game was paused while the chain ran (it found {result.status.name})",
                                 actions=result.actions, duration=result.duration, skipped=1)
    recorded = store.record_check(round_, team, service, result.status, result.public, result.private,
                                  {**result.detail(), "dispatch_delay": round(delay, 4)},
                                  only_if_absent=attempt > 1)
    cut = result.skipped > 0
    store.count_round(round_, started=1, late=int(delay > LATE_START), cut=int(cut))
    store.note_max_delay(round_, delay)
    if attempt == 1 and not cut:  # a chain cut short says nothing about how long a whole one takes
        spec = current_game().current().service(service)
        sample = round_plan.chain_sample(spec, delay, result.duration, len(result.actions))
        store.record_chain_timing(service, sample, delay, result.actions, round_plan.DURATION_SAMPLES)
    return result.status.name if recorded else "stale"


@app.task(name=RERUN_TASK, ignore_result=True)
def rerun_box(round_: Round, team: TeamID, service: ServiceID) -> str:
    """Admin's "check now": run the box's chain again in the open round; its result replaces
    the round's earlier one (a round already closed is left as counted)."""
    store = current_store()
    state = store.state()
    if state["round"] != round_ or state["closed_round"] >= round_:
        return "stale"
    round_end = state["round_start"] + current_game().current().game.round_seconds
    result = _run_chain(store, round_, team, service, round_plan.chain_deadline(round_end))
    recorded = store.record_check(round_, team, service, result.status, result.public, result.private,
                                  result.detail())
    return result.status.name if recorded else "stale"


def _run_chain(store: GameStore, round_: Round, team: TeamID, service: ServiceID, deadline: float) -> ChainResult:
    """One chain against the effective game (admin edits included); any exception in it
    becomes CHECKER_ERROR with the traceback."""
    started = time.monotonic()
    try:
        config = current_game().current()
        if team not in {t.id for t in config.teams} or not config.service(service).enabled:
            return ChainResult(Status.CHECKER_ERROR, NOT_CHECKED, "team or service disabled by an admin")
        return run_chain(config, store, round_, team, service, deadline)
    except Exception:
        return ChainResult(Status.CHECKER_ERROR, "checker error (platform)", traceback.format_exc(),
                           duration=time.monotonic() - started)

