"""The checker sandbox: every native and CLI action in its service's own environment, as its
own unprivileged user, in its cgroup, as the init of its own PID namespace; fail closed."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from checker.runner import run_service_action
from checker.sandbox import stop_servers
from scoreboard.config import parse_config
from scoreboard.types import Status
from tests.conftest import game_data

HERE = Path(__file__).parent / "targets" / "sandboxed"
HOST = "127.0.9.1"


@pytest.fixture
def game(redis_server):
    """A game whose service 1 is the CLI probe, service 2 the native probe and service 3 the CLI
    probe with time enough to be killed by its memory limit on a loaded machine."""
    data = game_data(redis_server.url, teams=1, services=3, round_seconds=60)
    data["services"][0]["checker"] = {"protocol": "cli", "path": str(HERE / "probe.py"), "timeout": 2}
    data["services"][1]["checker"] = {"protocol": "native", "path": str(HERE / "native_probe.py"), "timeout": 2}
    data["services"][2]["checker"] = {"protocol": "cli", "path": str(HERE / "probe.py"), "timeout": 50}
    config = parse_config(data)
    yield config
    stop_servers(config.game.name)


def test_a_cli_checker_runs_as_its_own_user_forked_as_main_in_its_own_pid_namespace(game):
    result = run_service_action(game, game.service(1), "check", HOST)
    assert result.status == Status.OK, result
    fields = dict(item.split("=", 1) for item in result.public.split())
    assert int(fields["uid"]) != 0 and fields["pid"] == "1" and fields["name"] == "__main__"
    assert "as adrange-chk1" in result.command
    again = run_service_action(game, game.service(1), "check", HOST)  # the server is resident now
    assert again.status == Status.OK and again.duration < result.duration + 1


def test_a_native_checker_runs_outside_the_worker_and_never_as_root(game):
    put = run_service_action(game, game.service(2), "put", HOST, "seed", "F" * 31 + "=", 1)
    assert put.status == Status.OK, put
    uid, pid = (int(x) for x in put.flag_id.split(":"))
    assert uid != 0 and uid != os.getuid() and pid == 1 and pid != os.getpid()


def test_a_setsid_escapee_dies_with_the_action_at_its_timeout(game):
    marker = str(1000 + uuid.uuid4().int % 10000)
    result = run_service_action(game, game.service(1), "put", HOST, marker, "escape", 1)
    assert result.status == Status.DOWN and "did not finish in 2s" in result.public
    assert "escapee started" in result.private  # the helper really ran before the kill
    time.sleep(0.5)
    alive = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True).stdout
    assert alive == "", f"escapee still alive: {alive}"


def test_a_hang_in_c_code_is_killed_at_the_timeout(game):
    started = time.monotonic()
    result = run_service_action(game, game.service(1), "put", HOST, "x", "chang", 1)
    assert result.status == Status.DOWN and result.public == "checker did not finish in 2s"
    assert "hanging in libc sleep" in result.private and result.duration >= 2
    assert time.monotonic() - started < 10


def test_a_memory_hog_gets_checker_error_and_the_caller_lives(game):
    result = run_service_action(game, game.service(3), "put", HOST, "x", "hog", 1)
    assert result.status == Status.CHECKER_ERROR, result
    assert "killed by signal 9" in result.private and "platform" in result.public
    assert run_service_action(game, game.service(3), "check", HOST).status == Status.OK  # the service goes on


def test_an_environment_that_cannot_be_built_fails_closed_with_the_reason(redis_server, tmp_path, monkeypatch):
    folder = tmp_path / "needs"
    folder.mkdir()
    (folder / "checker.py").write_text((HERE / "probe.py").read_text())
    (folder / "requirements.txt").write_text("adrange-no-such-package==1.0\n")
    monkeypatch.setenv("ADRANGE_WHEELHOUSE", str(tmp_path / "empty-wheelhouse"))
    data = game_data(redis_server.url, teams=1, services=1, round_seconds=30)
    data["services"][0]["checker"] = {"protocol": "cli", "path": str(folder / "checker.py"), "timeout": 2}
    config = parse_config(data)
    result = run_service_action(config, config.service(1), "check", HOST)
    assert result.status == Status.CHECKER_ERROR and "platform" in result.public
    assert "adrange checkers" in result.private  # the admin is told which command fixes it


def test_a_jvm_checker_starts_under_the_limits(redis_server):
    """Limits are on memory really used and on pids, not on address space: a JVM reserving
    its heap and starting threads runs (a 1 GiB RLIMIT_AS made it fail)."""
    if not shutil.which("java"):
        pytest.skip("no JDK on this machine")
    data = game_data(redis_server.url, teams=1, services=1, round_seconds=60)
    data["services"][0]["checker"] = {"protocol": "cli", "path": str(HERE / "jvm" / "checker.sh"), "timeout": 40}
    config = parse_config(data)
    try:
        result = run_service_action(config, config.service(1), "check", HOST)
    finally:
        stop_servers(config.game.name)
    assert result.status == Status.OK, result
    assert result.public.startswith("jvm ok") and result.command.startswith("exec ")
