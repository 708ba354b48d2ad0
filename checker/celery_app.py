"""The Celery app of the round engine: broker and results on the game's Redis.

The game file comes from ``ADRANGE_CONFIG`` (set by ``adrange worker -c game.yml``, or by
hand for ``celery -A checker.celery_app worker``). Each game has its own queue, so several
games can share one Redis. Tasks are acknowledged late and rejected (requeued) when a
worker process dies, so a killed worker's chain is not lost silently: its next delivery
notices the earlier attempt and records CHECKER_ERROR (see `checker.tasks`).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from functools import lru_cache

from celery import Celery
from celery.signals import worker_shutting_down

from scoreboard.check_requests import queue_name
from scoreboard.config import GameConfig, load_config
from scoreboard.store import GameStore

CONFIG_ENV = "ADRANGE_CONFIG"
log = logging.getLogger("adrange.worker")

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


def run_worker(celery: Celery, argv: list[str], again: list[str]) -> None:
    """Run a worker until it is asked to stop (SIGTERM, SIGINT).

    Celery gives up in some broker-loss races (kombu's Redis transport raises an
    AttributeError when a late ack meets the dropped connection: "Unrecoverable error",
    exit 0). A worker that stops without being asked waits for Redis and starts again as a
    fresh process image (`again`, same pid), so a Redis restart never leaves it dead."""
    asked: list[object] = []
    worker_shutting_down.connect(lambda **kw: asked.append(kw.get("sig")), weak=False)
    try:
        celery.worker_main(argv)
    except SystemExit as exc:
        if asked:
            raise
        code = exc.code
    else:
        code = 0
    if asked:
        return
    from scoreboard.store import wait_for_redis

    print(f"worker stopped by itself (exit {code}), not asked to: starting again once Redis answers",
          file=sys.stderr, flush=True)
    time.sleep(1.0)
    wait_for_redis(current_config().redis_url, "worker")
    os.execv(again[0], again)


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
