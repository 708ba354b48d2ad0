"""The organizer's shell commands: `adrange hash-password`, `adrange teams`, `adrange game`."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

from werkzeug.security import check_password_hash

from scoreboard import access
from scoreboard.types import GameState
from tests.engine_helpers import checker, engine_game
from tests.processes import ROOT


def adrange(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deploy.cli", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, timeout=60)


def test_hash_password_prints_a_hash_the_admin_login_accepts():
    done = adrange("hash-password", "--stdin", stdin="correct horse battery\n")
    assert done.returncode == 0, done.stderr
    assert check_password_hash(done.stdout.strip(), "correct horse battery")
    short = adrange("hash-password", "--stdin", stdin="abc\n")
    assert short.returncode != 0 and "at least 8 characters" in short.stderr


def test_teams_lists_tokens_addresses_and_ssh_logins_with_admin_edits(redis_server, tmp_path):
    config, store, path = engine_game(redis_server.url, tmp_path, teams=2, checkers=[checker("notes_checker.py")],
                                      name="sheet")
    store.set_override("team", 2, {"name": "Renamed Crew"}, "admin")
    rows = json.loads(adrange("teams", "-c", str(path), "--format", "json").stdout)
    assert [r["id"] for r in rows] == [t.id for t in config.teams]
    assert rows[1]["name"] == "Renamed Crew" and rows[0]["token"] == config.teams[0].token
    assert rows[-1]["nop"] is True
    table = list(csv.DictReader(io.StringIO(adrange("teams", "-c", str(path), "--format", "csv").stdout)))
    assert table[0]["token"] == config.teams[0].token and table[0]["address"] == config.teams[0].address
    hosted = path.with_name("hosted.yml")
    hosted.write_text(path.read_text().replace("address_scheme:", "mode: hosted\n  address_scheme:"))
    rows = json.loads(adrange("teams", "-c", str(hosted), "--format", "json").stdout)
    assert rows[0]["ssh_user"] == access.SSH_USER
    assert rows[0]["ssh_password"] == access.team_password(config, config.teams[0])
    assert rows[0]["ssh"] == f"{config.services[0].name}={config.teams[0].address}:2201"


def test_game_commands_queue_requests_for_the_ticker_and_refuse_what_the_state_forbids(redis_server, tmp_path):
    config, store, path = engine_game(redis_server.url, tmp_path, teams=2, checkers=[checker("notes_checker.py")],
                                      name="control")
    status = json.loads(adrange("game", "status", "-c", str(path)).stdout)
    assert status["state"] == "not_started" and status["ticker"] is None
    done = adrange("game", "pause", "-c", str(path))
    assert done.returncode != 0 and "cannot pause the game: it is not_started" in done.stderr
    done = adrange("game", "start", "-c", str(path))
    assert done.returncode == 0 and "no ticker runs now" in done.stdout
    assert [r["action"] for r in store.pending_state_requests()] == ["start"]
    store.set_state(GameState.OVER)
    done = adrange("game", "reopen", "-c", str(path), "--stop-at", "2001-01-01T00:00")
    assert done.returncode != 0 and "must be in the future" in done.stderr
    assert adrange("game", "reopen", "-c", str(path)).returncode == 0
    assert store.schedule() == {"stop": None}


def test_teams_table_never_cuts_a_token_to_fit_the_terminal(redis_server, tmp_path):
    config, _, path = engine_game(redis_server.url, tmp_path, teams=3, checkers=[checker("notes_checker.py")],
                                  name="narrow")
    shown = subprocess.run([sys.executable, "-m", "deploy.cli", "teams", "-c", str(path)], capture_output=True,
                           text=True, cwd=ROOT, timeout=60, env={**os.environ, "COLUMNS": "60"}).stdout
    assert all(team.token in shown for team in config.teams)
