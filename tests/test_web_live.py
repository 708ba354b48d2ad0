"""The live board's Socket.IO contract, against the real web process and real clients."""

from __future__ import annotations

import time

import pytest
import requests

from scoreboard.types import GameState, Status
from tests.game_helpers import flag_of, start_at_round
from tests.web_helpers import Spectator, start_web, wait_until


@pytest.fixture
def web(redis_server, tmp_path):
    game = start_web(redis_server.url, tmp_path, prepare=lambda s: start_at_round(s, 2))
    yield game
    game.stop()


@pytest.fixture
def spectator(web):
    client = Spectator(web.url).connect()
    client.wait_for("board")
    time.sleep(0.5)  # let the emitter take its lease and start following
    yield client
    client.close()


def test_spectator_gets_the_whole_board_on_connect(web, spectator):
    board = spectator.of("board")[0]
    assert [t["name"] for t in board["teams"]] == ["team1", "team2", "team3", "team4"]
    assert [s["name"] for s in board["services"]] == ["svc1", "svc2"]
    assert {r["name"] for r in board["ranking"]} == {"team1", "team2", "team3", "team4"}
    assert set(board["ranking"][0]) >= {"rank", "total", "atk", "def", "sla", "change", "services"}
    assert board["round"]["round"] == 2 and board["round"]["state"] == "running"
    assert board["round"]["round_seconds"] == 5 and board["round"]["round_start"] > 0
    assert set(board) >= {"matrix", "attacks", "first_bloods", "announcements", "history", "frozen"}
    assert "token" not in str(board)


def test_flag_over_http_moves_ranking_and_sends_attack_and_first_blood(web, spectator):
    flag = flag_of(web.store, 2, 3, 2)
    reply = requests.put(f"{web.url}/flags", json=[flag], headers={"X-Team-Token": web.token(1)}, timeout=5)
    assert reply.json()[0]["status"] is True
    batch = spectator.wait_for("attacks")
    attack = batch["attacks"][0]
    assert (attack["a"], attack["v"], attack["s"], attack["r"]) == (1, 3, 2, 2)
    assert batch["pairs"] == [{"a": 1, "v": 3, "s": 2, "n": 1}] and batch["count"] == 1
    assert spectator.wait_for("first_blood")["a"] == 1
    ranking = spectator.wait_for("ranking", lambda d: d["ranking"][0]["name"] == "team1"
                                 and d["ranking"][0]["captured"] == 1)
    assert ranking["ranking"][0]["services"]["2"]["stolen"] == 1
    assert "flag" not in attack


def test_a_flood_of_flags_reaches_spectators_as_a_few_coalesced_messages(web, spectator):
    store = web.store
    flags = [(attacker, (flag_of(store, r, victim, service, slot), victim, service, r))
             for r in (1, 2) for slot in range(16) for service in (1, 2)
             for attacker in range(1, 5) for victim in range(1, 5) if attacker != victim]
    started = time.monotonic()
    for i in range(0, len(flags), 4):  # ~190 submit calls over about 2 seconds
        for attacker, candidate in flags[i:i + 4]:
            assert store.submit(attacker, [candidate])[0].startswith("A")
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    time.sleep(1)
    final = spectator.wait_for("ranking", lambda d: sum(r["captured"] for r in d["ranking"]) == len(flags))
    rankings, batches = spectator.of("ranking"), spectator.of("attacks")
    assert sum(b["count"] for b in batches) == len(flags)  # every attack is told...
    assert sum(p["n"] for b in batches for p in b["pairs"]) == len(flags)
    assert all(len(b["attacks"]) <= 30 for b in batches)  # ...without one message per flag
    for events in (rankings, batches):
        assert len(events) <= (elapsed + 1.5) * 3.5, f"{len(events)} events in {elapsed:.1f}s"
    assert final is rankings[-1]


def test_status_event_after_a_check_with_its_public_message(web, spectator):
    web.store.record_check(2, 2, 1, Status.MUMBLE, public="<script>alert(1)</script> bad answer",
                           private="secret trace")
    event = spectator.wait_for("statuses")
    assert event == [{"team": 2, "service": 1, "round": 2, "status": "MUMBLE",
                      "message": "<script>alert(1)</script> bad answer"}]
    assert "secret trace" not in str(spectator.events)


def test_round_events_on_open_close_and_pause(web, spectator):
    web.store.close_round(2)
    web.store.open_round(3)
    closed = spectator.wait_for("round", lambda d: d["type"] == "closed")
    assert closed["closed_round"] == 2 and "history" in closed
    opened = spectator.wait_for("round", lambda d: d["type"] == "opened")
    assert opened["round"] == 3 and opened["round_seconds"] == 5
    web.store.set_state(GameState.PAUSED, actor="test")
    paused = spectator.wait_for("round", lambda d: d["type"] == "state")
    assert paused["state"] == "paused" and paused["remaining"] is not None
    wait_until(lambda: 2 in web.store.history(), what="score history of round 2")


def test_announcement_event(web, spectator):
    web.store.add_announcement("service svc1 <b>restarted</b>", "test")
    assert spectator.wait_for("announcement")["text"] == "service svc1 <b>restarted</b>"


def test_late_spectator_sees_earlier_attacks_and_first_blood(web, spectator):
    web.store.submit(1, [(flag_of(web.store, 2, 2, 1), 2, 1, 2)])
    spectator.wait_for("first_blood")
    late = Spectator(web.url).connect()
    try:
        board = late.wait_for("board")
        assert board["attacks"][0]["a"] == 1 and board["first_bloods"]["1"]["a"] == 1
    finally:
        late.close()


def test_two_web_nodes_share_one_emitter(redis_server, tmp_path, web):
    """A second node of the same game: its spectators get each event exactly once."""
    from deploy.redis_server import free_port
    from tests.processes import Process
    port = free_port()
    second = Process(["web", "-c", str(tmp_path / "web.yml"), "--port", str(port)], tmp_path, "web2")
    second.start(("127.0.0.1", port))
    try:
        clients = [Spectator(web.url).connect(), Spectator(f"http://127.0.0.1:{port}").connect()]
        for client in clients:
            client.wait_for("board")
        web.store.submit(2, [(flag_of(web.store, 2, 1, 1), 1, 1, 2)])
        for client in clients:
            client.wait_for("attacks")
        time.sleep(1)
        assert [sum(b["count"] for b in c.of("attacks")) for c in clients] == [1, 1]
        for client in clients:
            client.close()
    finally:
        second.stop()


def test_a_burst_of_spectators_connecting_at_once_all_get_the_board(web):
    import asyncio

    import socketio

    async def burst(count: int) -> int:
        clients = [socketio.AsyncClient(reconnection=False) for _ in range(count)]
        boards = []
        for client in clients:
            client.on("board", lambda data: boards.append(1))
        results = await asyncio.gather(*(c.connect(web.url, transports=["websocket"], wait_timeout=20)
                                         for c in clients), return_exceptions=True)
        failures = [r for r in results if isinstance(r, Exception)]
        deadline = time.monotonic() + 20
        while len(boards) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)
        assert not failures, failures[:3]
        return len(boards)

    assert asyncio.run(burst(300)) == 300
