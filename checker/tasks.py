"""Celery tasks of the round engine: `check_box` runs one box's chain and records its result.

A chain runs only while its round is the current, unclosed round (a late or redelivered
message for an old round does nothing). Its first delivery marks it started; a second
delivery means the worker process running the first was lost (``reject_on_worker_lost``
requeued it): that box gets CHECKER_ERROR, which costs the team nothing. Results reach
the store through `GameStore.record_round_check`, which refuses a closed round.
"""

from __future__ import annotations

import time
import traceback

from scoreboard.check_requests import CHECK_TASK, RERUN_TASK
from scoreboard.types import Round, ServiceID, Status, TeamID

from .celery_app import app, current_config, current_store
from .chain import ChainResult, run_chain

TASK_NAME = CHECK_TASK


@app.task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def check_box(round_: Round, team: TeamID, service: ServiceID, round_end: float, budget: float) -> str:
    """Run the chain of (team, service) for `round_`, to finish by `round_end` and within
    `budget` seconds; return the status name recorded ("stale" when the round is over)."""
    store = current_store()
    state = store.state()
    if state["round"] != round_ or state["closed_round"] >= round_:
        return "stale"
    deadline = min(round_end, time.time() + budget)
    attempt = store.start_chain(round_, team, service, deadline)
    if attempt > 1:
        result = ChainResult(Status.CHECKER_ERROR, "checker error",
                             f"the worker process running this chain was lost (delivery {attempt})")
    else:
        result = _run_chain(store, round_, team, service, deadline)
    recorded = store.record_round_check(round_, team, service, result.status, result.public, result.private,
                                        result.detail(), only_if_absent=attempt > 1)
    return result.status.name if recorded else "stale"


@app.task(name=RERUN_TASK, ignore_result=True)
def rerun_box(round_: Round, team: TeamID, service: ServiceID) -> str:
    """Admin's "check now": run the box's chain again in the open round; its result replaces
    the round's earlier one (a round already closed is left as counted)."""
    store = current_store()
    state = store.state()
    if state["round"] != round_ or state["closed_round"] >= round_:
        return "stale"
    deadline = state["round_start"] + current_config().game.round_seconds
    result = _run_chain(store, round_, team, service, deadline)
    recorded = store.record_round_check(round_, team, service, result.status, result.public, result.private,
                                        result.detail())
    return result.status.name if recorded else "stale"


def _run_chain(store, round_: Round, team: TeamID, service: ServiceID, deadline: float) -> ChainResult:
    """One chain; any exception in it becomes CHECKER_ERROR with the traceback."""
    started = time.monotonic()
    try:
        return run_chain(current_config(), store, round_, team, service, deadline)
    except Exception:
        return ChainResult(Status.CHECKER_ERROR, "checker error", traceback.format_exc(),
                           duration=time.monotonic() - started)
