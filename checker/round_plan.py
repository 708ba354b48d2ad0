"""The round clock's decisions, as pure functions: when rounds start, when chains start,
and what a box that got no result in time is given.

Clock rules (the ticker applies them, tests prove them):

- Round N+1 starts at ``start(N) + round_seconds``: rounds follow wall-clock time.
- A ticker that comes back late (restart, standby takeover) by less than `LATE_TOLERANCE`
  of a round keeps that cadence. Later than that, the missed time is lost like a pause:
  the overdue round is closed, the next round starts now with its full length, and missed
  rounds are neither replayed nor invented (round numbers stay consecutive, so flag
  lifetimes in rounds keep their meaning, and no team is judged on a round nobody checked).
- Chains start at random times spread over the first part of a round, so targets cannot
  tell checkers by timing; the spread leaves room for a whole chain before the round ends.
"""

from __future__ import annotations

import random

from scoreboard.types import Status

# Share of a round a ticker may be late and still keep the round cadence.
LATE_TOLERANCE = 0.5
# Chains start within at most this share of the round.
SPREAD_SHARE = 0.5
# Seconds past a chain's own deadline after which a missing result means a lost worker.
LOST_GRACE = 1.0


def next_round_start(previous_start: float, round_seconds: float, now: float) -> float:
    """When the round after the one that started at `previous_start` starts (see module doc)."""
    due = previous_start + round_seconds
    return due if now - due < LATE_TOLERANCE * round_seconds else now


def spread_window(round_seconds: float, chain_budget: float) -> float:
    """Seconds over which a round's chain starts are spread: at most `SPREAD_SHARE` of the
    round, and never so late that a chain using its whole `chain_budget` would miss the end."""
    margin = 0.05 * round_seconds
    return max(0.0, min(SPREAD_SHARE * round_seconds, round_seconds - chain_budget - margin))


def start_offsets(count: int, window: float, rng: random.Random | None = None) -> list[float]:
    """`count` random start delays (seconds) in ``[0, window]``."""
    rng = rng or random.Random()
    return [rng.uniform(0, window) for _ in range(count)]


def missing_result(attempts: int, deadline: float, now: float) -> tuple[Status, str, str]:
    """Status, public and private message for a box without a result when its round ends.

    Never started: no worker took it in time (the organizers' fault, CHECKER_ERROR).
    Started, its deadline not yet passed: the checks are still running: DOWN.
    Started, deadline passed long ago: a runner stops every action at its timeout, so the
    worker was lost: CHECKER_ERROR.
    """
    if attempts == 0:
        return Status.CHECKER_ERROR, "checker did not run", "no worker started the chain this round"
    if now <= deadline + LOST_GRACE:
        return Status.DOWN, "checker did not finish", f"chain still running at round end (attempt {attempts})"
    return Status.CHECKER_ERROR, "checker did not finish", "the worker running the chain was lost"
