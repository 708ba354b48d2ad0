"""Connection floods and slow clients against the web server (the real `web` process).

A flood of half-sent requests from two teams' networks, larger than the server's
open-file limit (as in a trial where 21,000 of them exhausted it), must leave a third
team's ``GET /api/round`` and ``PUT /flags`` answered, the server's files and memory
bounded and its refusals counted; a header trickled a byte a second is cut at the header
deadline, a trickled body gets 408 at the body deadline, an idle kept-alive connection is
closed; a websocket spectator outlives all of these; and accept() failures pause
accepting and are logged once per interval, gevent's formatted errors once per logger.
Figures are printed with ``pytest -s``.
"""

from __future__ import annotations

import errno
import logging
import select
import socket
import time

import pytest

from scoreboard.budgets import ThrottledLog
from scoreboard.web.guard import AcceptPaused, EdgeServer
from tests.bench.bench_web_flood import HttpFlood, edge_counters, flooded_web, rss_mib, start_visitors, stop_visitors
from tests.bench.flood import FARM_TIMEOUT, flood_sources, open_files, percentile, raise_file_limit
from tests.web_helpers import Spectator

FILES = 4096  # the web process's open-file limit here, so that a test-scale flood passes it
PER_ADDRESS = 50  # 100 addresses hold 5,000 connections, more than FILES
DEADLINE = 3.0  # header, body and idle timeouts of this module's server
PER_SOURCE = 64
PER_NETWORK = 1024  # two flooded networks hold 2,048, well under the total cap (FILES less 256)


@pytest.fixture(scope="module")
def web(redis_server, tmp_path_factory):
    raise_file_limit(3 * FILES)  # this process's clients
    game = flooded_web(redis_server.url, tmp_path_factory.mktemp("webflood"), FILES, header_timeout=DEADLINE,
                       body_timeout=DEADLINE, idle_timeout=DEADLINE, connections_per_source=PER_SOURCE,
                       connections_per_network=PER_NETWORK)
    yield game
    game.stop()


def port_of(web) -> int:
    return int(web.url.rsplit(":", 1)[1])


def connect(web, source: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port_of(web)), timeout=10, source_address=(source, 0))


def closed_after(sock: socket.socket, trickle: bytes, every: float = 1.0, limit: float = 15) -> tuple[float, bytes]:
    """Send `trickle` a byte every `every` seconds until the server closes; (seconds, what it sent)."""
    start, got, sent = time.monotonic(), b"", 0
    while time.monotonic() - start < limit:
        if sent < len(trickle):
            try:
                sock.send(trickle[sent:sent + 1])
            except OSError:
                break
            sent += 1
        readable, _, _ = select.select([sock], [], [], every)
        if readable:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            got += chunk
    return time.monotonic() - start, got


def test_a_flood_from_two_team_networks_leaves_a_third_team_answered(web):
    pid = web.process.proc.pid
    memory_before = rss_mib(pid)
    sources = flood_sources(50)
    flood = HttpFlood(port_of(web), sources, PER_ADDRESS, reconnect=2.0)
    try:
        flood.wait_connected(len(sources) * PER_ADDRESS)
        visitors = start_visitors(web)
        most_files, most_memory, end = 0, 0.0, time.monotonic() + 10
        while time.monotonic() < end:
            most_files, most_memory = max(most_files, open_files(pid)), max(most_memory, rss_mib(pid))
            time.sleep(0.5)
        took = stop_visitors(visitors)
        status = flood.status()
    finally:
        flood.stop()
    time.sleep(1.5)  # the server publishes its counters every second
    counters = edge_counters(web)
    failures = [failure for visitor in visitors for failure in visitor.failures]
    print(f"\nWEB FLOOD {len(sources) * PER_ADDRESS} half-sent requests from {len(sources)} addresses of teams 1 "
          f"and 2: team 3's request p50 {percentile(took, 0.5) * 1000:.0f} ms, p99 {percentile(took, 0.99) * 1000:.0f}"
          f" ms, max {took[-1] * 1000:.0f} ms over {len(took)} requests ({len(failures)} failures); flood {status}; "
          f"server {counters}, open files at most {most_files} of {FILES}, "
          f"memory {memory_before:.0f} -> at most {most_memory:.0f} MiB")
    assert not failures, failures[:5]
    assert len(took) >= 50 and took[-1] < FARM_TIMEOUT
    assert sum(visitor.accepted for visitor in visitors) > 0
    assert most_files < FILES - 128
    assert most_memory - memory_before < 150
    assert status["refused"] > 0 and counters.get("web_refused:too many connections from your network", 0) > 0
    assert counters.get("web_timeout:header", 0) > 0  # the held ones were cut at the header deadline


def test_connections_past_the_per_source_cap_get_a_503_at_once(web):
    held = [connect(web, "127.0.4.20") for _ in range(PER_SOURCE)]
    try:
        time.sleep(0.3)  # all admitted
        extra = connect(web, "127.0.4.20")
        extra.settimeout(2)
        answer = extra.recv(4096)
        assert answer.startswith(b"HTTP/1.1 503 ") and answer.endswith(b"too many connections from your address\n")
        assert extra.recv(4096) == b""  # and closed
        other = connect(web, "127.0.4.21")  # another address of the same network is not held up
        other.sendall(b"GET /api/round HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        other.settimeout(5)
        assert other.recv(4096).startswith(b"HTTP/1.1 200")
    finally:
        for sock in held:
            sock.close()


def test_a_header_trickled_a_byte_a_second_is_cut_at_the_header_timeout(web):
    sock = connect(web, "127.0.4.9")
    sock.sendall(b"GET /api/round HTTP/1.1\r\nHost: adrange\r\n")
    took, got = closed_after(sock, b"X-Slow: " + b"x" * 30)  # a header that never ends
    assert got == b"" and DEADLINE - 0.5 <= took <= DEADLINE + 2.5, (took, got)


def test_a_body_trickled_a_byte_a_second_gets_408_at_the_body_timeout(web):
    sock = connect(web, "127.0.4.10")
    sock.sendall(f"PUT /flags HTTP/1.1\r\nHost: adrange\r\nX-Team-Token: {web.token(4)}\r\n"
                 "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n[".encode())
    took, got = closed_after(sock, b'"' + b"A" * 60)
    assert got.startswith(b"HTTP/1.1 408 ") and DEADLINE - 0.5 <= took <= DEADLINE + 2.5, (took, got)


def test_an_idle_kept_alive_connection_is_closed_at_the_idle_timeout(web):
    sock = connect(web, "127.0.4.11")
    sock.sendall(b"GET /api/round HTTP/1.1\r\nHost: adrange\r\n\r\n")
    took, got = closed_after(sock, b"")
    assert got.startswith(b"HTTP/1.1 200 ") and DEADLINE - 0.5 <= took <= DEADLINE + 2.5, (took, got[:40])


def test_a_websocket_spectator_outlives_every_deadline(web):
    spectator = Spectator(web.url).connect()
    try:
        spectator.wait_for("board")
        time.sleep(3 * DEADLINE + 1)
        assert spectator.client.connected
        web.store.add_announcement("still there?", "admin")
        assert spectator.wait_for("announcement", lambda data: data["text"] == "still there?")
    finally:
        spectator.close()


class _FailingListener:
    """A listening socket whose accept() fails as with no file left."""

    timeout = 0.0

    def _accept(self):
        raise OSError(errno.EMFILE, "Too many open files")


def test_accept_failures_pause_accepting_and_are_logged_once_per_interval(web, caplog):
    server = EdgeServer(("127.0.0.1", 0), lambda environ, start: [], web.config.web, _Directory(), web.store)
    server.socket = _FailingListener()
    with caplog.at_level(logging.ERROR, logger="adrange.web.edge"):
        for _ in range(50):
            with pytest.raises(AcceptPaused):
                server.do_read()
    assert server.stats.accept_errors == 50
    failures = [r for r in caplog.records if r.getMessage().startswith("accept() failed")]
    assert len(failures) == 1 and "Too many open files" in failures[0].getMessage()


def test_gevents_formatted_errors_are_throttled_per_logger():
    throttle = ThrottledLog(interval=60, per_logger=True)
    records = [logging.LogRecord("adrange.web.http", logging.WARNING, __file__, 1,
                                 f"Invalid request (from ('127.0.1.{n}', 4000)): junk", None, None) for n in range(100)]
    assert [throttle.filter(record) for record in records].count(True) == 1
    assert len(throttle._last) == 1  # nothing remembered per message


class _Directory:
    """A stand-in for the effective game's team directory (no team networks)."""

    def get(self):
        return self

    def network_of(self, address: str) -> None:
        return None
