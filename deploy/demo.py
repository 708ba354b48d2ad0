"""`adrange demo`: a whole live exercise on one machine.

Builds the images (offline), deploys four demo teams plus a NOP team as containers with
every sample challenge, starts Redis, the web board, TCP submission, the ticker, a Celery
worker and one attacker bot per team, and starts the game. One bot patches its boxes
mid-game, another takes a service down for a while. Ctrl-C stops every process and
removes the containers and networks.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from scoreboard.config import GameConfig, load_config
from scoreboard.store import GameStore
from scoreboard.types import GameState

from .redis_server import ensure_redis
from .supervisor import ROOT, Program, RunLease, Supervisor, adrange, state_dir

CHALLENGES = ROOT / "challenges"
TEAM_NAMES = ["蓝鲸 Blue Whale", "赤狐 Red Fox", "青龙 Azure Dragon", "白虎 White Tiger", "玄武 Black Tortoise",
              "朱雀 Vermilion Bird"]
BOT_PLANS = [  # (protocol, extra bot options) per demo team, cycled
    ("http", ["--patch-at-round", "4"]),
    ("faust", ["--down-service", "shop", "--down-at-round", "3", "--down-rounds", "2"]),
    ("forcad", []),
    ("http", []),
]


def challenge_services(round_seconds: float) -> list[dict[str, Any]]:
    """Service entries for every sample challenge: its folder, whose challenge.yml gives the
    rest; a demo with rounds too short for a checker's timeout gives it half a round."""
    services: list[dict[str, Any]] = []
    for folder in sorted(p for p in CHALLENGES.iterdir() if (p / "challenge.yml").exists()):
        entry: dict[str, Any] = {"challenge": str(folder)}
        timeout = (yaml.safe_load((folder / "challenge.yml").read_text()).get("checker") or {}).get("timeout")
        if timeout is not None and float(timeout) > round_seconds / 2:
            entry["checker"] = {"timeout": round_seconds / 2}
        services.append(entry)
    return services


def demo_game(teams: int, round_seconds: float, redis_port: int, web_port: int, submit_port: int = 31337,
              name: str = "demo", subnet: str = "10.77.0.0/16") -> dict[str, Any]:
    """The demo's game file: `teams` playing teams (ids 1..n) and a NOP team, hosted."""
    return {
        "game": {"name": name, "secret": "adrange-demo-secret-" + str(int(time.time())),
                 "round_seconds": round_seconds, "flag_lifetime": 5},
        "teams": [{"name": TEAM_NAMES[i % len(TEAM_NAMES)], "id": i + 1} for i in range(teams)]
        + [{"name": "NOP 靶机", "id": teams + 1, "nop": True}],
        "services": challenge_services(round_seconds),
        "submission": {"host": "127.0.0.1", "faust_port": submit_port, "ructf_port": submit_port + 1,
                       "forcad_port": submit_port + 2},
        "web": {"host": "127.0.0.1", "port": web_port, "language": "zh"},
        "deploy": {"mode": "hosted", "box_subnet": subnet},
        "redis_url": f"redis://:{secrets.token_urlsafe(18)}@127.0.0.1:{redis_port}/0",
    }


def platform_programs(config_path: Path) -> list[Program]:
    """The platform's own processes for a game file."""
    conf = ["-c", str(config_path)]
    return [
        Program("web", adrange("web", *conf)),
        Program("submit", adrange("submit-server", *conf)),
        Program("ticker", adrange("ticker", *conf)),
        Program("worker", adrange("worker", *conf)),
    ]


def bot_programs(config: GameConfig, config_path: Path) -> list[Program]:
    """One attacker bot per playing team, with the demo's plans."""
    programs = []
    for index, team in enumerate(config.playing_teams):
        protocol, extra = BOT_PLANS[index % len(BOT_PLANS)]
        programs.append(Program(f"bot-{team.id}", adrange("bot", "-c", str(config_path), "--team", str(team.id),
                                                          "--via", protocol, *extra)))
    return programs


def _show_access(config: GameConfig, console: Console) -> None:
    table = Table(title="demo teams")
    for column in ("id", "team", "target", "token"):
        table.add_column(column)
    for team in config.teams:
        table.add_row(str(team.id), team.name, str(team.address), "(NOP)" if team.nop else str(team.token))
    console.print(table)


def run_demo(teams: int = 4, round_seconds: float = 20, resume: bool = False, redis_port: int = 6390,
             web_port: int = 5000, submit_port: int = 31337, name: str = "demo", subnet: str = "10.77.0.0/16",
             console: Console | None = None) -> None:
    """Set up and run the demo game until Ctrl-C (or SIGTERM), then tear everything down."""
    from . import boxes, images
    from .engine import all_engines

    console = console or Console(stderr=True)
    work = state_dir(name)
    lease = RunLease(work)
    if not lease.acquire():
        raise RuntimeError(f"the {name!r} game is already running (pid {lease.holder()}); stop it first")
    config_path = work / "game.yml"
    if not (resume and config_path.exists()):
        game = demo_game(teams, round_seconds, redis_port, web_port, submit_port, name, subnet)
        config_path.write_text(yaml.safe_dump(game, allow_unicode=True, sort_keys=False))
    config = load_config(config_path)
    redis_server = ensure_redis(config.redis_url, work / "redis", console.log)
    supervisor = Supervisor(work / "logs", console)
    try:
        store = GameStore(config)
        if not resume:
            store.reset()
        store.init()
        images.build_base(all_engines(config), console=console)
        images.build_challenges(config, console=console)
        boxes.up(config, console=console)
        for program in platform_programs(config_path):
            supervisor.start(program)
        if store.state()["state"] == GameState.NOT_STARTED:
            store.set_state(GameState.RUNNING, actor="demo")
        for program in bot_programs(config, config_path):
            supervisor.start(program)
        _show_access(config, console)
        console.print(f"[bold green]board: http://127.0.0.1:{web_port}[/]  (logs in {work / 'logs'}; "
                      "Ctrl-C stops everything)")
        supervisor.wait()
    finally:
        console.log("stopping processes")
        supervisor.stop_all()
        try:
            boxes.down(config, console=console)
        except Exception as exc:  # leave no process behind even if the engine is gone
            console.log(f"[red]deploy down failed: {exc}")
        if redis_server:
            redis_server.stop()
        lease.release()
