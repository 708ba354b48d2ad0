"""A game's record: the effective game, its event streams and the live per-round history.

Read from a live store (a game file whose Redis answers) or from a folder written by
`adrange export`. Either way the same pieces come out, so the replay and the report never
care where the game came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..config import ConfigError, GameConfig, load_config, parse_config
from ..effective import Overrides, apply_overrides
from ..store import GameStore
from ..types import Round, TeamID

STREAMS = ("capture", "round", "check", "admin")  # the flag stream is not needed (and holds flag texts)


class RecordError(Exception):
    """A game record that cannot be read; the message names the file and the problem."""


@dataclass
class GameRecord:
    """Everything the replay and the report read about one game."""

    config: GameConfig  # the game as scored: the game file plus the admins' edits
    events: dict[str, list[dict[str, str]]]  # stream -> events in stream order, ids under "_id"
    history: dict[Round, dict[TeamID, tuple[float, int]]]  # live totals and ranks after each closed round
    ranking: list[dict[str, Any]]  # the final ranking rows as admins saw them (BoardData.ranking)
    first_bloods: dict[int, dict[str, Any]]  # service -> its first capture, as the live board kept it
    origin: Literal["redis", "folder"]  # where it was read from: live Redis or an export folder
    where: str  # the game's name (redis) or the folder (folder)

    @property
    def source(self) -> str:
        """Where the record was read from, for messages."""
        return f"game {self.where} in live Redis" if self.origin == "redis" else f"export folder {self.where}"


def _standings(raw: dict[str, Any]) -> tuple[dict[Round, dict[TeamID, tuple[float, int]]], dict[int, dict[str, Any]]]:
    """The history and first bloods of a scoreboard.json-shaped dict, with int keys."""
    history = {int(r): {int(team): (float(v["total"]), int(v["rank"])) for team, v in per_team.items()}
               for r, per_team in raw.get("history", {}).items()}
    bloods = {int(s): record for s, record in raw.get("first_bloods", {}).items()}
    return history, bloods


def from_store(store: GameStore) -> GameRecord:
    """The record of a game in live Redis (read once, in stream order)."""
    from deploy.export import scoreboard

    standings = scoreboard(store)
    config = apply_overrides(store.config, store.overrides())
    history, bloods = _standings(standings)
    events = {stream: list(store.events(stream)) for stream in STREAMS}
    return GameRecord(config, events, history, standings["ranking"], bloods, "redis", config.game.name)


def overrides_from_events(admin: list[dict[str, str]]) -> Overrides:
    """The admins' team and service edits as the admin stream logged them, merged in order
    (what `GameStore.overrides` held at the end)."""
    merged: Overrides = {}
    for event in admin:
        if event.get("type") == "override":
            key = (json.loads(event["kind"]), int(json.loads(event["id"])))
            merged.setdefault(key, {}).update(json.loads(event["values"]))
    return merged


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordError(f"{path}: missing (is {path.parent} a folder written by `adrange export`?)") from None
    except ValueError as exc:
        raise RecordError(f"{path}: not JSON ({exc})") from None


def _read_events(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        raise RecordError(f"{path}: missing (is {path.parent.parent} a folder written by `adrange export`?)")
    events = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError as exc:
                raise RecordError(f"{path} line {number}: not JSON ({exc})") from None
            if not isinstance(event, dict) or "_id" not in event:
                raise RecordError(f"{path} line {number}: not an event (an object with its stream id under _id)")
            events.append(event)
    return events


def _config_from_setup(board: dict[str, Any], source: Path) -> GameConfig:
    """The game as scored, rebuilt from scoreboard.json's ``setup`` (no secrets needed: the
    replay never makes or checks a flag)."""
    setup = board.get("setup")
    if not isinstance(setup, dict):
        raise RecordError(f"{source}: no 'setup' (written by an older `adrange export`): "
                          "give the game file too, with -c game.yml")
    data = {
        "game": {"name": board["game"], "secret": "replay-only-not-a-secret", "round_seconds": setup["round_seconds"],
                 "flag_lifetime": setup.get("flag_lifetime", 5), "scoring": setup["scoring"]},
        "teams": [{"id": t["id"], "name": t["name"], "nop": t.get("nop", False)} for t in setup["teams"]],
        "services": [{"id": s["id"], "name": s["name"], "enabled": s.get("enabled", True),
                      "checker": {"protocol": "eno", "url": "http://127.0.0.1/"}} for s in setup["services"]],
        "web": {"language": setup.get("language", "zh")},
    }
    try:
        return parse_config(data, f"{source} (setup)")
    except ConfigError as exc:
        raise RecordError(str(exc)) from None


def from_folder(folder: Path, config_path: Path | None = None) -> GameRecord:
    """The record in an `adrange export` folder; `config_path`: the game file, for exports
    without ``setup`` (the admins' edits are then taken from the admin stream)."""
    board = _read_json(folder / "scoreboard.json")
    events = {stream: _read_events(folder / "events" / f"{stream}.jsonl") for stream in STREAMS}
    if config_path is not None:
        try:
            config = apply_overrides(load_config(config_path), overrides_from_events(events["admin"]))
        except ConfigError as exc:
            raise RecordError(str(exc)) from None
        if config.game.name != board.get("game"):
            raise RecordError(f"{config_path}: game.name is {config.game.name!r} but {folder}/scoreboard.json "
                              f"is the record of {board.get('game')!r}")
    else:
        config = _config_from_setup(board, folder / "scoreboard.json")
    history, bloods = _standings(board)
    return GameRecord(config, events, history, board.get("ranking", []), bloods, "folder", str(folder))


def load(game: Path, config_path: Path | None = None) -> GameRecord:
    """A record from an export folder (`game` a folder) or live Redis (`game` a game file)."""
    if game.is_dir():
        return from_folder(game, config_path)
    if not game.exists():
        raise RecordError(f"{game}: no such game file or export folder")
    try:
        config = load_config(game)
    except ConfigError as exc:
        raise RecordError(str(exc)) from None
    import redis

    from ..store import connect, without_password

    store = GameStore(config, connect(config.redis_url))
    try:
        store.redis.ping()
    except redis.RedisError as exc:
        raise RecordError(f"Redis at {without_password(config.redis_url)} does not answer: {exc} "
                          "(give the game's export folder instead)") from None
    return from_store(store)
