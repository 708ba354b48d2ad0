"""The web server under a connection flood: half-sent requests from two teams' networks
while a third team keeps using the board API and ``PUT /flags``.

Starts a private redis-server and the real `web` process under an open-file limit, then a
flood from spawned client processes: `--addresses` source addresses split over the
networks of teams 1 and 2, each holding `--per-address` connections that send a request
line and one header, then trickle one byte of a header every few seconds and never end
the headers, reconnecting whenever the server refuses (503) or cuts one. Meanwhile team 3
runs two clients (a fresh connection per request, and one kept alive) that alternate
``GET /api/round`` and ``PUT /flags`` with a batch of flags. Prints the third team's
request latency (p50 / p99 / max), its failures, what the flood was refused and cut, the
server's refusal and timeout counters (as published to Redis for /metrics), its CPU per
refused connection (measured while only the flood runs), its most open files and its
memory, as ``BENCH web_flood_... <value> <unit>`` lines.

`HttpFlood`, `Visitor` and `flooded_web` are also the test suite's (tests/test_web_flood.py).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from deploy.redis_server import RedisServer
from tests.bench.common import bench, cpu_seconds
from tests.bench.flood import FARM_TIMEOUT, Flood, FloodLoop, flood_sources, open_files, percentile, stop_clients
from tests.fault_helpers import ROUND, flag_stream
from tests.game_helpers import start_at_round
from tests.web_helpers import WebGame, start_web

console = Console(stderr=True)
REQUEST_HEAD = b"GET /api/round HTTP/1.1\r\nHost: adrange\r\nX-Slow: "  # the headers never end
VISITOR_TEAM = 3


class HttpFloodLoop(FloodLoop):
    """Half-sent HTTP requests: the request line and the start of a header at once, then one
    more header byte per trickle; a 503 is a refusal, a close without one a cut (the
    server's header deadline)."""

    def __init__(self, port: int, trickle: float, reconnect: float) -> None:
        super().__init__(port, trickle, reconnect)
        self.refused: set[socket.socket] = set()  # open sockets that got the server's 503

    def opened(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):  # on loopback the connection is usually up already
            sock.send(REQUEST_HEAD)
            self.held[sock] = True

    def received(self, sock: socket.socket, data: bytes) -> None:
        if data.startswith(b"HTTP/1.1 503"):
            self.refused.add(sock)
            self.stats["refused"] += 1
        else:
            self.stats["answered"] += 1  # a 400 or 408: the server gave up on it

    def trickled(self, sock: socket.socket) -> None:
        sock.send(b"x" if self.held[sock] else REQUEST_HEAD)
        self.held[sock] = True

    def ended(self, sock: socket.socket, held: bool) -> None:
        if sock in self.refused:
            self.refused.discard(sock)
        else:
            self.stats["cut"] += 1


class HttpFlood(Flood):
    """`Flood` of half-sent HTTP requests (`HttpFloodLoop`); its status counts connects,
    open, refused (503), cut, answered, errors."""

    def __init__(self, port: int, sources: list[str], per_source: int, processes: int = 1,
                 trickle: float = 1.0, reconnect: float = 1.0) -> None:
        super().__init__(port, sources, per_source, processes, trickle, reconnect, loop=HttpFloodLoop)


class Visitor(threading.Thread):
    """One of the third team's clients: ``GET /api/round`` and ``PUT /flags`` (a batch of
    flags) in turn, over a fresh connection each or one kept alive.

    Notes every request's latency and every failure: a timeout after `FARM_TIMEOUT` (a
    farm gives up then), a closed connection, a status other than 200, a verdict list of
    the wrong length.
    """

    def __init__(self, port: int, source: str, token: str, flags: Iterator[str], keep_alive: bool = False,
                 batch: int = 20, pause: float = 0.05) -> None:
        super().__init__(daemon=True, name=f"visitor-{source}")
        self.port, self.source, self.token, self.flags = port, source, token, flags
        self.keep_alive, self.batch, self.pause = keep_alive, batch, pause
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.accepted = 0
        self.stop = threading.Event()
        self._conn: http.client.HTTPConnection | None = None

    def _request(self, method: str, path: str, body: str | None) -> Any:
        if self._conn is None:
            self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=FARM_TIMEOUT,
                                                    source_address=(self.source, 0))
        headers = {"X-Team-Token": self.token, "Content-Type": "application/json"} if body is not None else {}
        self._conn.request(method, path, body=body, headers=headers)
        reply = self._conn.getresponse()
        data = reply.read()
        if reply.status != 200:
            raise RuntimeError(f"{method} {path}: {reply.status} {data[:100]!r}")
        return json.loads(data)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def run(self) -> None:
        while not self.stop.is_set():
            flags = [next(self.flags) for _ in range(self.batch)]
            for method, path, body in (("GET", "/api/round", None), ("PUT", "/flags", json.dumps(flags))):
                start = time.perf_counter()
                try:
                    answer = self._request(method, path, body)
                    if method == "PUT":
                        if len(answer) != len(flags):
                            raise RuntimeError(f"{len(answer)} verdicts for {len(flags)} flags")
                        self.accepted += sum(1 for verdict in answer if verdict["status"])
                except (OSError, http.client.HTTPException, RuntimeError, ValueError) as exc:
                    self.failures.append(f"{method} {path}: {type(exc).__name__}: {exc}"[:200])
                    self._close()
                    continue
                self.latencies.append(time.perf_counter() - start)
                if not self.keep_alive:
                    self._close()
                time.sleep(self.pause)
        self._close()


def start_visitors(web: WebGame, team: int = VISITOR_TEAM) -> list[Visitor]:
    """The team's two clients (fresh connections, one kept alive), started."""
    port = int(web.url.rsplit(":", 1)[1])
    flags = [itertools.islice(flag_stream(web.config, team), start, None, 2) for start in (0, 1)]  # disjoint
    visitors = [Visitor(port, f"127.0.{team}.7", web.token(team), flags[0]),
                Visitor(port, f"127.0.{team}.8", web.token(team), flags[1], keep_alive=True)]
    for visitor in visitors:
        visitor.start()
    return visitors


def stop_visitors(visitors: list[Visitor]) -> list[float]:
    """Stop the clients; all their request latencies, sorted."""
    return stop_clients(visitors)


def flooded_web(redis_url: str, work: Path, files: int, **web: Any) -> WebGame:
    """`adrange web` for a game (5 teams) running at round ROUND, restarted under an
    open-file limit of `files`, with these `web` settings."""
    game = start_web(redis_url, work, teams=5, flag_lifetime=ROUND, web=web,
                     edit=lambda data: data.setdefault("submission", {}).update(limits={"rate_per_team": 10**6}),
                     prepare=lambda store: start_at_round(store, ROUND))
    game.process.kill()
    game.process.args[:0] = ["prlimit", f"--nofile={files}:{files}"]
    game.process.start(("127.0.0.1", int(game.url.rsplit(":", 1)[1])))
    return game


def rss_mib(pid: int) -> float:
    """A process's resident memory, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def edge_counters(web: WebGame) -> dict[str, int]:
    """The web edge's counters as published to Redis (web_refused:<reason>, web_timeout:<kind>, ...)."""
    return {k: v for k, v in web.store.stats().items() if k.startswith("web_")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=360, help="flood source addresses (two teams' /24s)")
    parser.add_argument("--per-address", type=int, default=56, help="connections per flood address")
    parser.add_argument("--files", type=int, default=20000, help="web process's open-file limit")
    parser.add_argument("--seconds", type=float, default=30, help="the third team's time under the flood")
    parser.add_argument("--processes", type=int, default=4, help="flood client processes")
    parser.add_argument("--reconnect", type=float, default=1.0, help="seconds before the flood reopens a connection")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="adrange-bench-webflood-"))
    (work / "redis").mkdir()
    server = RedisServer(work / "redis").start()
    web = flooded_web(server.url, work, args.files)
    pid = web.process.proc.pid  # type: ignore[union-attr]
    flood: HttpFlood | None = None
    try:
        memory_before = rss_mib(pid)
        wanted = args.addresses * args.per_address
        console.log(f"flood: {wanted} connections from {args.addresses} addresses in teams 1 and 2's networks")
        flood = HttpFlood(int(web.url.rsplit(":", 1)[1]), flood_sources(args.addresses // 2), args.per_address,
                          args.processes, trickle=5.0, reconnect=args.reconnect)
        console.log(f"flood up: {flood.wait_connected(wanted)}")
        refused_before = sum(v for k, v in edge_counters(web).items() if k.startswith("web_refused:"))
        cpu_before = cpu_seconds(pid)
        time.sleep(5)  # the flood alone: the server's CPU per refused connection
        refused_alone = sum(v for k, v in edge_counters(web).items() if k.startswith("web_refused:")) - refused_before
        refusal_cpu = (cpu_seconds(pid) - cpu_before) / max(1, refused_alone)
        visitors = start_visitors(web)
        most_files, most_memory, end = 0, 0.0, time.monotonic() + args.seconds
        while time.monotonic() < end:
            most_files, most_memory = max(most_files, open_files(pid)), max(most_memory, rss_mib(pid))
            time.sleep(1)
        took = stop_visitors(visitors)
        status = flood.stop()
        flood = None
        time.sleep(1.5)  # the server publishes its counters every second
        counters = edge_counters(web)
        failures = [f for visitor in visitors for f in visitor.failures]
        console.log(f"team {VISITOR_TEAM}: {len(took)} requests, {len(failures)} failures {failures[:3]}; "
                    f"flood: {status}; server: {counters}")
        bench("web_flood_p50", percentile(took, 0.5) * 1000, "ms")
        bench("web_flood_p99", percentile(took, 0.99) * 1000, "ms")
        bench("web_flood_max", took[-1] * 1000, "ms")
        bench("web_flood_requests", len(took), "requests")
        bench("web_flood_failures", len(failures), "failures")
        bench("web_flood_refused", sum(v for k, v in counters.items() if k.startswith("web_refused:")), "connections")
        bench("web_flood_header_timeouts", counters.get("web_timeout:header", 0), "connections")
        bench("web_flood_refusal_cpu", refusal_cpu * 1e6, "us")
        bench("web_flood_server_files", most_files, "files")
        bench("web_flood_server_rss", most_memory, "MiB")
        bench("web_flood_server_rss_growth", most_memory - memory_before, "MiB")
        assert not failures, failures[:5]
    finally:
        if flood is not None:
            flood.stop()
        web.stop()
        server.cleanup()


if __name__ == "__main__":
    main()
