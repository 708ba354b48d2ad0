"""The round clock's decisions, as pure functions: when rounds start, what a chain costs,
when each box's chain is released, and what a box that got no result in time is given.

Clock rules (the ticker applies them, tests prove them):

- Round N+1 starts at ``start(N) + round_seconds``: rounds follow wall-clock time; a
  pause of P seconds moves the round's start, and so its end, by exactly P
  (`GameStore.set_state` does it in the same step as the resume).
- A ticker that comes back late (restart, standby takeover) by less than `LATE_TOLERANCE`
  of a round keeps that cadence. Later than that, the missed time is lost like a pause:
  the overdue round is closed, the next round starts now with its full length, and missed
  rounds are neither replayed nor invented (round numbers stay consecutive, so flag
  lifetimes in rounds keep their meaning, and no team is judged on a round nobody checked).

Scheduling rules (blame: a team is charged only for what its target did):

- A chain's cost is `chain_actions` actions of the service's timeout each (`chain_budget`).
- Chains are released at random offsets in the round, all services and teams interleaved
  (`release_plan`), over a window that leaves room for the chain (`chain_room`: learned
  from its recent chains, the full budget until then).
- An action is started only when it can have its whole timeout before the chain's
  deadline (`can_start`); one that cannot is "not checked", never the team's fault. A
  CHECK or PUT that fails when the next action could not have started is not judged
  either (`chain._judged_unfairly`): success and failure are judged on the same terms. A
  chain that starts while the game is paused, or sees a pause while it runs, is not checked.
- A box without a result when its round closes is never the team's fault
  (`missing_result`): a target that failed in time has its result recorded by then.
"""

from __future__ import annotations

import math
import random

from scoreboard.config import RECORD_MARGIN, Service
from scoreboard.types import Status

# Share of a round a ticker may be late and still keep the round cadence.
LATE_TOLERANCE = 0.5
# Chains are released within at most this share of the round.
SPREAD_SHARE = 0.5
# Older flags read back per round (drawn from the still-valid ones).
OLD_GETS = 2
# Room planned for a chain: this many times the slowest of its recent chains, plus a timeout.
DURATION_SAFETY = 1.5
# Recent chain durations kept per service.
DURATION_SAMPLES = 50
# Seconds allowed between a release falling due and the ticker sending it.
START_SLACK = 0.5


def next_round_start(previous_start: float, round_seconds: float, now: float) -> float:
    """When the round after the one that started at `previous_start` starts (see module doc)."""
    due = previous_start + round_seconds
    return due if now - due < LATE_TOLERANCE * round_seconds else now


def chain_actions(service: Service) -> int:
    """Actions in one box's chain: CHECK, PUT, GET and `OLD_GETS` older GETs (CHECK only
    when flags are files the platform writes)."""
    return 1 if service.flag_mode == "file" else 3 + OLD_GETS


def chain_budget(service: Service) -> float:
    """Seconds a chain takes when every action uses its whole timeout."""
    return chain_actions(service) * service.checker.timeout


def chain_room(service: Service, recent: list[float]) -> float:
    """Seconds a chain needs from its release so that each of its actions can start with its
    whole timeout: the slowest recent chain (`chain_sample`, times `DURATION_SAFETY`) plus
    one timeout for the last action, at most the whole budget (the budget itself before any
    chain was measured); plus `START_SLACK` for the release itself."""
    budget = chain_budget(service)
    if not recent:
        return budget + START_SLACK
    return min(budget, DURATION_SAFETY * max(recent) + service.checker.timeout) + START_SLACK


def chain_sample(service: Service, delay: float, duration: float, actions_run: int) -> float:
    """What one finished chain says about the next: its dispatch delay plus its duration
    scaled to the service's whole chain (a first round has no older flags to read)."""
    return delay + duration * chain_actions(service) / max(1, actions_run)


def spread_window(round_seconds: float, room: float) -> float:
    """Seconds over which a round's chain releases are spread: at most `SPREAD_SHARE` of the
    round, and never so late that a chain needing `room` seconds would miss the end."""
    return max(0.0, min(SPREAD_SHARE * round_seconds, round_seconds - room - RECORD_MARGIN))


def release_plan(boxes: list[tuple[int, int, float]], rng: random.Random | None = None) -> list[tuple[float, int, int]]:
    """(offset, team, service) release times in a round, earliest first, for boxes given as
    (team, service, window): each box at a random offset in its service's window. Services
    and teams are interleaved by the draw; boxes with no window go in a random order."""
    rng = rng or random.Random()
    order = list(range(len(boxes)))
    rng.shuffle(order)
    plan = []
    for rank, index in enumerate(order):
        team, service, window = boxes[index]
        # The rank breaks ties (window 0) in the shuffled order, a microsecond apart.
        plan.append((rng.uniform(0, window) + rank * 1e-6, team, service))
    plan.sort()
    return plan


def can_start(timeout: float, now: float, deadline: float) -> bool:
    """An action may start only if its whole timeout fits before the chain's deadline."""
    return now + timeout <= deadline


def chain_deadline(round_end: float) -> float:
    """The last moment a chain's actions may run: the round's end less the record margin."""
    return round_end - RECORD_MARGIN


def missing_result(attempts: int, deadline: float, now: float) -> tuple[Status, str, str]:
    """Status, public and private message for a box without a result when its round ends.

    Always CHECKER_ERROR (not judged): every action the platform starts ends within its
    timeout before the chain's deadline and its result is recorded, a target's failure
    included, so a missing result is the platform's doing: no worker took the chain in
    time, the worker was lost, or it could not report.
    """
    public = "not checked this round (platform)"
    if attempts == 0:
        return Status.CHECKER_ERROR, public, "no worker started the chain this round (queue backlog or no worker)"
    if math.isfinite(deadline) and now <= deadline + RECORD_MARGIN:
        return Status.CHECKER_ERROR, public, f"chain still running at round end (attempt {attempts})"
    return Status.CHECKER_ERROR, public, "the worker running the chain was lost or could not report"
