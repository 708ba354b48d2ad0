"""The TCP dialects: exact greetings and replies for every verdict, and abuse."""

import socket
import time

import pytest

from scoreboard.types import GameState
from tests.game_helpers import flag_of, start_at_round
from tests.submit_helpers import LineClient, tcp_server

FAUST_GREETING = b"adrange flag submission\nOne flag per line please!\n\n"
RUCTF_GREETING = b"Enter your flags, finished with newline (or empty line to exit)\n"


@pytest.fixture
def game(make_game):
    config, store = make_game(teams=3)
    start_at_round(store, 5)
    with tcp_server(config, store) as ports:
        yield config, store, ports


def test_faust_dialect_every_code(game):
    config, store, ports = game
    client = LineClient(ports["faust"], source="127.0.1.9")
    assert client.read_exact_text(FAUST_GREETING) == FAUST_GREETING
    ok, old = flag_of(store, 5, 2, 1), flag_of(store, 1, 2, 1)
    own, nop = flag_of(store, 5, 1, 1), flag_of(store, 5, 4, 1)
    client.send(f"{ok}\n{ok}\n{old}\n{own}\n{nop}\nnot-a-flag\n".encode())
    assert client.line().decode() == f"{ok} OK Accepted. 2 flag points"
    assert client.line().decode() == f"{ok} DUP Denied: you already submitted this flag"
    assert client.line().decode() == f"{old} OLD Denied: flag is too old"
    assert client.line().decode() == f"{own} OWN Denied: flag is your own (Denied: invalid or own flag)"
    assert client.line().decode() == f"{nop} INV Denied: invalid flag (NOP team; Denied: invalid or own flag)"
    assert client.line().decode() == "not-a-flag INV Denied: invalid flag (Denied: invalid or own flag)"


def test_faust_unknown_source_and_stopped_game_are_err(game):
    config, store, ports = game
    client = LineClient(ports["faust"], source="127.0.99.1")
    client.read_exact_text(FAUST_GREETING)
    flag = flag_of(store, 5, 2, 1)
    client.send(f"{flag}\n".encode())
    assert client.line().decode() == f"{flag} ERR Denied: your address belongs to no team"
    store.set_state(GameState.OVER)
    team_client = LineClient(ports["faust"], source="127.0.1.1")
    team_client.read_exact_text(FAUST_GREETING)
    team_client.send(f"{flag}\n".encode())
    assert team_client.line().decode() == f"{flag} ERR Game over"


def test_ructf_dialect_replies_and_empty_line_ends(game):
    config, store, ports = game
    client = LineClient(ports["ructf"], source="127.0.3.7")
    assert client.read_exact_text(RUCTF_GREETING) == RUCTF_GREETING
    flag = flag_of(store, 5, 1, 2)
    client.send(f"{flag}\n{flag}\n\nignored-after-end\n".encode())
    assert client.line().decode() == f"[{flag}] Accepted. 2 flag points"
    assert client.line().decode() == f"[{flag}] Denied: you already submitted this flag"
    assert client.closed()


def test_forcad_dialect_token_then_flags(game):
    config, store, ports = game
    client = LineClient(ports["forcad"])
    assert client.read_exact_text(b"Welcome! Please, enter your team token:\n") == \
        b"Welcome! Please, enter your team token:\n"
    client.send(config.team(2).token.encode() + b"\n")
    assert client.line() == b"Now enter your flags, one in a line:"
    flag = flag_of(store, 4, 3, 1)
    client.send(f"{flag}\n{flag_of(store, 5, 2, 1)}\n".encode())
    assert client.line().decode() == f"[{flag}] Accepted. 2 flag points"
    assert client.line().decode().endswith("] Denied: flag is your own (Denied: invalid or own flag)")


def test_forcad_bad_token_is_refused_and_closed(game):
    config, store, ports = game
    client = LineClient(ports["forcad"])
    client.line()
    client.send(b"wrong-token\n")
    assert client.line() == b"Invalid team token"
    assert client.closed()


def test_greeting_arrives_in_one_segment(game):
    config, store, ports = game
    sock = socket.create_connection(("127.0.0.1", ports["faust"]), timeout=5)
    time.sleep(0.2)
    assert sock.recv(65536) == FAUST_GREETING


def test_thousand_flags_in_one_segment_get_thousand_replies_in_order(game):
    config, store, ports = game
    client = LineClient(ports["faust"], source="127.0.1.1")
    client.read_exact_text(FAUST_GREETING)
    flags = [flag_of(store, 5, 2 + i // 16, 1 + i % 2, i % 16) for i in range(32)] + \
        [f"junk{i}" for i in range(968)]
    client.send("".join(f + "\n" for f in flags).encode())
    replies = [client.line().decode() for _ in flags]
    assert [r.split(" ")[0] for r in replies] == flags
    assert sum(" OK " in r for r in replies) == 32


def test_binary_garbage_and_invalid_utf8_get_invalid_replies(game):
    config, store, ports = game
    client = LineClient(ports["faust"], source="127.0.1.1")
    client.read_exact_text(FAUST_GREETING)
    client.send(b"\xff\xfe\x00\x01binary\n\x1b[31mred\n")
    assert client.line() == rb"\xff\xfe\x00\x01binary INV Denied: invalid flag (Denied: invalid or own flag)"
    assert client.line() == rb"\x1b[31mred INV Denied: invalid flag (Denied: invalid or own flag)"


def test_huge_line_is_judged_invalid_and_server_keeps_serving(game):
    config, store, ports = game
    client = LineClient(ports["faust"], source="127.0.1.1")
    client.read_exact_text(FAUST_GREETING)
    client.send(b"A" * 1_000_000 + b"\n")
    assert client.line().endswith(b" INV Denied: invalid flag (Denied: invalid or own flag)")
    other = LineClient(ports["faust"], source="127.0.1.1")
    assert other.read_exact_text(FAUST_GREETING) == FAUST_GREETING


def test_connections_per_source_are_capped(game):
    config, store, ports = game
    limit = config.submission.limits.connections_per_source
    clients = [LineClient(ports["ructf"], source="127.0.2.5") for _ in range(limit)]
    for c in clients:
        c.read_exact_text(RUCTF_GREETING)
    extra = LineClient(ports["ructf"], source="127.0.2.5")
    assert extra.line() == b"Too many connections from your address"
    assert extra.closed()
    fine = LineClient(ports["ructf"], source="127.0.2.6")
    assert fine.read_exact_text(RUCTF_GREETING) == RUCTF_GREETING
    for c in clients:
        c.close()


def test_half_open_and_silent_clients_do_not_block_others(game):
    config, store, ports = game
    silent = [socket.create_connection(("127.0.0.1", ports["faust"])) for _ in range(50)]
    half = socket.create_connection(("127.0.0.1", ports["ructf"]))
    half.sendall(b"PARTIAL-LINE-NO-NEWLINE")
    half.shutdown(socket.SHUT_WR)
    client = LineClient(ports["faust"], source="127.0.1.1")
    client.read_exact_text(FAUST_GREETING)
    flag = flag_of(store, 5, 3, 2)
    client.send(f"{flag}\n".encode())
    assert client.line().decode().startswith(f"{flag} OK")
    for s in [*silent, half]:
        s.close()


def test_idle_connection_is_closed_after_the_timeout(make_game):
    config, store = make_game()
    config.submission.limits.idle_timeout = 0.5
    start_at_round(store, 1)
    with tcp_server(config, store) as ports:
        client = LineClient(ports["faust"], source="127.0.1.1")
        client.read_exact_text(FAUST_GREETING)
        time.sleep(1.0)
        assert client.closed()
