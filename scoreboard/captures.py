"""Traffic captures: where each box's pcap files live, what they are named, who may have them.

The capture process (deploy/captures.py) writes them; the web app (web/captures.py) hands
them out. Both follow the rules here, and only these:

- Layout under ``captures.dir`` (relative to the game file): ``<dir>/<game>/writing/`` holds
  the files tcpdump writes now (nobody's yet), ``<dir>/<game>/t<team>/`` a team's finished
  files. A file is finished when its tcpdump has exited: at the round's end, when the file
  reached ``captures.file_size``, or when its box stopped.
- Name: ``<game>_t<team>_<service>_r<round>_p<part>.pcap``, e.g.
  ``final_t3_notes_r00042_p00.pcap``; the service name has every character but letters,
  digits, ``.`` and ``-`` replaced by ``-`` (so the ``_`` fields parse from the right).
  Parts count from 0 within a round: a new part starts at the size cap and at a box restart.
- Release: a file of round R is the owning team's once round R + ``captures.delay_rounds``
  has begun, and every finished file is once the game is over. Admins see every file.
- Size: a file passing ``captures.file_size`` is finished and the box's next part begun
  (tcpdump -C, which counts whole millions of bytes: 64m is a new part after 67,000,000
  bytes; a file may pass that by one packet). Whenever a file is finished (and every 10 s)
  the oldest finished files of its team (by round, then part) are deleted until the team's
  files, those being written included, fit ``captures.team_size``; the files being written
  may pass it by less than one ``file_size`` per box until the next check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .config import GameConfig
from .types import GameState, Round, TeamID

WRITING = "writing"
NAME = re.compile(r"(?P<game>[A-Za-z0-9_.-]+)_t(?P<team>\d{1,4})_(?P<service>[A-Za-z0-9.-]{1,64})"
                  r"_r(?P<round>\d{5,})_p(?P<part>\d{2,})\.pcap")


@dataclass(frozen=True)
class CaptureFile:
    """One finished capture file of a team."""

    name: str
    team: TeamID
    service: str
    round: Round
    part: int
    size: int
    path: Path

    def as_json(self) -> dict[str, object]:
        """What the API lists for it."""
        return {"name": self.name, "team": self.team, "service": self.service, "round": self.round,
                "part": self.part, "bytes": self.size}


def service_word(service_name: str) -> str:
    """The service's name as it appears in a file name."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", service_name)[:64] or "-"


def file_name(game: str, team: TeamID, service_name: str, round_: Round, part: int) -> str:
    """The name of one capture file (see the module docstring)."""
    return f"{game}_t{team}_{service_word(service_name)}_r{round_:05d}_p{part:02d}.pcap"


def parse_name(name: str, game: str) -> tuple[TeamID, str, Round, int] | None:
    """(team, service, round, part) of a well-formed file name of this game, else None."""
    match = NAME.fullmatch(name)
    if not match or match["game"] != game:
        return None
    return int(match["team"]), match["service"], int(match["round"]), int(match["part"])


def game_dir(config: GameConfig) -> Path:
    """The game's capture folder."""
    return config.resolve(config.captures.dir) / config.game.name


def team_dir(config: GameConfig, team: TeamID) -> Path:
    """The folder of one team's finished files."""
    return game_dir(config) / f"t{team}"


def writing_dir(config: GameConfig) -> Path:
    """The folder tcpdump writes into."""
    return game_dir(config) / WRITING


def team_files(config: GameConfig, team: TeamID) -> list[CaptureFile]:
    """A team's finished files, oldest first (round, then part, then service)."""
    found = []
    folder = team_dir(config, team)
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return []
    for path in entries:
        parsed = parse_name(path.name, config.game.name)
        if parsed is None or parsed[0] != team:
            continue
        try:
            size = path.stat().st_size
        except FileNotFoundError:  # pruned meanwhile
            continue
        found.append(CaptureFile(path.name, team, parsed[1], parsed[2], parsed[3], size, path))
    return sorted(found, key=lambda f: (f.round, f.part, f.service))


def released(file_round: Round, state: dict, delay_rounds: int) -> bool:
    """True when a file of `file_round` is its team's, in a game whose `GameStore.state()` is `state`."""
    return state["state"] == GameState.OVER or state["round"] >= file_round + delay_rounds


def released_files(config: GameConfig, state: dict, team: TeamID) -> list[CaptureFile]:
    """A team's finished files it may have now."""
    return [f for f in team_files(config, team) if released(f.round, state, config.captures.delay_rounds)]
