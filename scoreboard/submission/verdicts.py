"""Verdicts and their texts, worded so farms that match substrings sort them right."""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass


class Verdict(enum.Enum):
    """What happened to one submitted flag."""

    ACCEPTED = "accepted"
    INVALID = "invalid"
    OWN = "own"
    OLD = "old"
    DUPLICATE = "duplicate"
    NOP = "nop"
    NOP_SUBMITTER = "nop_submitter"
    NOT_STARTED = "not_started"
    PAUSED = "paused"
    OVER = "over"
    SERVICE_DOWN = "service_down"
    RATE_LIMITED = "rate_limited"
    UNKNOWN_TEAM = "unknown_team"
    ERROR = "error"


ACCEPTED_TEXT = "Accepted. {points:g} flag points"
HACKERDOM_INVALID = "Denied: invalid or own flag"  # today's checksystem says this for both; some farms match only it
TEXTS = {
    Verdict.INVALID: f"Denied: invalid flag ({HACKERDOM_INVALID})",
    Verdict.OWN: f"Denied: flag is your own ({HACKERDOM_INVALID})",
    Verdict.OLD: "Denied: flag is too old",
    Verdict.DUPLICATE: "Denied: you already submitted this flag",
    Verdict.NOP: f"Denied: invalid flag (NOP team; {HACKERDOM_INVALID})",
    Verdict.NOP_SUBMITTER: "Denied: the NOP team cannot submit flags",
    Verdict.NOT_STARTED: "Game not started",
    Verdict.PAUSED: "Game paused, try again later",
    Verdict.OVER: "Game over",
    Verdict.SERVICE_DOWN: "Denied: your service is not up, try again later",
    Verdict.RATE_LIMITED: "Denied: too many flags, slow down and try again later",
    Verdict.UNKNOWN_TEAM: "Denied: your address belongs to no team",
    Verdict.ERROR: "Error: internal error, try again later",
}

# Denial codes returned by lua/submit.lua.
LUA_CODES = {
    "D": Verdict.DUPLICATE,
    "O": Verdict.OLD,
    "I": Verdict.INVALID,
    "N": Verdict.NOT_STARTED,
    "P": Verdict.PAUSED,
    "X": Verdict.OVER,
    "S": Verdict.SERVICE_DOWN,
}


@dataclass(frozen=True, slots=True)
class Result:
    """One flag's verdict and, when accepted, the points it moved."""

    verdict: Verdict
    points: float = 0.0

    @property
    def accepted(self) -> bool:
        return self.verdict is Verdict.ACCEPTED

    @property
    def text(self) -> str:
        """The verdict message without the flag."""
        if self.verdict is Verdict.ACCEPTED:
            return _accepted_text(self.points)
        return TEXTS[self.verdict]


@functools.lru_cache(maxsize=1024)
def _accepted_text(points: float) -> str:
    """ACCEPTED_TEXT for these points (remembered: it is said for every accepted flag)."""
    return ACCEPTED_TEXT.format(points=points)
