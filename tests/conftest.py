"""Shared fixtures: a private redis-server for the session and game configs per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from deploy.redis_server import RedisServer
from scoreboard.config import GameConfig, parse_config
from scoreboard.store import GameStore

pytest_plugins = ["tests.conftest_docker"]
_games = itertools.count(1)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.cleanup()


def game_data(redis_url: str, teams: int = 4, services: int = 2, **game: Any) -> dict[str, Any]:
    """A game file's data: `teams` playing teams on 127.0.T.0/24 plus a NOP team (id teams+1)."""
    return {
        "game": {"name": f"test{next(_games)}", "secret": "test-secret-0123456789", "round_seconds": 5,
                 "flag_lifetime": 3, **game},
        "teams": [{"name": f"team{i}", "id": i} for i in range(1, teams + 1)]
        + [{"name": "nop", "id": teams + 1, "nop": True}],
        "services": [{"name": f"svc{i}", "id": i, "checker": {"protocol": "native", "path": "x.py"}}
                     for i in range(1, services + 1)],
        "redis_url": redis_url,
    }


@pytest.fixture
def processes() -> Iterator[list[Any]]:
    """Platform processes a test starts (`tests.processes.Process`), killed afterwards."""
    from checker.sandbox import stop_servers

    started: list[Any] = []
    yield started
    for process in started:
        process.kill()
    stop_servers()  # the workers' checker fork servers outlive them by design


@pytest.fixture
def make_game(redis_server: RedisServer):
    """Factory: a fresh game (own key prefix) with its store initialised."""

    def make(**kwargs: Any) -> tuple[GameConfig, GameStore]:
        config = parse_config(game_data(redis_server.url, **kwargs))
        store = GameStore(config, redis.Redis.from_url(redis_server.url, decode_responses=True))
        store.init()
        return config, store

    return make
