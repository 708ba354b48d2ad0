"""Shared pieces of the benchmarks: a private Redis, a game file, figures printed alike."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from deploy.redis_server import RedisServer
from scoreboard.config import GameConfig, parse_config
from scoreboard.store import GameStore
from tests.conftest import game_data


def bench(name: str, value: float, unit: str) -> None:
    """Print one headline figure in the comparable `BENCH name value unit` form."""
    shown = f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
    print(f"BENCH {name} {shown} {unit}", flush=True)


@contextmanager
def bench_game(teams: int, services: int, **game: Any) -> Iterator[tuple[GameConfig, GameStore, Path]]:
    """A private redis-server (AOF on) and an initialised game; yields config, store, work dir."""
    work = Path(tempfile.mkdtemp(prefix="adrange-bench-"))
    server = RedisServer(work / "redis").start() if (work / "redis").mkdir() is None else None
    assert server is not None
    try:
        data = game_data(server.url, teams=teams, services=services, **game)
        config = parse_config(data)
        store = GameStore(config, redis.Redis.from_url(server.url, decode_responses=True))
        store.init()
        yield config, store, work
    finally:
        server.cleanup()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
