"""Property tests with hypothesis: what hostile or broken input may do to each entry point.

- TCP dialects: random lines (binary, invalid UTF-8, too long, empty, real flags) cut into
  random segments get exactly one reply line per complete flag line, in order; or the
  connection is closed with a message; and the server keeps serving others.
- HTTP submission: random JSON (huge, deep, wrong types) and random bytes get a 4xx JSON
  error or 200 with one verdict per flag; never a 500.
- Config loader: random YAML text and damaged game dicts raise ConfigError naming a key
  or a YAML line; never anything else.
- Flag verifier: random text and one-character mutations of real flags never verify and
  raise nothing but FlagError.

Each property's example count is printed at the end of the module (``pytest -s``).
"""

from __future__ import annotations

import copy
import json
import socket
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from scoreboard.config import ConfigError, load_config, parse_config
from scoreboard.flags import FlagCodec, FlagError
from scoreboard.submission.dialects import printable
from tests.conftest import game_data
from tests.game_helpers import flag_of, start_at_round
from tests.submit_helpers import LineClient, tcp_server
from tests.web_helpers import start_web

EXAMPLES: Counter[str] = Counter()
LINE_LIMIT = 256


@pytest.fixture(scope="module", autouse=True)
def print_example_counts():
    yield
    print("\nFUZZ examples run per property: " + ", ".join(f"{k} {v}" for k, v in sorted(EXAMPLES.items())))


# -- TCP dialects -------------------------------------------------------------------------

@pytest.fixture
def tcp_game(make_game):
    """Teams 1-3 attack team 4's flags; team 1 is at 127.0.1.x, team 2 at 127.0.2.x, team 3 by token."""
    config, store = make_game(teams=4)
    start_at_round(store, 3)
    pool = [flag_of(store, r, 4, s, slot) for r in (1, 2, 3) for s in (1, 2) for slot in range(4)]
    with tcp_server(config, store) as ports:
        yield config, ports, pool


def lines_strategy(pool: list[str]) -> st.SearchStrategy[bytes]:
    no_newline = st.binary(max_size=60).map(lambda b: b.replace(b"\n", b""))
    line = st.one_of(
        st.sampled_from(pool).map(str.encode),
        no_newline,
        st.binary(min_size=1, max_size=12).map(lambda b: b"\xff" + b.replace(b"\n", b"") + b"\xc3"),
        st.integers(LINE_LIMIT + 1, 3000).map(lambda n: b"L" * n),
        st.just(b""), st.just(b" \t\r"),
    )
    return st.lists(line, max_size=40)


def expected_session(dialect: str, lines: list[bytes], tail: bytes) -> tuple[list[bytes], bool]:
    """Flag lines the server must answer, in order (a line past the limit is judged on its
    first LINE_LIMIT + 1 bytes; the tail, sent before the half-close, is a last line); and
    whether an empty line ends the session before the client is done sending."""
    answer: list[bytes] = []
    for index, line in enumerate([*lines, tail]):
        stripped = line[:LINE_LIMIT + 1].strip()
        if not stripped:
            if dialect == "faust" or index == len(lines):  # a blank tail is no line
                continue
            return answer, True  # an empty line ends ructf and forcad sessions
        answer.append(stripped)
    return answer, False


def read_all(sock: socket.socket) -> tuple[bytes, bool]:
    """Everything until EOF, and whether the connection was reset instead of closed."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        return data, True
    return data, False


def run_session(config, ports, dialect: str, payload: bytes, cuts: list[int]) -> tuple[list[bytes], bool]:
    """Connect as the dialect's team, send the payload cut at `cuts`, half-close, read to EOF.
    Returns the lines after the greeting and whether the server hung up before taking it all."""
    source = {"faust": "127.0.1.7", "ructf": "127.0.2.7", "forcad": "127.0.0.1"}[dialect]
    sock = socket.create_connection(("127.0.0.1", ports[dialect]), timeout=10, source_address=(source, 0))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    cut_off = False
    try:
        if dialect == "forcad":
            payload = config.team(3).token.encode() + b"\n" + payload
        start = 0
        try:
            for cut in [*sorted(set(cuts)), len(payload)]:
                if start < cut <= len(payload):
                    sock.sendall(payload[start:cut])
                    start = cut
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # EPIPE, ECONNRESET, ENOTCONN: it hung up on us
            cut_off = True
        data, reset = read_all(sock)
    finally:
        sock.close()
    greeting = {"faust": 3, "ructf": 1, "forcad": 2}[dialect]
    return data.split(b"\n")[greeting:], cut_off or reset


def reply_matches(dialect: str, flag: bytes, reply: bytes, pool: set[bytes]) -> bool:
    echo = printable(flag, LINE_LIMIT).encode()
    if dialect == "faust":
        head, _, code = reply.partition(b" ")
        if head != echo:
            return False
        return code.startswith((b"OK ", b"DUP ")) if flag in pool else code.startswith(b"INV ")
    if not reply.startswith(b"[" + echo + b"] "):
        return False
    text = reply[len(echo) + 3:]
    if flag in pool:
        return text.startswith((b"Accepted", b"Denied: you already"))
    return text.startswith(b"Denied: invalid")


@pytest.mark.parametrize("dialect", ["faust", "ructf", "forcad"])
def test_tcp_dialect_answers_each_flag_line_once_in_order_however_it_is_cut(tcp_game, dialect):
    config, ports, pool = tcp_game
    pool_bytes = {f.encode() for f in pool}

    @settings(database=None, deadline=None, max_examples=120)
    @given(lines=lines_strategy(pool), tail=st.binary(max_size=400).map(lambda b: b.replace(b"\n", b"")),
           cuts=st.lists(st.integers(0, 20000), max_size=8))
    def prop(lines, tail, cuts):
        EXAMPLES[f"tcp_{dialect}"] += 1
        payload = b"".join(line + b"\n" for line in lines) + tail
        answer, ends = expected_session(dialect, lines, tail)
        got, hung_up = run_session(config, ports, dialect, payload, cuts)
        got, tail_part = got[:-1], got[-1]
        assert tail_part == b"", f"reply not ended by LF: {tail_part[:80]!r}"
        assert not hung_up or ends  # only an empty line ends a session before the client is done
        assert len(got) == len(answer), (len(got), len(answer))  # every line judged, however it was cut
        for flag, reply in zip(answer, got, strict=False):
            assert reply_matches(dialect, flag, reply, pool_bytes), (flag[:60], reply[:100])
        # and the server keeps serving others, quickly
        other = LineClient(ports["faust"], source="127.0.2.9")
        other.read_exact_text(b"adrange flag submission\nOne flag per line please!\n\n")
        start = time.monotonic()
        other.send(f"{pool[0]}\n".encode())
        assert other.line().startswith(pool[0].encode())
        assert time.monotonic() - start < 1.0
        other.close()

    prop()


# -- HTTP submission --------------------------------------------------------------------

@pytest.fixture(scope="module")
def web_game(redis_server, tmp_path_factory):
    def edit(data):
        data["submission"] = {"limits": {"token_failures": 10**6, "request_bytes": 200_000}}

    game = start_web(redis_server.url, tmp_path_factory.mktemp("fuzz-web"), name="fuzzweb", edit=edit,
                     prepare=lambda store: start_at_round(store, 2))
    yield game
    game.stop()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=10), children, max_size=6),
    max_leaves=40,
)


def deep(depth: int, opener: str) -> bytes:
    closer = {"[": "]", "{\"a\":": "}"}[opener]
    return (opener * depth + "1" + closer * depth).encode()


http_bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(st.text(max_size=300), max_size=50).map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=300),
    st.tuples(st.integers(1, 100_000), st.sampled_from(["[", "{\"a\":"])).map(lambda t: deep(*t)),
    st.integers(1, 6000).map(lambda n: json.dumps(["x"] * n).encode()),
    st.integers(150_000, 400_000).map(lambda n: b"[" + b"1," * (n // 2) + b"1]"),
)


def test_http_submission_answers_any_body_with_json_and_never_a_server_error(web_game):
    session = requests.Session()
    token = web_game.token(1)

    @settings(database=None, deadline=None, max_examples=200)
    @given(body=http_bodies, token_kind=st.sampled_from(["team", "missing", "random"]),
           random_token=st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=80))
    def prop(body, token_kind, random_token):
        EXAMPLES["http_put_flags"] += 1
        headers = {"team": {"X-Team-Token": token}, "missing": {},
                   "random": {"X-Team-Token": random_token}}[token_kind]
        reply = session.put(f"{web_game.url}/flags", data=body, headers=headers, timeout=20)
        assert reply.status_code < 500, (reply.status_code, body[:100], reply.text[:300])
        answer = reply.json()
        if reply.status_code == 200:
            flags = json.loads(body)
            assert isinstance(answer, list) and len(answer) == len(flags)
            assert all(set(item) == {"flag", "status", "msg"} for item in answer)
        else:
            assert 400 <= reply.status_code < 500
            assert answer["status"] is False and answer["msg"]

    prop()


# -- config loader ----------------------------------------------------------------------

def valid_game() -> dict:
    data = game_data("redis://127.0.0.1:1/0", teams=2, services=1)
    data["deploy"] = {"address_scheme": "127.0.{team}.1", "network_scheme": "127.0.{team}.0/24"}
    data["submission"] = {"limits": {"line_length": 256}}
    return data


def damage(data: dict, path: list, value) -> tuple[dict, str]:
    """Set the entry at `path` (keys or list positions, clipped to what exists) to `value`;
    return the damaged data and the top-level section touched."""
    data = copy.deepcopy(data)
    node = data
    for step in path[:-1]:
        if isinstance(node, dict) and node:
            key = list(node)[step % len(node)]
        elif isinstance(node, list) and node:
            key = step % len(node)
        else:
            break
        if not isinstance(node[key], dict | list):
            break
        node = node[key]
    if isinstance(node, dict):
        key = list(node)[path[-1] % len(node)] if node and path[-1] % 3 else f"extra{path[-1]}"
        node[key] = value
    elif isinstance(node, list):
        node.append(value)
    return data, next(iter(k for k in data if k in yaml.safe_dump(data)))


config_values = st.one_of(
    json_values, st.text(max_size=20), st.sampled_from(["{x}", "{0}", "{team:q}", "{team.real}", "{", "}{"]),
    st.integers(-10, 70000), st.just([]), st.just({}), st.floats(allow_nan=True),
)


def test_damaged_game_dicts_raise_config_error_naming_the_key():
    sections = {"game", "teams", "services", "submission", "web", "deploy", "redis_url"}

    @settings(database=None, max_examples=400, deadline=None)
    @given(path=st.lists(st.integers(0, 50), min_size=1, max_size=5), value=config_values)
    def prop(path, value):
        EXAMPLES["config_dict"] += 1
        data, _ = damage(valid_game(), path, value)
        try:
            parse_config(data, "game.yml")
        except ConfigError as exc:
            message = str(exc)
            assert message.startswith("game.yml: ")
            assert any(s in message for s in sections) or "(top level)" in message or "extra" in message, message

    prop()


def test_bad_address_schemes_raise_config_error_naming_the_scheme():
    @settings(database=None, max_examples=300, deadline=None)
    @given(field=st.sampled_from(["address_scheme", "network_scheme"]), team_id=st.integers(4, 4095),
           value=st.one_of(st.text(max_size=30), st.sampled_from(["{x}", "{0}", "{team:q}", "{", "10.{team}.0.0/16"])))
    def prop(field, team_id, value):  # field: the scheme damaged; team ids past 255 break the default
        EXAMPLES["config_schemes"] += 1
        data = valid_game()
        data["deploy"][field] = value
        data["teams"][0]["id"] = team_id
        try:
            parse_config(data, "game.yml")
        except ConfigError as exc:
            assert "deploy." in str(exc) and "scheme" in str(exc), str(exc)

    prop()


def test_random_yaml_text_raises_config_error_naming_a_line_or_key():
    base = yaml.safe_dump(valid_game())

    @settings(database=None, max_examples=300, deadline=None)
    @given(text=st.one_of(st.text(max_size=300), st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
                          st.tuples(st.integers(0, len(base)), st.text(max_size=20)).map(
                              lambda t: base[: t[0]] + t[1] + base[t[0]:])))
    def prop(text):
        EXAMPLES["config_yaml"] += 1
        with tempfile.TemporaryDirectory() as work:
            path = Path(work) / "game.yml"
            path.write_text(text, encoding="utf-8", errors="surrogateescape")
            try:
                load_config(path)
            except ConfigError as exc:
                message = str(exc)
                assert message.startswith(str(path))
                assert "line" in message or "top level" in message or ": " in message.removeprefix(str(path) + ":")

    prop()


# -- flag verifier ----------------------------------------------------------------------

CODECS = [FlagCodec("fuzz-secret-0123456789"), FlagCodec("fuzz-secret-0123456789", prefix="CTF")]


@settings(database=None, max_examples=2000, deadline=None)
@given(text=st.one_of(st.text(max_size=80), st.binary(max_size=80),
                      st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567=", min_size=30, max_size=34),
                      st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=31, max_size=31).map(
                          lambda s: s + "=")),
       codec=st.sampled_from(CODECS))
def test_random_text_never_verifies_and_raises_only_flag_error(text, codec):
    EXAMPLES["flag_random"] += 1
    with pytest.raises(FlagError):
        codec.verify(text)
    wrapped = f"CTF{{{text}}}" if isinstance(text, str) else b"CTF{" + text + b"}"
    with pytest.raises(FlagError):
        codec.verify(wrapped)


@settings(database=None, max_examples=2000, deadline=None)
@given(round_=st.integers(0, 2**24 - 1), team=st.integers(0, 4095), service=st.integers(0, 255),
       slot=st.integers(0, 15), position=st.integers(0, 40), char=st.characters(max_codepoint=0x2FF),
       codec=st.sampled_from(CODECS))
def test_one_character_changed_in_a_real_flag_never_verifies(round_, team, service, slot, position, char, codec):
    EXAMPLES["flag_mutated"] += 1
    flag = codec.generate(round_, team, service, slot)
    assert codec.verify(flag).round == round_
    position %= len(flag)
    mutated = flag[:position] + char + flag[position + 1:]
    if mutated != flag:
        with pytest.raises(FlagError):
            codec.verify(mutated)
