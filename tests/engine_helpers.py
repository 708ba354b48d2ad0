"""Pieces the round-engine tests and benchmark share: game files, worker and ticker
processes, notes targets that misbehave on purpose, waiting on Redis."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis

from scoreboard.config import GameConfig, load_config
from scoreboard.store import GameStore
from tests.conftest import game_data
from tests.processes import Process, write_game
from tests.targets.notes_tcp import NotesServer

CHECKERS = Path(__file__).parent / "targets" / "checkers"
# Loopback addresses of these tests' targets, apart from other tests' 127.0.x.y.
ADDRESS_SCHEME = "127.77.{team}.1"


def checker(name: str, protocol: str = "native", timeout: float = 1.0, **extra: Any) -> dict[str, Any]:
    """A service's checker section for a file in tests/targets/checkers."""
    return {"protocol": protocol, "path": str(CHECKERS / name), "timeout": timeout, **extra}


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


def pool_children(pid: int) -> list[int]:
    """Child process ids of `pid` (a worker's prefork pool)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(x) for x in text.split()]


def round_events(store: GameStore) -> list[tuple[str, int]]:
    """("opened" | "closed", round) for every round event, in order."""
    return [(e["type"], int(e["r"])) for e in store.events("round")]


class ForgetfulNotes(NotesServer):
    """Works, but answers a flag's PUT with an id and keeps nothing: flag GETs fail (CORRUPT)."""

    def answer(self, line: str) -> str:
        if line.startswith("PUT ") and line.endswith("="):
            return "ID 0badc0de0000"
        return super().answer(line)


class AmnesiacNotes(NotesServer):
    """Keeps only the two newest notes (two services' chains share a test host and run at
    the same time): this round's flags are fine, older ones are lost (RECOVERING)."""

    def answer(self, line: str) -> str:
        if line.startswith("PUT "):
            newest = list(self.notes.items())[-1:]
            self.notes.clear()
            self.notes.update(newest)
        return super().answer(line)


@contextlib.contextmanager
def serving(servers: list[NotesServer]) -> Iterator[list[NotesServer]]:
    """Start targets, stop them afterwards."""
    for server in servers:
        server.start()
    try:
        yield servers
    finally:
        for server in servers:
            with contextlib.suppress(OSError, ValueError):
                server.stop()
