"""What farms read: verdict texts every farm sorts right, every line judged however it is cut
or ended, echoes that keep the bytes sent, and HTTP answers in the list shape farms expect."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from deploy.redis_server import free_port
from scoreboard.submission.verdicts import TEXTS, Verdict
from tests.conftest import game_data
from tests.game_helpers import flag_of, start_at_round
from tests.processes import Process, write_game
from tests.submit_helpers import LineClient, tcp_server
from tests.test_submit_tcp import FAUST_GREETING, RUCTF_GREETING

HACKERDOM = "Denied: invalid or own flag"


@pytest.fixture
def game(make_game):
    config, store = make_game(teams=3)
    start_at_round(store, 5)
    with tcp_server(config, store) as ports:
        yield config, store, ports


def test_invalid_own_and_nop_texts_carry_the_classic_and_todays_hackerdom_phrases():
    assert "Denied: invalid flag" in TEXTS[Verdict.INVALID] and HACKERDOM in TEXTS[Verdict.INVALID]
    assert "Denied: flag is your own" in TEXTS[Verdict.OWN] and HACKERDOM in TEXTS[Verdict.OWN]
    assert "(NOP team" in TEXTS[Verdict.NOP] and HACKERDOM in TEXTS[Verdict.NOP]
    # DestructiveFarm queues (sends again) what says "try again later"; a rate-limited flag must be sent again
    assert "try again later" in TEXTS[Verdict.RATE_LIMITED]


def test_a_last_line_without_newline_before_half_close_is_judged(game):
    config, store, ports = game
    flag = flag_of(store, 5, 2, 1)
    client = LineClient(ports["ructf"], source="127.0.1.1")
    client.read_exact_text(RUCTF_GREETING)
    client.send(f"junk\n{flag}".encode())
    client.sock.shutdown(socket.SHUT_WR)
    assert client.line() == f"[junk] {TEXTS[Verdict.INVALID]}".encode()
    assert client.line().startswith(f"[{flag}] Accepted".encode())
    assert client.closed()


@pytest.mark.parametrize("cuts", [[], [5000], [100, 257, 258, 9000]])
def test_a_long_line_is_judged_invalid_however_it_is_cut_and_the_session_goes_on(game, cuts):
    config, store, ports = game
    flag = flag_of(store, 5, 2, 1)
    payload = b"A" * 10_000 + f"\n{flag}\n".encode()
    client = LineClient(ports["faust"], source="127.0.1.1")
    client.read_exact_text(FAUST_GREETING)
    start = 0
    for cut in [*cuts, len(payload)]:
        client.send(payload[start:cut])
        start = cut
        time.sleep(0.05)  # separate segments
    limit = config.submission.limits.line_length
    assert client.line() == b"A" * limit + f" INV {TEXTS[Verdict.INVALID]}".encode()
    assert client.line().startswith(f"{flag} OK".encode())


def test_echoes_keep_utf8_and_escape_only_what_breaks_the_line(game):
    config, store, ports = game
    client = LineClient(ports["ructf"], source="127.0.1.1")
    client.read_exact_text(RUCTF_GREETING)
    client.send("flag{é漢字}\n".encode() + b"bad\xff\xfeutf8\n" + b"tab\there\n")
    assert client.line() == f"[flag{{é漢字}}] {TEXTS[Verdict.INVALID]}".encode()
    assert client.line() == rb"[bad\xff\xfeutf8] " + TEXTS[Verdict.INVALID].encode()
    assert client.line() == rb"[tab\x09here] " + TEXTS[Verdict.INVALID].encode()


@pytest.fixture
def web(make_game, tmp_path, redis_server):
    config, store = make_game(teams=3)
    start_at_round(store, 2)
    data = game_data(redis_server.url, teams=3)
    data["game"]["name"] = config.game.name
    data["submission"] = {"limits": {"rate_per_team": 3}}
    port = free_port()
    proc = Process(["web", "-c", str(write_game(tmp_path / "game.yml", data)), "--port", str(port)],
                   tmp_path, "web").start(("127.0.0.1", port))
    yield config, store, f"http://127.0.0.1:{port}"
    proc.stop()


def _put(url, token, flags):
    return requests.put(f"{url}/flags", json=flags, headers={"X-Team-Token": token}, timeout=10)


def test_http_strips_whitespace_like_tcp_and_gives_back_each_flag_as_sent(web):
    config, store, url = web
    flag, long_junk = flag_of(store, 2, 2, 1), "J" * 1000
    sent = [f"  {flag}\t\n", long_junk]
    answer = _put(url, config.team(1).token, sent).json()
    assert [a["flag"] for a in answer] == sent  # a farm maps each answer back by what it sent
    assert answer[0]["status"] is True and answer[0]["msg"].startswith(f"[{flag}] Accepted")
    assert answer[1]["status"] is False and answer[1]["msg"].endswith(TEXTS[Verdict.INVALID])


def test_http_rate_limit_answers_per_flag_in_the_list_shape(web):
    config, store, url = web
    token = config.team(1).token
    fresh = iter(flag_of(store, 2, victim, service, slot) for slot in range(16) for victim in (2, 3)
                 for service in (1, 2))
    batch = [next(fresh) for _ in range(4)]
    first = _put(url, token, [*batch, "junk"])  # 3 flags to decide per second: the fourth is over
    assert [a["msg"] for a in first.json()][3:] == [f"[{batch[3]}] {TEXTS[Verdict.RATE_LIMITED]}",
                                                     f"[junk] {TEXTS[Verdict.INVALID]}"]  # garbage is still judged
    for _ in range(20):  # a slow machine may let a new second begin in between: go on until one is over
        pair = [next(fresh), next(fresh)]
        over = _put(url, token, pair)
        if over.status_code == 429:
            break
    assert over.status_code == 429
    assert over.json() == [{"flag": f, "status": False, "msg": f"[{f}] {TEXTS[Verdict.RATE_LIMITED]}"} for f in pair]
