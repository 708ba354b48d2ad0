"""Denied flags never wait on Redis: no submit script call for a batch denied in full, and
the denial counters (for /metrics) right after a flush and after a kill -9."""

from __future__ import annotations

import signal
import time

import redis

from deploy.redis_server import free_port
from scoreboard.types import GameState
from tests.conftest import game_data
from tests.game_helpers import flag_of, start_at_round
from tests.processes import Process, write_game
from tests.submit_helpers import LineClient, tcp_server
from tests.test_submit_tcp import FAUST_GREETING
from tests.web_helpers import wait_until


def _script_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("evalsha", "eval"))


def test_a_batch_denied_in_full_costs_no_submit_script_call(make_game):
    config, store = make_game(teams=3)
    start_at_round(store, 5)
    garbage = b"".join(b"junk%d\n" % i for i in range(500)) + f"{flag_of(store, 5, 1, 1)}\n".encode()  # + own flag
    with tcp_server(config, store) as ports:
        client = LineClient(ports["faust"], source="127.0.1.1")
        client.read_exact_text(FAUST_GREETING)
        client.send(f"{flag_of(store, 5, 3, 1)}\n".encode())  # warm up: the scripts are loaded, a rate lease taken
        assert b" OK " in client.line()
        before = _script_calls(store.redis)
        client.send(garbage)
        replies = [client.line() for _ in range(501)]
        after = _script_calls(store.redis)
        assert after == before  # 501 denials, not one script call
        assert all(b" INV " in r for r in replies[:500]) and b" OWN " in replies[500]
        client.send(f"{flag_of(store, 5, 2, 1)}\n".encode())
        assert b" OK " in client.line()
        assert after + 1 <= _script_calls(store.redis) <= after + 2  # the submit script (and a rate lease)


def test_denial_counts_are_written_within_a_second_and_survive_a_kill(redis_server, tmp_path):
    data = game_data(redis_server.url, teams=3)
    port = free_port()
    data["submission"] = {"faust_port": port, "ructf_port": None, "forcad_port": None, "http": False}
    path = write_game(tmp_path / "game.yml", data)
    from scoreboard.config import load_config
    from scoreboard.store import GameStore
    config = load_config(path)
    store = GameStore(config)
    store.init()
    store.set_state(GameState.RUNNING)
    store.open_round(1)
    server = Process(["submit-server", "-c", str(path)], tmp_path, "submit").start(("127.0.0.1", port))
    try:
        client = LineClient(port, source="127.0.1.1")
        client.read_exact_text(FAUST_GREETING)
        client.send(b"".join(b"junk%d\n" % i for i in range(300)))
        assert all(b" INV " in client.line() for _ in range(300))
        counted = wait_until(lambda: store.stats().get("denied:invalid") == 300, timeout=10, what="300 denials")
        assert counted
        time.sleep(1.5)  # a flush or two later
        server.kill(signal.SIGKILL)
        assert store.stats()["denied:invalid"] == 300  # counted once, kept after the kill
    finally:
        server.stop()
