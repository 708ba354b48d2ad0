"""Recompute every box's counters from the event streams, in plain Python.

This mirrors lua/submit.lua and lua/close_round.lua step by step. Scores computed from
the replayed counters must equal the live ones exactly; the tests hold both to that.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from ..config import Scoring
from .base import Counters
from .policy import rule
from .rating import delta_table, points_moved

Box = tuple[int, int]


class Replay:
    """Counters rebuilt from capture and round-close events fed in stream order."""

    def __init__(self, scoring: Scoring) -> None:
        self.scoring = scoring
        self.counters: dict[Box, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._capturers: dict[str, list[str]] = {}
        self._robbers: dict[tuple[str, str, str], list[str]] = {}
        self._table = delta_table(scoring.rating)

    def _box(self, team: str, service: str) -> defaultdict[str, int]:
        return self.counters[(int(team), int(service))]

    def capture(self, event: Mapping[str, str]) -> None:
        """Apply one accepted flag (fields a, v, s, r, fr, f of ev:capture)."""
        att, vic, svc, flag = event["a"], event["v"], event["s"], event["f"]
        attacker, victim = self._box(att, svc), self._box(vic, svc)
        previous = self._capturers.setdefault(flag, [])
        previous.append(att)
        c = len(previous)
        formula = self.scoring.formula
        if formula != "faust":  # faust derives these from its histograms
            attacker["captured"] += 1
            if c == 1:
                victim["lost"] += 1
        if formula == "faust":
            self._shift(previous, att, svc, "a:", c)
            attacker[f"a:{c}"] += 1
            if c > 1:
                victim[f"d:{c - 1}"] -= 1
            victim[f"d:{c}"] += 1
        elif formula == "rating":
            initial = self.scoring.rating.initial
            att_pts, vic_pts = attacker.get("pts", initial), victim.get("pts", initial)
            delta = points_moved(self._table, att_pts, vic_pts)
            attacker["pts"], victim["pts"] = att_pts + delta, vic_pts - delta
        else:
            robbers = self._robbers.setdefault((event.get("fr", event["r"]), vic, svc), [])
            if att not in robbers:
                robbers.append(att)
                k = len(robbers)
                self._shift(robbers, att, svc, "w:", k)
                attacker[f"w:{k}"] += 1
                if k == 1:
                    victim["robbed"] += 1

    def _shift(self, members: list[str], skip: str, service: str, prefix: str, k: int) -> None:
        for member in members:
            if member != skip:
                box = self._box(member, service)
                box[f"{prefix}{k - 1}"] -= 1
                box[f"{prefix}{k}"] += 1

    def close(self, event: Mapping[str, str]) -> None:
        """Apply one round close (field boxes: "team:service=code ...", code 0 unchecked)."""
        ups: dict[str, list[defaultdict[str, int]]] = defaultdict(list)
        payers: dict[str, int] = defaultdict(int)
        for item in event.get("boxes", "").split():
            box, code = item.split("=")
            team, service = box.split(":")
            counters = self._box(team, service)
            status = rule(code)
            counters[status.field] += 1
            counters["rounds"] += 1
            if status.judged:
                counters["counted"] += 1
            ups[service]
            if status.awd == "share":
                ups[service].append(counters)
            elif status.awd == "pay":
                payers[service] += 1
                counters["dn"] += 1
        for service, boxes in ups.items():
            nd, nu = payers[service], len(boxes)
            if nd and nu:
                for counters in boxes:
                    counters[f"u:{nd}:{nu}"] += 1

    def result(self) -> dict[Box, Counters]:
        """The rebuilt counters, zero fields left out."""
        return {box: normalize(c) for box, c in self.counters.items() if normalize(c)}


def normalize(counters: Mapping[str, int | str]) -> Counters:
    """Counters as ints with zero fields dropped, for comparing live and replayed state."""
    return {k: int(v) for k, v in counters.items() if int(v) != 0}


def replay(scoring: Scoring, captures: Iterable[Mapping[str, str]],
           rounds: Iterable[Mapping[str, str]]) -> dict[Box, Counters]:
    """Rebuild all counters from the capture stream and the round stream."""
    rebuilt = Replay(scoring)
    for event in captures:
        rebuilt.capture(event)
    for event in rounds:
        if event.get("type") == "closed":
            rebuilt.close(event)
    return rebuilt.result()
