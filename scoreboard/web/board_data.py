"""What the board shows, built from the store: ranking, matrix, round, attacks, history.

`BoardData` reads live state for the truth (admins) and, once the game passes
``game.freeze_at``, a frozen view for the public: the same pieces rebuilt from the
event streams up to the freeze time (computed once per process, the past does not move).
Every text a team or checker wrote leaves here as plain data; templates and the board
script escape it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..config import GameConfig
from ..effective import EffectiveGame
from ..ranking import TeamRow, rank
from ..scoring.base import flag_counts
from ..scoring.policy import sla_ratio
from ..scoring.replay import replay
from ..store import GameStore
from ..types import Round, ServiceID, Status, TeamID

RECENT_ATTACKS = 30
HISTORY_TEAMS = 8
Box = tuple[TeamID, ServiceID]


def stream_time(event_id: str) -> float:
    """Seconds since the epoch of a stream entry id ('1700000000123-0')."""
    return int(event_id.split("-")[0]) / 1000


def attack_of(event: dict[str, str]) -> dict[str, Any]:
    """The public part of one ev:capture entry (no flag text)."""
    return {"a": int(event["a"]), "v": int(event["v"]), "s": int(event["s"]), "r": int(event["r"]),
            "t": float(event.get("t") or stream_time(event["_id"]))}


def sla_percent(counters: dict[str, int]) -> float | None:
    """Share of judged rounds a box was up, in percent (None before any judged round)."""
    if not counters.get("counted", 0):
        return None
    return round(float(100 * sla_ratio(counters, "rating")), 1)


class BoardData:
    """Builds board pieces for one game from its store."""

    def __init__(self, config: GameConfig, store: GameStore, game: EffectiveGame | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.base = config
        self.store = store
        self.clock = clock  # the board's now: the wall clock, or a replay's position
        self.game = game or EffectiveGame(store)
        self._frozen: dict[str, Any] | None = None
        self._public: tuple[float, dict[str, Any]] = (0.0, {})
        self._public_lock = threading.Lock()

    # -- the game as admins changed it --------------------------------------------------
    def config(self) -> GameConfig:
        """The game file with admin overrides applied (the shared `EffectiveGame`)."""
        return self.game.current()

    # -- freeze ---------------------------------------------------------------------------
    def freeze_time(self) -> float | None:
        """When the public board freezes (epoch seconds), if the game sets it."""
        freeze = self.base.game.freeze_at
        return freeze.timestamp() if freeze else None

    def frozen(self, now: float | None = None) -> bool:
        """True once the public board no longer changes."""
        freeze = self.freeze_time()
        return freeze is not None and (now or time.time()) >= freeze

    def _events_before(self, stream: str, limit: float) -> Iterator[dict[str, str]]:
        for event in self.store.events(stream):
            if stream_time(event["_id"]) >= limit:
                return
            yield event

    def _frozen_view(self) -> dict[str, Any]:
        """Counters, statuses, attacks, first bloods and history as they were at the freeze."""
        if self._frozen is None:
            limit = self.freeze_time() or 0.0
            captures = list(self._events_before("capture", limit))
            rounds = list(self._events_before("round", limit))
            statuses: dict[Box, dict[str, Any]] = {}
            for check in self._events_before("check", limit):
                statuses[(int(check["team"]), int(check["service"]))] = {
                    "status": int(check["status"]), "public": check.get("public", "")}
            bloods: dict[int, dict[str, Any]] = {}
            for event in captures:
                bloods.setdefault(int(event["s"]), attack_of(event))
            closed = [int(e["r"]) for e in rounds if e.get("type") == "closed"]
            self._frozen = {
                "counters": replay(self.base.game.scoring, captures, rounds),
                "checks": statuses,
                "attacks": [attack_of(e) for e in reversed(captures[-RECENT_ATTACKS:])],
                "first_bloods": bloods,
                "history": {r: v for r, v in self.store.history(self.config()).items() if r in set(closed)},
            }
        return self._frozen

    # -- pieces ---------------------------------------------------------------------------
    def round_info(self) -> dict[str, Any]:
        """Round number, state and timing, with the server's clock for the countdown."""
        state = self.store.state()
        seconds = self.base.game.round_seconds
        now = self.clock()
        remaining = None
        if state["round"] and state["round_start"]:
            end = state["round_start"] + seconds
            remaining = max(0.0, end - (state["paused_at"] if state["state"] == "paused" else now))
        return {"round": state["round"], "state": state["state"].value, "round_start": state["round_start"],
                "round_seconds": seconds, "closed_round": state["closed_round"], "remaining": remaining,
                "server_time": now}

    def ranking(self, public: bool = True) -> list[dict[str, Any]]:
        """Ranking rows: rank, team, name, total, atk, def, sla, captured, lost, change, services."""
        config = self.config()
        if public and self.frozen():
            view = self._frozen_view()
            counters, history = view["counters"], view["history"]
        else:
            counters, history = self.store.counters(config), self.store.history(config)
        rows = rank(config, counters)
        previous = _previous_ranks(history)
        return [_row_json(row, counters, previous) for row in rows]

    def matrix(self, public: bool = True) -> dict[str, dict[str, Any]]:
        """'team:service' -> status name and public message (private one too when not public)."""
        if public and self.frozen():
            checks = self._frozen_view()["checks"]
        else:
            round_ = self.store.state()["round"]
            checks = {}
            for r in (round_ - 1, round_):
                if r > 0:
                    checks.update(self.store.check_details(r))
            live = self.store.live_statuses()
            for box, status in live.items():
                checks.setdefault(box, {"status": int(status), "public": ""})
        out = {}
        for (team, service), record in checks.items():
            cell = {"status": Status(int(record["status"])).name, "message": record.get("public", ""),
                    "round": record.get("round")}
            if not public:
                cell["private"] = record.get("private", "")
            out[f"{team}:{service}"] = cell
        return out

    def attacks(self, public: bool = True) -> list[dict[str, Any]]:
        """The newest accepted captures, newest first."""
        if public and self.frozen():
            return self._frozen_view()["attacks"]
        return [attack_of(e) for e in self.store.recent_events("capture", RECENT_ATTACKS)]

    def first_bloods(self, public: bool = True) -> dict[str, dict[str, Any]]:
        """Service id (as text) -> its first capture."""
        bloods = self._frozen_view()["first_bloods"] if public and self.frozen() else self.store.first_bloods()
        return {str(s): v for s, v in bloods.items()}

    def history(self, ranking: list[dict[str, Any]], public: bool = True) -> dict[str, Any]:
        """Totals per closed round for the leading teams, for the score chart."""
        history = self._frozen_view()["history"] if public and self.frozen() else self.store.history(self.config())
        rounds = sorted(history)
        series = []
        for row in ranking[:HISTORY_TEAMS]:
            totals = [history[r].get(row["team"], (None, 0))[0] for r in rounds]
            series.append({"team": row["team"], "name": row["name"], "totals": totals})
        return {"rounds": rounds, "series": series}

    def snapshot(self, public: bool = True) -> dict[str, Any]:
        """The whole board, as sent on connect and by /api/scoreboard."""
        config = self.config()
        ranking = self.ranking(public)
        return {
            "game": config.game.name,
            "language": config.web.language,
            "frozen": public and self.frozen(),
            "round": self.round_info(),
            "teams": [{"id": t.id, "name": t.name, "address": t.address} for t in config.playing_teams],
            "services": [{"id": s.id, "name": s.name} for s in config.services if s.enabled],
            "ranking": ranking,
            "matrix": self.matrix(public),
            "attacks": self.attacks(public),
            "first_bloods": self.first_bloods(public),
            "announcements": self.store.announcements(),
            "history": self.history(ranking, public),
        }

    def public_snapshot(self, max_age: float = 0.5) -> dict[str, Any]:
        """The public board, built at most once per `max_age` seconds however many
        spectators connect at once (they wait for the one build instead of each asking Redis)."""
        with self._public_lock:
            built, board = self._public
            if time.monotonic() - built > max_age or not board:
                board = self.snapshot(public=True)
                self._public = (time.monotonic(), board)
            return board


def _previous_ranks(history: dict[Round, dict[TeamID, tuple[float, int]]]) -> dict[TeamID, int]:
    """Ranks after the second-to-last kept round (the last one is the current standing)."""
    rounds = sorted(history)
    if len(rounds) < 2:
        return {}
    return {team: value[1] for team, value in history[rounds[-2]].items()}


def _row_json(row: TeamRow, counters: dict[Box, dict[str, int]], previous: dict[TeamID, int]) -> dict[str, Any]:
    services = {}
    for service_id, parts in row.services.items():
        box = counters.get((row.team, service_id), {})
        stolen, lost = flag_counts(box)
        services[str(service_id)] = {"total": round(parts.total, 2), "stolen": stolen, "lost": lost,
                                     "sla": sla_percent(box)}
    before = previous.get(row.team)
    return {"rank": row.rank, "team": row.team, "name": row.name, "total": round(row.total, 2),
            "atk": round(row.atk, 2), "def": round(row.defense, 2), "sla": round(row.sla, 2),
            "captured": row.captured, "lost": row.lost, "change": (before - row.rank) if before else 0,
            "services": services}
