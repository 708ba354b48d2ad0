"""The Celery app of the round engine: broker and results on the game's Redis.

The game file comes from ``ADRANGE_CONFIG`` (set by ``adrange worker -c game.yml``, or by
hand for ``celery -A checker.celery_app worker``). Each game has its own queue, so several
games can share one Redis. Tasks are acknowledged late and rejected (requeued) when a
worker process dies, so a killed worker's chain is not lost silently: its next delivery
notices the earlier attempt and records CHECKER_ERROR (see `checker.tasks`).
"""

from __future__ import annotations

import os
from functools import lru_cache

from celery import Celery

from scoreboard.check_requests import queue_name
from scoreboard.config import GameConfig, load_config
from scoreboard.store import GameStore

CONFIG_ENV = "ADRANGE_CONFIG"

app = Celery("adrange", include=["checker.tasks"])


def configure(config: GameConfig) -> Celery:
    """Point the app at the game's Redis and queue; return it."""
    round_seconds = config.game.round_seconds
    app.conf.update(
        broker_url=config.redis_url,
        result_backend=config.redis_url,
        result_expires=max(300, int(round_seconds * 10)),
        task_default_queue=queue_name(config),
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=False,
        worker_prefetch_multiplier=1,
        worker_pool="prefork",
        # A native checker that leaks or hogs memory costs its pool process, not the worker:
        # a child above this (KiB) is replaced after its task.
        worker_max_memory_per_child=512 * 1024,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        # A message not acknowledged in time is delivered again. Chains never outlive their
        # round, so two rounds (plus slack) is long enough and keeps lost work bounded.
        broker_transport_options={"visibility_timeout": int(2 * round_seconds + 60)},
        result_backend_transport_options={"visibility_timeout": int(2 * round_seconds + 60)},
    )
    return app


@lru_cache(maxsize=1)
def current_config() -> GameConfig:
    """The game file named by ``ADRANGE_CONFIG`` (read once per process)."""
    path = os.environ.get(CONFIG_ENV)
    if not path:
        raise RuntimeError(f"set {CONFIG_ENV} to the game file (adrange worker -c game.yml does it)")
    return load_config(path)


@lru_cache(maxsize=1)
def current_store() -> GameStore:
    """A store for the current game, one per process (prefork children each open their own)."""
    return GameStore(current_config())


if os.environ.get(CONFIG_ENV):
    configure(current_config())
