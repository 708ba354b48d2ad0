"""Secrets an operator handles: a lost admin password is replaced from the shell, and a
game's state and logs (where a generated password is printed) are readable by the owner only."""

from __future__ import annotations

import stat
import subprocess
import sys

import redis
from werkzeug.security import check_password_hash, generate_password_hash

from deploy.supervisor import Program, RunLease, Supervisor
from scoreboard.config import parse_config
from scoreboard.store import GameStore
from scoreboard.web.sessions import SessionRecords
from tests.conftest import game_data
from tests.processes import ROOT, write_game


def adrange(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deploy.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)


def test_admin_password_is_replaced_once_shown_and_logs_everyone_out(redis_server, tmp_path):
    data = game_data(redis_server.url)
    config = parse_config(data)
    store = GameStore(config, redis.Redis.from_url(redis_server.url, decode_responses=True))
    store.init()
    store.set_web_value("admin_hash", generate_password_hash("the old one"))
    records = SessionRecords(store, 600)
    sid = records.create("admin")
    done = adrange("admin-password", "-c", str(write_game(tmp_path / "game.yml", data)))
    assert done.returncode == 0, done.stderr
    password = done.stdout.rsplit(":", 1)[1].strip()
    assert check_password_hash(store.web_value("admin_hash"), password)
    assert not check_password_hash(store.web_value("admin_hash"), "the old one")
    assert not records.check(sid, "admin")


def test_admin_password_set_in_the_game_file_is_not_overridden(redis_server, tmp_path):
    data = {**game_data(redis_server.url), "web": {"admin_password_hash": generate_password_hash("from the file")}}
    done = adrange("admin-password", "-c", str(write_game(tmp_path / "game.yml", data)))
    assert done.returncode == 1 and "web.admin_password_hash" in done.stderr


def test_state_and_log_folders_are_private(tmp_path):
    state = tmp_path / "run" / "game"
    RunLease(state)
    supervisor = Supervisor(state / "logs")
    supervisor.start(Program("echo", [sys.executable, "-c", "print('generated admin password: x')"], restart=False))
    supervisor.programs[0].proc.wait(30)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "logs").stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "logs" / "echo.log").stat().st_mode) == 0o600
