"""Pieces the round-engine tests and benchmark share: game files, worker and ticker
processes, notes targets that misbehave on purpose, waiting on Redis, what closed rounds
did to teams (`fairness`)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from scoreboard.config import GameConfig, load_config
from scoreboard.flags import FlagCodec, FlagError
from scoreboard.store import GameStore
from scoreboard.types import Status
from tests.conftest import game_data
from tests.processes import Process, write_game
from tests.targets.notes_tcp import NotesServer
from tests.targets.threaded import serving_all

CHECKERS = Path(__file__).parent / "targets" / "checkers"
# Loopback addresses of these tests' targets, apart from other tests' 127.0.x.y.
ADDRESS_SCHEME = "127.77.{team}.1"
# Statuses that cost a team something (scoreboard/scoring/policy.py).
COSTING = (Status.DOWN, Status.MUMBLE, Status.CORRUPT, Status.RECOVERING)
# Public texts of a CHECKER_ERROR that blame nobody, besides those naming the platform.
NEUTRAL_TEXTS = ("game ended",)


def checker(name: str, protocol: str = "native", timeout: float | None = 1.0, **extra: Any) -> dict[str, Any]:
    """A service's checker section for a file in tests/targets/checkers (timeout None: the
    game's default for its round length)."""
    spec = {"protocol": protocol, "path": str(CHECKERS / name), **extra}
    return spec if timeout is None else {**spec, "timeout": timeout}


def engine_game(redis_url: str, work: Path, teams: int, checkers: list[dict[str, Any]],
                round_seconds: float = 2, service: dict[str, Any] | None = None,
                address_scheme: str = ADDRESS_SCHEME, **game: Any) -> tuple[GameConfig, GameStore, Path]:
    """Write a game file (teams on `ADDRESS_SCHEME`, one service per checker section, each
    with the `service` fields added); return its config, an initialised store and the file's path."""
    data = game_data(redis_url, teams=teams, services=len(checkers), round_seconds=round_seconds, **game)
    for entry, spec in zip(data["services"], checkers, strict=True):
        entry.update(service or {}, checker=spec)
    data["deploy"] = {"address_scheme": address_scheme}
    path = write_game(work / f"{data['game']['name']}.yml", data)
    config = load_config(path)
    store = GameStore(config, redis.Redis.from_url(redis_url, decode_responses=True))
    store.init()
    return config, store, path


def start_worker(path: Path, work: Path, concurrency: int = 4, name: str = "worker") -> Process:
    """A real `adrange worker` process, returned once it is ready for tasks."""
    process = Process(["worker", "-c", str(path), "--concurrency", str(concurrency)], work, name).start()
    wait_until(lambda: "ready." in process.log_path.read_text(errors="replace"), 40,
               lambda: process.log_path.read_text(errors="replace")[-3000:])
    return process


def start_ticker(path: Path, work: Path, name: str = "ticker", lease: float = 1.5) -> Process:
    """A real `adrange ticker` process."""
    return Process(["ticker", "-c", str(path), "--lease", str(lease)], work, name).start()


def wait_until(predicate: Callable[[], Any], timeout: float, explain: Callable[[], str] | None = None,
               interval: float = 0.05) -> Any:
    """Poll until `predicate()` is truthy and return it; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not true after {timeout}s" + (f":\n{explain()}" if explain else ""))


def wait_closed(store: GameStore, round_: int, timeout: float) -> None:
    """Wait until `round_` is closed."""
    wait_until(lambda: store.state()["closed_round"] >= round_, timeout, lambda: str(store.state()))


def wait_checked_ok(store: GameStore, after: int, timeout: float, box: tuple[int, int] = (1, 1),
                    explain: Callable[[], str] | None = None) -> int:
    """Wait for the first round after `after` that closes with `box` checked OK; return it.
    (A worker just started may need a round or two: those are "not checked", never DOWN.)"""
    def checked() -> int | None:
        closed = store.state()["closed_round"]
        return next((r for r in range(after + 1, closed + 1) if store.round_statuses(r).get(box) == Status.OK), None)
    return wait_until(checked, timeout, explain)


def pool_children(pid: int) -> list[int]:
    """Child process ids of `pid` (a worker's prefork pool)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(x) for x in text.split()]


def round_events(store: GameStore) -> list[tuple[str, int]]:
    """("opened" | "closed", round) for every round event, in order."""
    return [(e["type"], int(e["r"])) for e in store.events("round")]


@dataclass
class Fairness:
    """What closed rounds did to their boxes, and the round engine's summed figures."""

    rounds: int = 0
    boxes: int = 0
    ok: int = 0
    unchecked: int = 0  # CHECKER_ERROR: not judged
    costed: list[str] = field(default_factory=list)  # a team-costing result, described
    blaming: list[str] = field(default_factory=list)  # a CHECKER_ERROR text that does not name the platform
    stats: dict[str, float] = field(default_factory=dict)  # `GameStore.round_stats`, summed (max_delay: max)

    @property
    def checked_share(self) -> float:
        """Share of the boxes that got a verdict (anything but CHECKER_ERROR)."""
        return 1 - self.unchecked / self.boxes if self.boxes else 0.0


def fairness(store: GameStore, last_round: int) -> Fairness:
    """Tally rounds 1..`last_round` (closed) of a game whose targets are all healthy."""
    tally = Fairness(rounds=last_round)
    for round_ in range(1, last_round + 1):
        for (team, service), record in sorted(store.check_details(round_).items()):
            status, public = Status(record["status"]), record["public"]
            where = f"round {round_} box {team}:{service}"
            tally.boxes += 1
            tally.ok += status == Status.OK
            if status in COSTING:
                tally.costed.append(f"{where} {status.name}: {public} | {record['private']}")
            elif status == Status.CHECKER_ERROR:
                tally.unchecked += 1
                if "platform" not in public and public not in NEUTRAL_TEXTS:
                    tally.blaming.append(f"{where}: {public!r}")
        for name, value in store.round_stats(round_).items():
            old = tally.stats.get(name, 0.0)
            tally.stats[name] = max(old, value) if name == "max_delay" else old + value
    return tally


class ForgetfulNotes(NotesServer):
    """Works, but answers a flag's PUT with an id and keeps nothing: flag GETs fail (CORRUPT)."""

    def answer(self, line: str) -> str:
        if line.startswith("PUT ") and line.endswith("="):
            return "ID 0badc0de0000"
        return super().answer(line)


class AmnesiacNotes(NotesServer):
    """Keeps only the newest round's flags: this round's are fine, older ones are lost
    (RECOVERING), whatever order the services' chains on this host run in."""

    def __init__(self, host: str, secret: str = "test-secret-0123456789") -> None:
        super().__init__(host)
        self.codec = FlagCodec(secret)
        self.round = 0

    def answer(self, line: str) -> str:
        if line.startswith("PUT "):
            try:
                round_ = self.codec.verify(line[4:].strip()).round
            except FlagError:
                round_ = self.round
            if round_ > self.round:
                self.notes.clear()
                self.round = round_
        return super().answer(line)


def serving(servers: list[NotesServer]) -> contextlib.AbstractContextManager[Sequence[NotesServer]]:
    """Start targets, stop them afterwards."""
    return serving_all(servers)
