"""Real-world CLI checkers, as organizers write them (checklib or gornilo from PyPI, requests,
bs4), against a notes web app, each in its own environment (built offline from a fetched
wheelhouse) and its sandbox, as the round engine runs them."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from checker.runner import run_action, run_service_action
from scoreboard.config import CheckerSpec, GameConfig, Service, parse_config
from scoreboard.types import GameState, Status
from tests.conftest import game_data
from tests.targets.realworld import CHECKERS, HERE
from tests.targets.realworld.notes_web import NotesWeb, serving_notes_web

HOST = "127.80.0.1"
FLAG = "R" * 31 + "="


@pytest.fixture(scope="module")
def game() -> Iterator[GameConfig]:
    """A game of both real-world checkers (service 1 checklib, 2 gornilo), their environments
    built by the platform, offline from a wheelhouse fetched from the registry."""
    from checker.envs import build_env, fetch
    from checker.sandbox import stop_servers

    data = game_data("redis://127.0.0.1:1/0", teams=1, services=len(CHECKERS), round_seconds=30)
    for entry, name in zip(data["services"], CHECKERS, strict=True):
        entry["checker"] = {"protocol": "cli", "path": str(HERE / name / "checker.py"), "timeout": 10}
    config = parse_config(data)
    wheels = Path(tempfile.mkdtemp(prefix="adrange-wheels-"))
    try:
        fetch(config, wheels)
        for service in config.services:
            build_env(config, service, wheels)
        yield config
    finally:
        stop_servers(config.game.name)
        shutil.rmtree(wheels, ignore_errors=True)


@pytest.fixture(params=[1, 2], ids=CHECKERS)
def service(request: pytest.FixtureRequest, game: GameConfig) -> Service:
    return game.service(request.param)


@pytest.fixture
def web() -> Iterator[NotesWeb]:
    with serving_notes_web(HOST) as (server,):
        yield server


def act(game: GameConfig, service: Service, action: str, *args: object):
    """One action in the service's sandbox, as the round engine runs it."""
    return run_service_action(game, service, action, HOST, *args)


def put_flag(game: GameConfig, service: Service) -> str:
    """PUT `FLAG` and return the flag id the checker gave."""
    put = act(game, service, "put", "seed", FLAG, 1)
    assert put.status == Status.OK, put
    assert put.flag_id
    return put.flag_id


def test_healthy_target_is_ok_through_check_put_and_get(game, service, web: NotesWeb):
    check = act(game, service, "check")
    assert check.status == Status.OK, check
    assert f"as adrange-chk{service.id}" in check.command
    flag_id = put_flag(game, service)
    assert [note.body for note in web.notes.values() if not note.public] == [FLAG]
    got = act(game, service, "get", flag_id, FLAG, 1)
    assert got.status == Status.OK, got


def test_target_that_loses_notes_is_corrupt(game, service, web: NotesWeb):
    flag_id = put_flag(game, service)
    web.mode = "forgetful"
    assert act(game, service, "get", flag_id, FLAG, 1).status == Status.CORRUPT
    assert act(game, service, "check").status == Status.MUMBLE


def test_target_that_garbles_notes_is_mumble_and_corrupt(game, service, web: NotesWeb):
    flag_id = put_flag(game, service)
    web.mode = "garbling"
    assert act(game, service, "check").status == Status.MUMBLE
    assert act(game, service, "get", flag_id, FLAG, 1).status == Status.CORRUPT


def test_stopped_target_is_down(game, service, web: NotesWeb):
    flag_id = put_flag(game, service)
    web.stop()
    for action in ("check", "put", "get"):
        result = act(game, service, action, flag_id, FLAG, 1)
        assert result.status == Status.DOWN, result


def test_gornilo_put_publishes_the_owner_as_attack_data(game, web: NotesWeb):
    flag_id = put_flag(game, game.service(2))
    owner = json.loads(json.loads(flag_id)["private_content"])[0]
    assert json.loads(flag_id)["public_flag_id"] == owner
    assert [note.owner for note in web.notes.values()] == [owner]


def test_each_checker_gets_its_own_pins_whatever_the_platform_has(game):
    from checker.envs import env_for

    for name, service in zip(CHECKERS, game.services, strict=True):
        pins = dict(line.split("==") for line in (HERE / name / "requirements.txt").read_text().split())
        code = "import sys, importlib.metadata as m; print(*(m.version(p) for p in sys.argv[1:]))"
        python = str(env_for(game, service).python)
        versions = subprocess.run([python, "-c", code, *pins], capture_output=True, text=True, check=True)
        assert versions.stdout.split() == list(pins.values()), name
    assert importlib.metadata.version("gornilo") != "0.9.3"  # the platform's own is another one


def _lacking(name: str) -> list[str]:
    """The modules a checker imports that the platform's interpreter does not have."""
    source = (HERE / name / "checker.py").read_text()
    modules = {m.split(".")[0] for m in re.findall(r"^(?:from|import) ([\w.]+)", source, re.M)}
    return sorted(m for m in modules if importlib.util.find_spec(m) is None)


# The platform's test tools include bs4 and a newer gornilo, so only checklib's checker lacks a
# package there; the gornilo checker would run on other versions than its pins (see above).
LACKING = [name for name in CHECKERS if _lacking(name)]


def test_some_checker_lacks_packages_outside_its_environment():
    assert LACKING and all(_lacking(name) for name in LACKING)


@pytest.mark.parametrize("name", LACKING)
def test_checker_run_with_the_platform_interpreter_is_checker_error(name: str):
    """Outside its environment (`run_action` in this process: `#!/usr/bin/env python3` finds the
    platform's interpreter) the checker lacks its packages: why it needs its environment."""
    result = run_action(CheckerSpec(protocol="cli", path=str(HERE / name / "checker.py"), timeout=10), None,
                        "check", HOST)
    assert result.status == Status.CHECKER_ERROR
    assert "ModuleNotFoundError" in result.private


def test_checklib_and_gornilo_checkers_with_conflicting_pins_run_through_the_round_engine(
        redis_server, tmp_path, processes, monkeypatch):
    """Both organizer-style checkers, each in its own environment built offline from a
    fetched wheelhouse (requests 2.32.3 beside 2.31.0), through a real ticker and worker."""
    from checker.envs import build_env, env_for, fetch
    from tests.engine_helpers import ADDRESS_SCHEME, checker, engine_game, start_ticker, start_worker, wait_closed

    wheels = tmp_path / "wheels"
    monkeypatch.setenv("ADRANGE_WHEELHOUSE", str(wheels))
    specs = [checker(str(HERE / name / "checker.py"), "cli", timeout=4) for name in CHECKERS]
    config, store, path = engine_game(redis_server.url, tmp_path, teams=2, round_seconds=10, checkers=specs)
    fetch(config, wheels)
    envs = [build_env(config, service, wheels) for service in config.services]
    assert envs[0].root != envs[1].root
    versions = [subprocess.run([str(env.python), "-c", "import requests; print(requests.__version__)"],
                               capture_output=True, text=True, check=True).stdout.strip() for env in envs]
    assert sorted(versions) == ["2.31.0", "2.32.3"]
    assert env_for(config, config.services[0]).ready
    hosts = [ADDRESS_SCHEME.format(team=t) for t in (1, 2, 3)]
    with serving_notes_web(*hosts):
        processes.append(start_worker(path, tmp_path))
        store.set_state(GameState.RUNNING)
        processes.append(start_ticker(path, tmp_path))
        wait_closed(store, 2, 90)
    for round_ in (1, 2):
        details = store.check_details(round_)
        assert {box: d["status"] for box, d in details.items()} == \
            {(t, s): Status.OK for t in (1, 2, 3) for s in (1, 2)}, details
    actions = store.check_details(2)[(1, 1)]["detail"]["actions"]
    assert [a["action"] for a in actions] == ["check", "put", "get", "get"]  # round 1's flag read back
    assert all("as adrange-chk" in a["command"] for a in actions)
