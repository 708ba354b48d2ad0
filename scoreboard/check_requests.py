"""The scoreboard's side of the checker contract, without importing `checker`.

The round engine's Celery task names and a game's queue live here, so the web app can
ask the checker workers for work (the admin's "check now") through the game's broker,
and `checker` takes the same names from here: one place, dependencies pointing one way.
"""

from __future__ import annotations

from celery import Celery

from .config import GameConfig
from .types import Round, ServiceID, TeamID

CHECK_TASK = "adrange.check_box"
RERUN_TASK = "adrange.rerun_box"


def queue_name(config: GameConfig) -> str:
    """The queue a game's checker chains go to."""
    return f"adrange.{config.game.name}.checks"


def request_rerun(config: GameConfig, round_: Round, team: TeamID, service: ServiceID) -> None:
    """Queue a re-run of one box's chain in the open round for the game's checker workers."""
    client = Celery("adrange-scoreboard", broker=config.redis_url)
    try:
        client.send_task(RERUN_TASK, kwargs={"round_": round_, "team": team, "service": service},
                         queue=queue_name(config))
    finally:
        client.close()
