"""The game's event streams merged in the order they happened, and the store as it stood
after any prefix of them.

Order: by the stream ids' millisecond; within one millisecond (ids of different streams
cannot be compared beyond it) by the round an event belongs to, which the scripts make
exact: a round's checks and captures come after its opening and before its close (a
closed round takes no result; the ticker closes round N before it opens N+1), admin
events first. One case stays open: a capture made between round N's close and round
N+1's opening within the close's very millisecond is counted before the close.

`PastStore` answers what `BoardData` reads from a `GameStore` (state, counters, history,
checks, recent captures, first bloods, announcements) from the events applied so far,
with the round-close and capture rules of `scoring.replay.Replay`, so the real board code
builds the replayed board.
"""

from __future__ import annotations

import bisect
import collections
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..config import GameConfig
from ..ranking import rank
from ..scoring.replay import Replay
from ..types import GameState, Round, ServiceID, Status, TeamID
from ..web.board_data import RECENT_ATTACKS, BoardData, attack_of, stream_time
from .record import GameRecord

Box = tuple[TeamID, ServiceID]
History = dict[Round, dict[TeamID, tuple[float, int]]]


@dataclass(frozen=True)
class Step:
    """One event of the merged history."""

    t: float  # seconds since the epoch (its stream id's time)
    stream: str
    event: Mapping[str, str]


def _order(stream: str, event: Mapping[str, str]) -> tuple[int, float, int, int]:
    """Sort key: millisecond, then the round the event belongs to (see the module's docstring)."""
    milliseconds, sequence = (int(x) for x in event["_id"].split("-"))
    if stream == "round":
        level = 2 * int(event["r"]) + (1 if event.get("type") == "closed" else 0)
    elif stream in ("capture", "check"):
        level = 2 * int(event["r"]) + 0.5
    else:
        level = -1
    return milliseconds, level, ("admin", "round", "check", "capture").index(stream), sequence


def merge(events: Mapping[str, list[dict[str, str]]]) -> list[Step]:
    """All events of the capture, round, check and admin streams in the order they happened."""
    keyed = [(_order(stream, event), stream, event) for stream, items in events.items()
             if stream in ("capture", "round", "check", "admin") for event in items]
    keyed.sort(key=lambda item: item[0])
    return [Step(stream_time(event["_id"]), stream, event) for _, stream, event in keyed]


class PastStore:
    """The game's store as it stood after the steps applied so far (read by `BoardData`)."""

    def __init__(self, config: GameConfig) -> None:
        self.config = config
        self.replay = Replay(config.game.scoring)
        self.closed: History = {}
        self._checks: dict[Round, dict[Box, dict[str, Any]]] = collections.defaultdict(dict)
        self._live: dict[Box, Status] = {}
        self._captures: collections.deque[dict[str, str]] = collections.deque(maxlen=RECENT_ATTACKS)
        self._bloods: dict[ServiceID, dict[str, Any]] = {}
        self._new_blood: ServiceID | None = None
        self._news: list[dict[str, Any]] = []
        self._state = {"state": GameState.NOT_STARTED, "round": 0, "round_start": 0.0, "closed_round": 0,
                       "paused_at": 0.0, "run": "replay"}
        self.clock = 0.0  # the time of the last step applied
        self.applied = 0  # how many steps of its timeline were applied

    def apply(self, step: Step) -> None:
        """Apply one event as the live scripts did."""
        event, state = step.event, self._state
        self.clock = step.t
        self.applied += 1
        self._new_blood = None
        if step.stream == "capture":
            self.replay.capture(event)
            self._captures.append(dict(event))
            service = int(event["s"])
            if service not in self._bloods:
                self._bloods[service] = attack_of(dict(event))
                self._new_blood = service
        elif step.stream == "check":
            box = (int(event["team"]), int(event["service"]))
            status = Status(int(event["status"]))
            self._checks[int(event["r"])][box] = {"status": int(status), "public": event.get("public", ""),
                                                  "round": int(event["r"])}
            self._live[box] = status
        elif step.stream == "round":
            round_ = int(event["r"])
            if event.get("type") == "opened":
                state.update(round=round_, round_start=float(event["t"]))
            elif event.get("type") == "closed":
                self.replay.close(event)
                state["closed_round"] = round_
                self.closed[round_] = {row.team: (row.total, row.rank) for row in rank(self.config, self.counters())}
        elif step.stream == "admin":
            kind = event.get("type")
            if kind == "state":
                new, at = GameState(event["to"]), float(event.get("t") or step.t)
                if new == GameState.PAUSED:
                    state["paused_at"] = at
                elif state["state"] == GameState.PAUSED and new == GameState.RUNNING and state["round"]:
                    state["round_start"] += max(0.0, at - state["paused_at"])
                state["state"] = new
            elif kind == "announcement":
                self._news.append({"text": json.loads(event.get("text", '""')), "t": float(event.get("t") or step.t),
                                   "actor": event.get("actor", "")})

    # -- what BoardData reads from a GameStore ---------------------------------------------------
    def state(self) -> dict[str, Any]:
        return dict(self._state)

    def counters(self, config: GameConfig | None = None) -> dict[Box, dict[str, int]]:
        return self.replay.result()

    def history(self, config: GameConfig | None = None) -> History:
        return dict(self.closed)

    def check_details(self, round_: Round) -> dict[Box, dict[str, Any]]:
        return dict(self._checks.get(round_, {}))

    def live_statuses(self) -> dict[Box, Status]:
        return dict(self._live)

    def recent_events(self, stream: str, count: int = 30) -> list[dict[str, str]]:
        return list(reversed(self._captures))[:count] if stream == "capture" else []

    def first_bloods(self) -> dict[ServiceID, dict[str, Any]]:
        return dict(self._bloods)

    def set_first_blood(self, service: ServiceID, record: dict[str, Any]) -> bool:
        """True when the capture just applied was its service's first (the live emitter's
        question to Redis)."""
        return self._new_blood == service

    def announcements(self) -> list[dict[str, Any]]:
        return list(self._news)


class _Game:
    """The effective game as `BoardData` asks for it (it never changes in a replay)."""

    def __init__(self, config: GameConfig) -> None:
        self.config = config

    def current(self) -> GameConfig:
        return self.config


class PastBoard(BoardData):
    """The board's pieces built from a `PastStore`, at the time `clock()` (default: its last step).

    The public view of the truth, never frozen (the freeze hid the end of the game from the
    players during the game; afterwards everyone may see it)."""

    def __init__(self, config: GameConfig, past: PastStore, clock: Callable[[], float] | None = None) -> None:
        unfrozen = config.model_copy(update={"game": config.game.model_copy(update={"freeze_at": None})})
        super().__init__(unfrozen, past, _Game(config), clock or (lambda: past.clock))  # type: ignore[arg-type]
        self.past = past


class Timeline:
    """A game's merged steps, with where each round opened and closed."""

    def __init__(self, record: GameRecord) -> None:
        self.record = record
        self.config = record.config
        self.steps = merge(record.events)
        self.times = [step.t for step in self.steps]
        self.opened: dict[Round, int] = {}  # round -> index of its opening step
        self.closes: dict[Round, int] = {}  # round -> index just after its close step
        for index, step in enumerate(self.steps):
            if step.stream == "round":
                if step.event.get("type") == "opened":
                    self.opened.setdefault(int(step.event["r"]), index)
                elif step.event.get("type") == "closed":
                    self.closes[int(step.event["r"])] = index + 1
        self._final: PastStore | None = None

    @property
    def start(self) -> float:
        return self.times[0] if self.times else 0.0

    @property
    def end(self) -> float:
        return self.times[-1] if self.times else 0.0

    def store_at(self, index: int, past: PastStore | None = None) -> PastStore:
        """The store after the first `index` steps (continuing `past` when it is behind)."""
        if past is None or past.applied > index:
            past = PastStore(self.config)
        for step in self.steps[past.applied:index]:
            past.apply(step)
        return past

    def index_at(self, t: float) -> int:
        """How many steps happened at or before time `t`."""
        return bisect.bisect_right(self.times, t)

    def final(self) -> PastStore:
        """The store after every step (computed once)."""
        if self._final is None:
            self._final = self.store_at(len(self.steps))
        return self._final

    def history(self) -> History:
        """Totals and ranks after each closed round, replayed."""
        return self.final().history()


def differences(timeline: Timeline) -> list[str]:
    """Where the replayed round-by-round totals and ranks differ from the live history
    (empty: equal for every round, to the last digit)."""
    live, replayed = timeline.record.history, timeline.history()
    found = []
    for round_ in sorted(set(live) | set(replayed)):
        if round_ not in replayed:
            found.append(f"round {round_}: in the live history, never closed in the event streams")
        elif round_ not in live:
            found.append(f"round {round_}: closed in the event streams, not in the live history")
        elif live[round_] != replayed[round_]:
            for team in sorted(set(live[round_]) | set(replayed[round_])):
                if live[round_].get(team) != replayed[round_].get(team):
                    found.append(f"round {round_}, team {team}: live (total, rank) {live[round_].get(team)}, "
                                 f"replayed {replayed[round_].get(team)}")
    return found
