"""Limits and lockouts live in Redis, shared by every process of a game, and keyed so that
one address (a shared NAT, a neighbour's box) never locks another team out of its own account."""

from __future__ import annotations

import math
import socket
import time

import requests

from scoreboard.submission.limits import SharedRate, TokenGuard
from scoreboard.submission.session import TOKEN_LOCKED
from tests.game_helpers import start_at_round
from tests.submit_helpers import tcp_server
from tests.test_hostile_input import forcad_attempt
from tests.web_helpers import start_web

WELCOME = b"Now enter your flags, one in a line:"
LOCKED = TOKEN_LOCKED.rstrip(b"\n") + b" (closed)"


def test_two_processes_share_one_rate_per_team(make_game):
    config, store = make_game()
    one, two = SharedRate(store, 50), SharedRate(store, 50)  # two submit processes' limiters
    started, granted = time.monotonic(), 0
    for _ in range(20):
        granted += one.take(1, 5) + two.take(1, 5)
    elapsed = time.monotonic() - started
    assert granted >= 50  # the team gets its rate...
    assert granted <= 50 * math.ceil(elapsed + 1)  # ...once, not once per process
    assert one.take(2, 5) == 5  # another team's budget is its own


def test_a_lease_is_spent_in_memory(make_game):
    config, store = make_game()
    rate = SharedRate(store, 1000)
    assert rate.take_leased(1, 10) is None  # the first batch must lease
    rate.refill(1, 10)
    assert [rate.take_leased(1, 10) for _ in range(10)] == [10] * 10  # a slice (100) lasts ten batches
    assert rate.take_leased(1, 10) is None


def test_guesses_at_two_processes_add_up_and_forgive_nothing(make_game):
    config, store = make_game()
    web, tcp = TokenGuard(store, 4, 60), TokenGuard(store, 4, 60)
    source, token = "127.0.9.7", config.team(1).id
    web.record(source, False, "team token")
    tcp.record(source, False, "team token")
    tcp.record(source, True, "team token")  # a right token between guesses
    web.record(source, False, "team token")
    assert web.admits(source, token, None) and tcp.admits(source, token, None)
    tcp.record(source, False, "team token")
    assert not web.admits(source, token, None) and not tcp.admits(source, None, None)
    assert web.admits("127.0.9.8", token, None)  # other sources are not affected


def test_a_locked_address_keeps_its_own_teams_token(make_game):
    config, store = make_game()
    guard = TokenGuard(store, 2, 60)
    neighbour = "127.0.1.77"  # inside team 1's network, guessing
    guard.record(neighbour, False, "team token")
    guard.record(neighbour, False, "team token")
    assert guard.locked(neighbour)
    assert guard.admits(neighbour, 1, home=1)  # team 1's own token from team 1's network
    assert not guard.admits(neighbour, 2, home=1)  # but no other team's
    assert not guard.admits(neighbour, None, home=1)


def test_a_lockout_made_over_http_holds_on_every_tcp_server_but_not_for_the_home_team(redis_server, tmp_path):
    def edit(data):
        data["submission"] = {"limits": {"token_failures": 3, "token_lockout": 60}}

    game = start_web(redis_server.url, tmp_path, edit=edit, prepare=lambda store: start_at_round(store, 1))
    try:
        for i in range(3):  # guesses from no team's address over HTTP, from team 1's network over TCP
            reply = requests.put(f"{game.url}/flags", json=[], headers={"X-Team-Token": f"guess-{i}"}, timeout=5)
            assert reply.status_code == 401
        with tcp_server(game.config, game.store) as ports:
            for i in range(3):
                assert forcad_attempt(ports["forcad"], "127.0.1.1", f"guess-{i}") != WELCOME
        with tcp_server(game.config, game.store) as one, tcp_server(game.config, game.store) as two:
            for ports in (one, two):  # a lockout made by the web node holds on every submit server
                assert forcad_attempt(ports["forcad"], "127.0.0.1", game.token(1)) == LOCKED
                assert forcad_attempt(ports["forcad"], "127.0.1.1", game.token(2)) == LOCKED
                assert forcad_attempt(ports["forcad"], "127.0.1.1", game.token(1)) == WELCOME  # home team
        assert requests.put(f"{game.url}/flags", json=[], headers={"X-Team-Token": game.token(1)},
                            timeout=5).status_code == 429
    finally:
        game.stop()


def _admitted(port: int, source: str, tries: int) -> list[socket.socket]:
    """Open `tries` connections from `source`; keep those that got a greeting, not a refusal."""
    kept = []
    for _ in range(tries):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
        first = sock.recv(100)
        if first.startswith(b"adrange flag submission"):
            kept.append(sock)
        else:
            assert first == b"Too many connections from your address\n", first
            sock.close()
    return kept


def test_two_submit_servers_share_the_per_source_cap_instead_of_doubling_it(make_game):
    config, store = make_game(teams=2)
    config.submission.limits.connections_per_source = 4
    start_at_round(store, 1)
    with tcp_server(config, store) as one, tcp_server(config, store) as two:
        deadline = time.monotonic() + 10  # the first server learns of the second within a second
        while True:
            held = _admitted(one["faust"], "127.0.1.7", 3)
            for sock in held:
                sock.close()
            if len(held) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(held) == 2
        time.sleep(0.5)  # the closed ones are released
        open_ = _admitted(one["faust"], "127.0.1.7", 4) + _admitted(two["faust"], "127.0.1.7", 4)
        assert len(open_) == 4  # the cap of 4 over both, not 4 on each
        for sock in open_:
            sock.close()
    with tcp_server(config, store) as alone:  # the others left: one server takes the whole cap
        held = _admitted(alone["faust"], "127.0.1.8", 6)
        assert len(held) == 4
        for sock in held:
            sock.close()


def test_a_server_that_stops_renewing_its_lease_drops_out(make_game):
    """What a kill -9 leaves: a lease nobody renews."""
    config, store = make_game()
    assert store.live_processes("submit", "killed", 0.5) == 1
    assert store.live_processes("submit", "alive", 5) == 2
    time.sleep(1)
    assert store.live_processes("submit", "alive", 5) == 1
