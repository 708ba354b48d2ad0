"""`adrange export`: a game's record in one folder, for the organizers' archive, CTFtime and
later tools (replay, reports).

Files written (all UTF-8 JSON; event streams as JSON Lines, one event per line in stream
order, with its stream id under ``_id``):

- ``scoreboard.json``: the game, its state and last round, the final ranking as admins see
  it (not frozen), every team's total and rank after each closed round, first bloods, and
  ``setup``: what scored the game (scoring parameters, round length, every team and service
  of the game as admins left it), so that `adrange replay` and `adrange report` can rebuild
  the game from the folder alone;
- ``ctftime.json``: the CTFtime scoreboard feed (``tasks``, ``standings``);
- ``events/<stream>.jsonl`` for capture, round, check, flag and admin (flag texts are
  included: the archive is the organizers', not for publishing as is).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scoreboard.ranking import ctftime_feed
from scoreboard.store import GameStore
from scoreboard.web.board_data import BoardData

STREAMS = ("capture", "round", "check", "flag", "admin")


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def scoreboard(store: GameStore) -> dict[str, Any]:
    """The final standings and their history, from the live counters (admin edits applied)."""
    board = BoardData(store.config, store)
    config, state = board.config(), store.state()
    history = store.history(config)
    return {
        "game": config.game.name, "formula": config.game.scoring.formula, "exported_at": time.time(),
        "state": state["state"].value, "round": state["round"], "closed_round": state["closed_round"],
        "teams": [{"id": t.id, "name": t.name} for t in config.playing_teams],
        "services": [{"id": s.id, "name": s.name} for s in config.services if s.enabled],
        "ranking": board.ranking(public=False),
        "history": {str(r): {str(team): {"total": total, "rank": place} for team, (total, place) in per_team.items()}
                    for r, per_team in sorted(history.items())},
        "first_bloods": {str(s): record for s, record in sorted(store.first_bloods().items())},
        "setup": {"scoring": config.game.scoring.model_dump(), "round_seconds": config.game.round_seconds,
                  "flag_lifetime": config.game.flag_lifetime, "language": config.web.language,
                  "teams": [{"id": t.id, "name": t.name, "nop": t.nop} for t in config.teams],
                  "services": [{"id": s.id, "name": s.name, "enabled": s.enabled} for s in config.services]},
    }


def export(store: GameStore, folder: Path, progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Write the game's record into `folder` (created); return events written per stream."""
    events = folder / "events"
    events.mkdir(parents=True, exist_ok=True)
    standings = scoreboard(store)
    _write_json(folder / "scoreboard.json", standings)
    _write_json(folder / "ctftime.json", ctftime_feed([s["name"] for s in standings["services"]],
                                                      standings["ranking"]))
    written = {}
    for stream in STREAMS:
        count = 0
        with (events / f"{stream}.jsonl").open("w", encoding="utf-8") as out:
            for event in store.events(stream):
                out.write(json.dumps(event, ensure_ascii=False) + "\n")
                count += 1
        written[stream] = count
        if progress:
            progress(stream, count)
    return written
