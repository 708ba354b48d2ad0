"""A second submit-server or web server on a game's ports is refused with the cause, not run
silently beside the first (SO_REUSEPORT) or restarted forever; `--join` adds a submit process."""

from __future__ import annotations

import os
import socket
import subprocess
import time

from deploy.redis_server import free_port
from tests.conftest import game_data
from tests.processes import ROOT, Process, write_game


def _game(tmp_path, redis_server) -> tuple[list[str], int, int]:
    data = game_data(redis_server.url, teams=2, services=1)
    faust, web = free_port(), free_port()
    data["submission"] = {"faust_port": faust, "ructf_port": None, "forcad_port": None}
    data["web"] = {"port": web}
    return ["-c", str(write_game(tmp_path / "game.yml", data))], faust, web


def _second(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    command = Process(args, tmp_path, "second").args
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def _greeting(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        return sock.recv(100)


def test_second_submit_server_is_refused_and_join_adds_one(tmp_path, redis_server, processes):
    conf, faust, _ = _game(tmp_path, redis_server)
    processes.append(Process(["submit-server", *conf], tmp_path, "first").start(("127.0.0.1", faust)))
    second = _second(["submit-server", *conf], tmp_path)
    assert second.returncode == 1
    assert f"port {faust} on 127.0.0.1 is already in use" in second.stderr
    assert "--join" in second.stderr and "Traceback" not in second.stderr
    joined = Process(["submit-server", *conf, "--join"], tmp_path, "joined").start()
    processes.append(joined)
    deadline = time.monotonic() + 60
    while "submission listening" not in joined.log_path.read_text():
        assert joined.proc.poll() is None and time.monotonic() < deadline, joined.log_path.read_text()
        time.sleep(0.1)
    processes[0].kill()  # the joined process now serves the port alone
    for _ in range(3):
        assert _greeting(faust)
    assert joined.proc.poll() is None


def test_second_web_server_is_refused_with_the_cause(tmp_path, redis_server, processes):
    conf, _, web = _game(tmp_path, redis_server)
    processes.append(Process(["web", *conf], tmp_path, "first").start(("127.0.0.1", web)))
    second = _second(["web", *conf], tmp_path)
    assert second.returncode == 1
    assert f"web: port {web} on 127.0.0.1 is already in use" in second.stderr
    assert "Traceback" not in second.stderr
