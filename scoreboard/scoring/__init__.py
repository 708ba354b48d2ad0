"""Scoring: one module per formula behind the `Formula` protocol (see base.py).

Live state keeps only integer counters per (team, service), moved atomically in Redis;
every score is a pure function of those counters, so a recompute from the event streams
(replay.py) that rebuilds the same counters gives the same scores to the last digit.
"""

from .base import Formula, Parts, ScoreContext, formula_for

__all__ = ["Formula", "Parts", "ScoreContext", "formula_for"]
