"""A small game played through the store's real scripts, for the replay and report tests.

Four teams, two services, six rounds. What happens (the tests check the report's reading):
team1 exploits svc1 from round 1 (first blood, on team2) against teams 2, 3 and 4; team3
fixes svc1 after round 2 (its flags of round 3 on are no longer stolen, while team2's and
team4's still are); team2 exploits svc2 from round 2 against teams 1 and 3; team4 steals an
older flag (round 3's, in round 4); flags are also handed in after round 5 closed, before
round 6 opened. Checks: some boxes DOWN or MUMBLE, one CHECKER_ERROR, one never checked.
The game is paused and resumed in round 3, an announcement goes out in round 2, and an
admin renames team4 in round 4. The game ends after round 6.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from deploy.redis_server import free_port
from scoreboard.config import GameConfig, parse_config
from scoreboard.store import GameStore
from scoreboard.submission.sync import Submissions
from scoreboard.types import GameState, Status
from tests.conftest import game_data
from tests.game_helpers import flag_of, start_at_round
from tests.processes import ROOT, Process, write_game
from tests.web_helpers import wait_until

TEAMS, SERVICES, ROUNDS = 4, 2, 6
RENAMED = "改名 $x$ <script>window.pwned=1</script>"  # Chinese, mathtext and markup: shown as text


def _status(round_: int, team: int, service: int) -> Status | None:
    if (round_, team, service) == (4, 1, 1):
        return Status.CHECKER_ERROR
    if (round_, team, service) == (2, 4, 2):
        return None  # never checked
    if (team + service + round_) % 5 == 0:
        return Status.DOWN
    if (team * service + round_) % 7 == 0:
        return Status.MUMBLE
    return Status.OK


def _steals(round_: int) -> list[tuple[int, list[tuple[int, int, int]]]]:
    """(attacker, [(victim, service, flag round)]) handed in during `round_`."""
    svc1 = [(v, 1, round_) for v in (2, 3, 4) if not (v == 3 and round_ >= 3)]  # team3 fixed svc1 after round 2
    svc2 = [(v, 2, round_) for v in (1, 3)] if round_ >= 2 else []
    out = [(1, svc1), (2, svc2)]
    if round_ == 4:
        out.append((4, [(1, 2, 3)]))  # an older flag, still valid
    if round_ >= 3:
        out.append((3, [(2, 1, round_)]))  # team3 steals svc1 from team2 too: svc1 stays exploited
    return out


def play_game(store: GameStore) -> None:
    """Play the game described above through the store's scripts (as the ticker, the
    workers, the submit server and the admin panel would)."""
    subs = Submissions(store)
    start_at_round(store, 1)
    for round_ in range(1, ROUNDS + 1):
        if round_ > 1:
            store.open_round(round_)
        for attacker, targets in _steals(round_):
            flags = [flag_of(store, fr, victim, service) for victim, service, fr in targets]
            results = subs.submit(attacker, flags)
            assert all(r.accepted for r in results), results
        if round_ == 2:
            store.add_announcement("svc2 的检查器已更新 <b>not bold</b>", "admin")
        if round_ == 3:
            store.set_state(GameState.PAUSED, actor="admin", reason="pause")
            time.sleep(0.05)
            store.set_state(GameState.RUNNING, actor="admin", reason="resume")
        if round_ == 4:
            store.set_override("team", 4, {"name": RENAMED}, "admin")
        for team in range(1, TEAMS + 1):
            for service in range(1, SERVICES + 1):
                status = _status(round_, team, service)
                if status is not None:
                    store.record_check(round_, team, service, status, public=f"r{round_} {status.name}")
        time.sleep(0.01)  # distinct milliseconds around the close (a tie is ordered by rule, see timeline)
        store.close_round(round_)
        if round_ == 5:  # flags handed in after the close, before the next round opens
            time.sleep(0.01)
            assert all(r.accepted for r in subs.submit(2, [flag_of(store, 5, 4, 2)]))
        time.sleep(0.01)
    store.set_state(GameState.OVER, actor="ticker", reason="scheduled end reached")


@dataclass
class Recorded:
    """A played game: its file, config, live store, and its `adrange export` folder."""

    path: Path
    config: GameConfig
    store: GameStore
    export: Path


def adrange(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run an `adrange` command to its end."""
    return subprocess.run([sys.executable, "-m", "deploy.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def record_game(redis_url: str, work: Path, formula: str = "faust", first_bloods: bool = False) -> Recorded:
    """Play the game (scored by `formula`) and export it with the real `adrange export`;
    `first_bloods`: let a real `adrange web` (its board follower) record the first bloods first,
    as it does during a game."""
    work.mkdir(parents=True, exist_ok=True)
    data = game_data(redis_url, teams=TEAMS, services=SERVICES, scoring={"formula": formula})
    config = parse_config(data)
    store = GameStore(config, redis.Redis.from_url(redis_url, decode_responses=True))
    store.init()
    play_game(store)
    path = write_game(work / "game.yml", data)
    if first_bloods:
        port = free_port()
        web = Process(["web", "-c", str(path), "--port", str(port)], work, "web").start(("127.0.0.1", port))
        try:
            wait_until(lambda: len(store.first_bloods()) == SERVICES, timeout=30, what="first bloods recorded")
        finally:
            web.stop()
    export = work / "export"
    done = adrange("export", "-c", str(path), "-o", str(export))
    assert done.returncode == 0, done.stderr
    return Recorded(path, config, store, export)
