"""Start the real web process for a fresh game, and talk to it (HTTP, Socket.IO)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import socketio
from werkzeug.security import generate_password_hash

from deploy.redis_server import free_port
from scoreboard.config import GameConfig, parse_config
from scoreboard.store import GameStore
from tests.conftest import game_data
from tests.processes import Process, write_game

ADMIN_PASSWORD = "admin-pass-for-tests"
ADMIN_HASH = generate_password_hash(ADMIN_PASSWORD)


@dataclass
class WebGame:
    """A game, its store and its running web process."""

    config: GameConfig
    store: GameStore
    url: str
    process: Process
    data: dict[str, Any]
    path: Path

    def token(self, team: int) -> str:
        return self.config.team(team).token or ""

    def start_ticker(self) -> Process:
        """A real `adrange ticker` for this game: the clock's owner applies admin requests."""
        return Process(["ticker", "-c", str(self.path), "--lease", "1.5"], self.path.parent,
                       f"ticker-{self.path.stem}").start()

    def stop(self) -> None:
        self.process.stop()


def start_web(redis_url: str, work: Path, name: str = "web", admin_hash: str | None = ADMIN_HASH,
              prepare: Callable[[GameStore], None] | None = None,
              edit: Callable[[dict[str, Any]], None] | None = None, **kwargs: Any) -> WebGame:
    """A fresh game (file data changed by `edit`, state by `prepare`) served by `adrange web`."""
    web = kwargs.pop("web", {})
    data = game_data(redis_url, **kwargs)
    if edit:
        edit(data)
    data["web"] = {**({"admin_password_hash": admin_hash} if admin_hash else {}), **web}
    config = parse_config(data)
    store = GameStore(config, redis.Redis.from_url(redis_url, decode_responses=True))
    store.init()
    if prepare:
        prepare(store)
    port = free_port()
    path = write_game(work / f"{name}.yml", data)
    process = Process(["web", "-c", str(path), "--port", str(port)], work, name).start(("127.0.0.1", port))
    return WebGame(config, store, f"http://127.0.0.1:{port}", process, data, path)


@dataclass
class Spectator:
    """A python-socketio client that records every board event it gets."""

    url: str
    events: list[tuple[str, Any, float]] = field(default_factory=list)
    client: socketio.Client = field(default_factory=lambda: socketio.Client(reconnection=False))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def connect(self) -> Spectator:
        self.client.on("*", self._record)  # every event, whatever its name
        self.client.connect(self.url, transports=["websocket"], wait_timeout=10)
        return self

    def _record(self, name: str, data: Any = None) -> None:
        with self._lock:
            self.events.append((name, data, time.monotonic()))

    def of(self, name: str) -> list[Any]:
        with self._lock:
            return [data for event, data, _ in self.events if event == name]

    def wait_for(self, name: str, check: Callable[[Any], bool] = lambda _: True, timeout: float = 10) -> Any:
        """The first event of that name passing check (waits for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for data in self.of(name):
                if check(data):
                    return data
            time.sleep(0.02)
        raise AssertionError(f"no {name!r} event matched within {timeout}s; got {[e[0] for e in self.events]}")

    def close(self) -> None:
        self.client.disconnect()


def wait_until(check: Callable[[], Any], timeout: float = 10, what: str = "condition") -> Any:
    """Poll until check() is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout}s")
