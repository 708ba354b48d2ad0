"""Holding on through Redis outages and a dying supervisor.

- Every platform process started standalone (web, TCP submission, ticker, Celery worker)
  waits for Redis when it is down at their start, and again after Redis is killed -9 and
  restarted mid-game: each comes back by itself, and no accepted flag is lost.
- `adrange run` killed -9 leaves no process of its game behind (the worker's pool and
  the checkers' fork servers included), and a second `adrange run` of the same game is
  refused while the first lives.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import requests

from deploy.redis_server import RedisServer, free_port
from deploy.supervisor import MAX_BACKOFF, ROOT, Program, Supervisor, backoff
from scoreboard.config import load_config
from scoreboard.flags import FlagCodec
from scoreboard.store import GameStore, connect, wait_for_redis
from scoreboard.types import GameState
from tests.conftest import game_data
from tests.engine_helpers import ADDRESS_SCHEME, checker, engine_game, serving, wait_checked_ok, wait_until
from tests.processes import Process, write_game
from tests.targets.notes_tcp import NotesServer


def submit_faust(port: int, flags: list[str], source: str = "127.0.0.1") -> list[str]:
    """Submit flags over the faust dialect from `source`; the reply lines."""
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as sock:
        reader = sock.makefile("rb")
        while reader.readline().strip() != b"One flag per line please!":
            pass
        reader.readline()
        sock.sendall("".join(f"{f}\n" for f in flags).encode())
        return [reader.readline().decode().strip() for _ in flags]


def accepted_after_outage(port: int, flags: list[str], timeout: float, source: str) -> list[str]:
    """Submit until every flag has a final verdict (a farm resubmits on ERR); the replies."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            replies = submit_faust(port, flags, source)
            if not any(" ERR" in r for r in replies):
                return replies
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"flags still unanswered after {timeout}s")
        time.sleep(0.3)


def alive(processes: list[Process]) -> dict[str, int | None]:
    """Exit code per process (None: still running)."""
    return {p.log_path.stem: p.proc.poll() for p in processes if p.proc}


def test_every_standalone_process_waits_for_redis_and_comes_back_after_a_restart(tmp_path):
    port = free_port()
    server = RedisServer(tmp_path / "redis", port=port).start()
    web_port, faust_port = free_port(), free_port()
    config, store, path = engine_game(server.url, tmp_path, teams=2, round_seconds=2,
                                      checkers=[checker("notes_checker.py")])
    data = config.model_dump(mode="json", exclude_none=True)
    data["teams"][0]["network"] = "127.0.0.0/24"  # team 1 submits from 127.0.0.1
    data["submission"] = {"faust_port": faust_port, "ructf_port": None, "forcad_port": None}
    data["web"] = {"port": web_port}
    write_game(path, data)
    store.set_state(GameState.RUNNING)
    server.stop()  # every process starts while Redis is down
    targets = [NotesServer(ADDRESS_SCHEME.format(team=t)) for t in (1, 2, 3)]
    conf = ["-c", str(path)]
    processes = [Process(["web", *conf], tmp_path, "web"), Process(["submit-server", *conf], tmp_path, "submit"),
                 Process(["ticker", *conf, "--lease", "1.5"], tmp_path, "ticker"),
                 Process(["worker", *conf, "--concurrency", "2"], tmp_path, "worker")]
    with serving(targets):
        try:
            for process in processes:
                process.start()
            time.sleep(4)
            assert all(code is None for code in alive(processes).values()), alive(processes)
            server.start()
            store = GameStore(load_config(path), connect(server.url))
            wait_checked_ok(store, 0, 60, explain=lambda: _logs(processes))  # a fresh worker may need a round
            codec = FlagCodec(config.game.secret, config.game.flag_prefix)
            round_ = store.state()["round"]
            before = [codec.generate(round_, 2, 1, slot) for slot in range(16)]
            replies = accepted_after_outage(faust_port, before, 30, "127.0.0.1")
            assert all(" OK" in r for r in replies), replies

            server.kill()  # kill -9 mid-game, down for a few seconds, restarted on its AOF
            time.sleep(3)
            assert all(code is None for code in alive(processes).values()), alive(processes)
            restarted = time.monotonic()
            server.start()

            wait_until(lambda: store.state()["round"] > round_, 30)
            after = [codec.generate(store.state()["round"], 2, 1, slot) for slot in range(16)]
            replies = accepted_after_outage(faust_port, after, 30, "127.0.0.1")
            assert all(" OK" in r for r in replies), replies
            wait_until(lambda: requests.get(f"http://127.0.0.1:{web_port}/api/round", timeout=5).ok, 30)
            wait_checked_ok(store, store.state()["closed_round"], 60, explain=lambda: _logs(processes))  # checks again
            back = time.monotonic() - restarted
            assert all(code is None for code in alive(processes).values()), alive(processes)
            captured = {e["f"] for e in store.events("capture")}
            assert set(before) | set(after) <= captured  # not one accepted flag lost
            print(f"\nRESILIENCE redis kill -9 + restart: all four processes alive; checks OK again "
                  f"{back:.1f}s after the restart; {len(before) + len(after)} accepted flags all stored")
        finally:
            for process in processes:
                process.kill()
            server.cleanup()


def _logs(processes: list[Process]) -> str:
    return "\n".join(f"--- {p.log_path.name}\n{p.log_path.read_text(errors='replace')[-1500:]}" for p in processes)


def _descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children, their children, ...)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _running(pids: set[int]) -> set[int]:
    """The pids still running (zombies count as gone)."""
    left = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            left.add(pid)
    return left


def test_killed_supervisor_leaves_no_process_and_a_second_run_is_refused(redis_server, tmp_path):
    config, store, path = engine_game(redis_server.url, tmp_path, teams=2, round_seconds=2,
                                      checkers=[checker("notes_checker.py")], name="orphans")
    data = config.model_dump(mode="json", exclude_none=True)
    data["submission"] = {"faust_port": free_port(), "ructf_port": None, "forcad_port": None}
    data["web"] = {"port": free_port()}
    write_game(path, data)
    store.set_state(GameState.RUNNING)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "deploy.cli", "run", "-c", str(path)]
    targets = [NotesServer(ADDRESS_SCHEME.format(team=t)) for t in (1, 2, 3)]
    family: set[int] = set()
    with serving(targets):
        run = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
        try:
            wait_until(lambda: store.state()["closed_round"] >= 2, 60)  # every program at work
            second = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
            assert second.returncode != 0
            assert f"game 'orphans' is already running (adrange run, pid {run.pid})" in second.stderr
            family = _descendants(run.pid)
            assert len(family) >= 6  # web, submit, ticker, worker, its pool, a fork server
            os.kill(run.pid, signal.SIGKILL)
            run.wait()
            wait_until(lambda: not _running(family), 20, lambda: f"left running: {_running(family)}")
        finally:
            for pid in _running(_descendants(run.pid) | family):
                os.kill(pid, signal.SIGKILL)
    print(f"\nSUPERVISOR kill -9: all {len(family)} processes of the game gone")


def test_back_off_doubles_per_quick_crash_and_starts_over_after_a_healthy_run(tmp_path):
    supervisor = Supervisor(tmp_path / "logs", healthy_seconds=1.5)
    quick = supervisor.start(Program("quick", ["sh", "-c", "exit 3"]))
    slow = supervisor.start(Program("slow", ["sh", "-c", "sleep 2; exit 3"]))
    delays: dict[str, list[float]] = {"quick": [], "slow": []}
    try:
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline and (len(delays["quick"]) < 4 or len(delays["slow"]) < 2):
            waiting = {program.name: program.next_start for program in (quick, slow)}
            supervisor.poll()
            for program in (quick, slow):
                if program.next_start and not waiting[program.name]:
                    delays[program.name].append(program.last_delay)
            time.sleep(0.05)
    finally:
        supervisor.stop_all()
    assert delays["quick"][:4] == [backoff(n) for n in range(1, 5)]  # 0.5, 1, 2, 4 s
    assert delays["slow"][:2] == [backoff(0), backoff(0)]  # up long enough each time: no growth
    assert backoff(100) == MAX_BACKOFF


def test_the_projects_redis_requires_its_password_and_a_wrong_one_is_named(redis_server):
    """Issue 11 item 6: no Redis the project starts lets in a client without the password
    from the game file's redis_url; a process with a wrong one stops with the cause."""
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=redis_server.port).ping()
    assert redis.Redis.from_url(redis_server.url).ping()
    wrong = redis_server.url.replace(redis_server.password, "not-the-password")
    with pytest.raises(SystemExit, match=r"refuses us: .*check the password in redis_url"):
        wait_for_redis(wrong, "web")


def test_run_starts_its_own_redis_for_a_local_url_and_says_where_everything_is(tmp_path):
    """Issue 12 item 1: nothing answering at a local redis_url: `adrange run` starts a
    redis-server (the URL's port and password, AOF in the game's state dir), prints the
    board, portal and admin addresses and the generated admin password once; a remote
    Redis that does not answer stops it at once with the cause."""
    port, web_port = free_port(), free_port()
    data = game_data(f"redis://:pw-{port}@127.0.0.1:{port}/0", teams=2, services=1, name=f"ownredis{port}")
    path = tmp_path / "game.yml"
    data["submission"] = {"faust_port": free_port(), "ructf_port": None, "forcad_port": None}
    data["web"] = {"port": web_port}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    remote = {**data, "redis_url": "redis://:pw@127.0.0.2:1/0"}
    write_game(path, remote)
    refused = subprocess.run([sys.executable, "-m", "deploy.cli", "run", "-c", str(path)], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "the Redis at redis://***@127.0.0.2:1/0 does not answer" in refused.stderr
    write_game(path, data)
    run = subprocess.Popen([sys.executable, "-m", "deploy.cli", "run", "-c", str(path)], env=env, cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        lines: list[str] = []
        while not any(line.startswith("running;") for line in lines):
            line = run.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        said = "".join(lines)
        assert f"starting redis-server on port {port}" in said
        assert f"board http://127.0.0.1:{web_port}/  portal http://127.0.0.1:{web_port}/team/" in said
        password = said.split("admin password (shown once, stored hashed): ")[1].split()[0]
        wait_until(lambda: _answers(f"http://127.0.0.1:{web_port}/api/round"), 60)
        admin = requests.get(f"http://127.0.0.1:{web_port}/admin/api/engine", auth=("admin", password), timeout=5)
        assert admin.status_code == 200
        assert (ROOT / ".run" / data["game"]["name"] / "redis" / "appendonlydir").is_dir()
    finally:
        os.killpg(run.pid, signal.SIGTERM)
        run.wait(60)
        shutil.rmtree(ROOT / ".run" / data["game"]["name"], ignore_errors=True)
    with pytest.raises(redis.ConnectionError):
        redis.Redis(port=port, password=f"pw-{port}", socket_connect_timeout=1).ping()  # stopped with the run


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).ok
    except requests.RequestException:
        return False
