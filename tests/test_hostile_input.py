"""Hostile clients against the real submission server: thousands of idle connections,
slowloris trickles, and team-token guessing over the forcad dialect and HTTP.

Memory of the server process stays bounded (VmRSS before and after, printed with
``pytest -s``), other teams keep being answered quickly, and token guessing is locked out
per source address and logged.
"""

from __future__ import annotations

import re
import socket
import statistics
import threading
import time

import pytest
import requests

from scoreboard.submission.session import TOKEN_LOCKED
from tests.fault_helpers import flag_stream, rss_kib, start_platform
from tests.game_helpers import start_at_round
from tests.submit_helpers import LineClient, tcp_server
from tests.web_helpers import ADMIN_PASSWORD, start_web

# Farms give up on a reply after 2-5 s and then mis-pair replies (DESIGN section 6).
FARM_TIMEOUT = 2.0

FAUST_GREETING = b"adrange flag submission\nOne flag per line please!\n\n"
IDLE_CONNECTIONS = 2000


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    platform = start_platform(tmp_path_factory.mktemp("hostile"), idle_timeout=60)
    yield platform
    platform.stop()


def submit_latencies(platform, team: int, count: int) -> list[float]:
    """Seconds per single-flag round trip for `count` fresh flags of one team over faust."""
    flags = flag_stream(platform.config, team)
    client = LineClient(platform.ports["faust"], source=f"127.0.{team}.9")
    client.read_exact_text(FAUST_GREETING)
    took = []
    for _ in range(count):
        flag = next(flags)
        start = time.monotonic()
        client.send(f"{flag}\n".encode())
        assert client.line().decode().startswith(f"{flag} OK")
        took.append(time.monotonic() - start)
    client.close()
    return took


def test_two_thousand_idle_connections_keep_memory_bounded_and_others_served(platform):
    pid = platform.submit.proc.pid
    port = platform.ports["faust"]
    submit_latencies(platform, 1, 20)  # warm up
    before = rss_kib(pid)
    idle = []
    for i in range(IDLE_CONNECTIONS):  # 50 per source, 250 per /24: under the per-source and per-network caps
        idle.append(socket.create_connection(("127.0.0.1", port), timeout=10,
                                             source_address=(f"127.0.{200 + i // 250}.{1 + i // 50 % 5}", 0)))
    for sock in idle:
        assert sock.recv(100).startswith(b"adrange")
    held = rss_kib(pid)
    took = submit_latencies(platform, 2, 50)
    for sock in idle:
        sock.close()
    time.sleep(1.0)
    after = rss_kib(pid)
    per_connection = (held - before) / IDLE_CONNECTIONS
    print(f"\nHOSTILE {IDLE_CONNECTIONS} idle connections: submit-server RSS {before} KiB -> {held} KiB held "
          f"({per_connection:.1f} KiB each) -> {after} KiB after closing; others' round trip "
          f"p50 {statistics.median(took) * 1000:.1f} ms, max {max(took) * 1000:.1f} ms")
    assert per_connection < 40
    assert after - before < 40 * 1024
    assert max(took) < FARM_TIMEOUT  # answered before any farm would give up (figures printed above)


def test_slowloris_trickles_do_not_slow_other_teams_and_overlong_ones_are_judged(platform):
    port = platform.ports["ructf"]
    stop = threading.Event()
    trickles = [socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(f"127.0.150.{i}", 0))
                for i in range(1, 201)]
    rounds = [0]

    def trickle() -> None:  # one byte per connection per pass, never a newline
        while not stop.is_set():
            for sock in trickles:
                try:
                    sock.send(b"A")
                except OSError:
                    pass
            rounds[0] += 1
            time.sleep(0.01)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        took = submit_latencies(platform, 3, 100)
        deadline = time.monotonic() + 30
        while rounds[0] <= 300 and time.monotonic() < deadline:  # past the 256-byte line limit
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
    trickles[0].settimeout(5)
    trickles[0].sendall(b"\n")  # the end of its overlong line: judged on what was kept of it
    data = b""
    while data.count(b"\n") < 2 and (chunk := trickles[0].recv(65536)):
        data += chunk
    for sock in trickles:
        sock.close()
    took.sort()
    p99 = took[int(len(took) * 0.99) - 1]
    print(f"\nHOSTILE 200 slowloris trickles: others' round trip p50 {took[len(took) // 2] * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms")
    assert max(took) < FARM_TIMEOUT  # answered before any farm would give up (figures printed above)
    greeting = b"Enter your flags, finished with newline (or empty line to exit)\n"
    assert data == greeting + b"[" + b"A" * 256 + b"] Denied: your address belongs to no team\n"  # not a team's


# -- token guessing -------------------------------------------------------------------------

def forcad_attempt(port: int, source: str, token: str) -> bytes:
    client = LineClient(port, source=source)
    client.read_exact_text(b"Welcome! Please, enter your team token:\n")
    client.send(token.encode() + b"\n")
    answer = client.line()
    closed = client.closed() if answer != b"Now enter your flags, one in a line:" else False
    client.close()
    return answer + (b" (closed)" if closed else b"")


def test_forcad_token_guessing_locks_the_source_out_and_is_logged(make_game, caplog):
    config, store = make_game(teams=2)
    config.submission.limits.token_failures = 5
    config.submission.limits.token_lockout = 1.5
    start_at_round(store, 1)
    token = config.team(1).token
    with tcp_server(config, store) as ports:
        port = ports["forcad"]
        for guess in range(4):
            assert forcad_attempt(port, "127.0.9.1", f"guess-{guess}") == b"Invalid team token (closed)"
        assert forcad_attempt(port, "127.0.9.1", token) == b"Now enter your flags, one in a line:"  # forgives nothing
        assert forcad_attempt(port, "127.0.9.1", "guess-4") == b"Invalid team token (closed)"
        locked = forcad_attempt(port, "127.0.9.1", token)
        assert locked == TOKEN_LOCKED.rstrip(b"\n") + b" (closed)"
        assert forcad_attempt(port, "127.0.9.2", token) == b"Now enter your flags, one in a line:"
        time.sleep(1.6)
        assert forcad_attempt(port, "127.0.9.1", token) == b"Now enter your flags, one in a line:"
    assert any("127.0.9.1 locked out" in r.getMessage() for r in caplog.records)


def test_http_token_guessing_gets_429_and_is_logged(redis_server, tmp_path):
    def edit(data):
        data["submission"] = {"limits": {"token_failures": 5, "token_lockout": 1.5}}

    game = start_web(redis_server.url, tmp_path, edit=edit, prepare=lambda store: start_at_round(store, 1))
    try:
        def put(token):
            return requests.put(f"{game.url}/flags", json=[], headers={"X-Team-Token": token}, timeout=5)

        codes = [put(f"guess-{i}").status_code for i in range(5)]
        assert codes == [401] * 5
        locked = put(game.token(1))
        assert locked.status_code == 429 and "too many wrong credentials" in locked.json()["msg"]
        time.sleep(1.6)
        assert put(game.token(1)).status_code == 200
    finally:
        game.stop()
    log = " ".join(game.process.log_path.read_text().split())  # the console log wraps lines
    assert "127.0.0.1 locked out for 1.5s after wrong team token" in log


@pytest.mark.parametrize("door", ["portal_login", "admin_login", "team_api", "admin_basic"])
def test_guessing_through_any_login_door_is_locked_out_and_logged(redis_server, tmp_path, door):
    def edit(data):
        data["submission"] = {"limits": {"token_failures": 4, "token_lockout": 30}}

    game = start_web(redis_server.url, tmp_path, edit=edit, prepare=lambda store: start_at_round(store, 1))
    try:
        def attempt(secret: str) -> requests.Response:
            session = requests.Session()
            if door in ("portal_login", "admin_login"):
                page = "/team/login" if door == "portal_login" else "/admin/login"
                form = session.get(game.url + page, timeout=5).text
                csrf = re.search(r'name="csrf" value="([^"]+)"', form)
                field = "token" if door == "portal_login" else "password"
                return session.post(game.url + page, data={field: secret, "csrf": csrf.group(1) if csrf else ""},
                                    allow_redirects=False, timeout=5)
            if door == "team_api":
                return session.get(game.url + "/api/team/status", headers={"X-Team-Token": secret}, timeout=5)
            return session.get(game.url + "/admin/api/board", auth=("admin", secret), timeout=5)

        assert all(attempt(f"guess-{i}").status_code != 429 for i in range(4))
        right = game.token(1) if door in ("portal_login", "team_api") else ADMIN_PASSWORD
        assert attempt(right).status_code == 429  # even the right secret waits out the lockout
    finally:
        game.stop()
    assert "locked out for 30s" in game.process.log_path.read_text()
