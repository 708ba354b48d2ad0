"""What each round status earns in each formula: the one table every scorer reads.

The round-close script (lua/close_round.lua, given `lua_rules()`), the replay
(replay.py), the formulas (faust.py, rating.py, awd.py), the submit script's "service
up" rule and the board's SLA percentage all take their numbers from `RULES`.

The blame rule behind it: a team is charged only for what its target did. A round whose
verdict is the platform's (CHECKER_ERROR) or that has no verdict at all (unchecked) is
*not judged*: it is scored as if it had not been checked, in every formula, and never
costs the team anything. In the formulas that rate a box by its rounds (faust SLA,
rating's SLA ratio) it is left out of the ratio: the box earns its credit per judged
round times the rounds it played (full credit before any judged round), so the round is
filled with the box's own average. In awd's zero-sum split of down points it pays nothing
and takes its share like an up box (the pot exists whatever the checker did). Either way
a DOWN round never scores better than one not judged.

| status        | field     | judged | up  | faust credit | rating credit | awd down points |
|---------------|-----------|--------|-----|--------------|---------------|-----------------|
| OK            | ok        | yes    | yes | 1            | 1             | takes a share   |
| RECOVERING    | rec       | yes    | yes | 1/2          | 1             | takes a share   |
| CORRUPT       | corrupt   | yes    | no  | 0            | 0             | pays D          |
| MUMBLE        | mumble    | yes    | no  | 0            | 0             | pays D          |
| DOWN          | down      | yes    | no  | 0            | 0             | pays D          |
| CHECKER_ERROR | error     | no     | -   | (box average)| (box average) | takes a share   |
| (unchecked)   | unchecked | no     | -   | (box average)| (box average) | takes a share   |

(awd: D is ``down_points``; a paying box loses D, shared equally by that round's boxes
that take a share.) "up" is what `require_service_up` asks of a submitter. Box counters
written at close: the status's field, ``rounds`` (closes the box took part in),
``counted`` (judged rounds), awd's ``dn`` and ``u:nd:nu``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from ..types import Status

AwdRole = Literal["share", "pay"]

# The close snapshot's code for a box that had no verdict when its round closed.
UNCHECKED = 0


@dataclass(frozen=True)
class StatusRule:
    """What one status means for scoring."""

    field: str
    judged: bool
    up: bool
    faust: Fraction
    rating: Fraction
    awd: AwdRole


RULES: dict[int, StatusRule] = {
    Status.OK: StatusRule("ok", judged=True, up=True, faust=Fraction(1), rating=Fraction(1), awd="share"),
    Status.RECOVERING: StatusRule("rec", judged=True, up=True, faust=Fraction(1, 2), rating=Fraction(1),
                                  awd="share"),
    Status.CORRUPT: StatusRule("corrupt", judged=True, up=False, faust=Fraction(0), rating=Fraction(0), awd="pay"),
    Status.MUMBLE: StatusRule("mumble", judged=True, up=False, faust=Fraction(0), rating=Fraction(0), awd="pay"),
    Status.DOWN: StatusRule("down", judged=True, up=False, faust=Fraction(0), rating=Fraction(0), awd="pay"),
    # Not judged: the credits are never read (the formulas leave these rounds out).
    Status.CHECKER_ERROR: StatusRule("error", judged=False, up=False, faust=Fraction(0), rating=Fraction(0),
                                     awd="share"),
    UNCHECKED: StatusRule("unchecked", judged=False, up=False, faust=Fraction(0), rating=Fraction(0),
                          awd="share"),
}

UP_CODES = tuple(code for code, rule in RULES.items() if rule.up)


def rule(code: int | str) -> StatusRule:
    """The rule of a status code (anything unknown is not judged, like a checker error)."""
    try:
        return RULES[int(code)]
    except (KeyError, ValueError):
        return RULES[Status.CHECKER_ERROR]


def lua_rules() -> str:
    """`RULES` as the close script reads them: "code=field:judged:awd_role ..."."""
    return " ".join(f"{code}={r.field}:{int(r.judged)}:{r.awd}" for code, r in RULES.items())


def judged_credit(counters: Mapping[str, int], formula: Literal["faust", "rating"]) -> Fraction:
    """Credit earned over the judged rounds (sum of each status's credit times its count)."""
    return sum((getattr(r, formula) * int(counters.get(r.field, 0)) for r in RULES.values() if r.judged),
               Fraction(0))


def sla_ratio(counters: Mapping[str, int], formula: Literal["faust", "rating"] = "rating") -> Fraction:
    """Credit per judged round (1 before any round was judged)."""
    counted = int(counters.get("counted", 0))
    if not counted:
        return Fraction(1)
    return judged_credit(counters, formula) / counted
