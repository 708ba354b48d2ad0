"""Slow-connection floods for benchmarks and tests: many nonblocking connections from
many loopback source addresses, in spawned processes, each held open, trickled and
reopened when the server closes or refuses it (`Flood`, with a `FloodLoop` per protocol),
and the helpers both flood benchmarks share."""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import resource
import selectors
import socket
import time
from collections import Counter, deque
from multiprocessing.connection import Connection

FARM_TIMEOUT = 5.0  # farms give up on a reply after 2-5 s (DESIGN section 6)
FAUST_GREETING = b"adrange flag submission\nOne flag per line please!\n\n"
CONNECT_BURST = 200  # new flood connections started per pass of the flood loop


def raise_file_limit(wanted: int) -> None:
    """Let this process open `wanted` files: soft limit up to the hard one (and the hard one too as root)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if wanted > hard and os.geteuid() == 0:
        hard = wanted
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(wanted, hard)), hard))


class FloodLoop:
    """One flood process: nonblocking connections from given sources, each held, trickled
    every `trickle` seconds and opened again `reconnect` seconds after the server closes it.

    The hooks say what a connection sends and what the server's bytes mean; these are
    faust's: nothing is sent first, a greeting admits the connection (`held`), anything
    else is a refusal, and a held connection trickles one byte and never ends a line.
    Subclass for another protocol and pass the class to `Flood`.
    """

    def __init__(self, port: int, trickle: float, reconnect: float) -> None:
        self.port, self.trickle, self.reconnect = port, trickle, reconnect
        self.selector = selectors.DefaultSelector()
        self.held: dict[socket.socket, bool] = {}  # open socket -> admitted by the server
        self.due: deque[tuple[float, str]] = deque()  # (when, source) of connections to (re)open
        self.stats: Counter[str] = Counter()

    def opened(self, sock: socket.socket) -> None:
        """A connection just started (connecting)."""

    def received(self, sock: socket.socket, data: bytes) -> None:
        """Bytes from the server on an open connection."""
        if not self.held[sock]:
            if data.startswith(FAUST_GREETING[:7]):
                self.held[sock] = True
            else:
                self.stats["refused"] += 1  # one line, then the server closes

    def trickled(self, sock: socket.socket) -> None:
        """The next slow byte on an open connection."""
        if self.held[sock]:
            sock.send(b"A")

    def ended(self, sock: socket.socket, held: bool) -> None:
        """The server closed a connection (which it had admitted or not)."""
        self.stats["dropped" if held else "closed_unheld"] += 1

    def status(self) -> dict[str, int]:
        return {**self.stats, "open": len(self.held), "held": sum(self.held.values())}

    def connect(self, now: float) -> None:
        started = 0
        while self.due and self.due[0][0] <= now and started < CONNECT_BURST:
            source = self.due.popleft()[1]
            sock = socket.socket()
            sock.setblocking(False)
            try:
                sock.bind((source, 0))
                sock.connect_ex(("127.0.0.1", self.port))
            except OSError:
                sock.close()
                self.stats["errors"] += 1
                self.due.append((now + self.reconnect, source))
                continue
            self.selector.register(sock, selectors.EVENT_READ, source)
            self.held[sock] = False
            self.opened(sock)
            self.stats["connects"] += 1
            started += 1

    def read(self, now: float) -> None:
        for key, _ in self.selector.select(timeout=0.02):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                self.received(sock, data)
                continue
            self.selector.unregister(sock)
            sock.close()
            self.ended(sock, self.held.pop(sock))
            self.due.append((now + self.reconnect, key.data))

    def send_trickle(self) -> None:
        for sock in self.held:
            with contextlib.suppress(OSError):
                self.trickled(sock)

    def run(self, sources: list[str], per_source: int, pipe: Connection) -> None:
        raise_file_limit(len(sources) * per_source + 256)
        self.due.extend((0.0, source) for _ in range(per_source) for source in sources)
        next_trickle = time.monotonic() + self.trickle
        while True:
            now = time.monotonic()
            self.connect(now)
            self.read(now)
            if now >= next_trickle:
                self.send_trickle()
                next_trickle = now + self.trickle
            if pipe.poll():
                command = pipe.recv()
                if command == "stop":
                    for sock in self.held:
                        sock.close()
                    pipe.send(self.status())
                    return
                pipe.send(self.status())


def _flood(loop: type[FloodLoop], port: int, sources: list[str], per_source: int, trickle: float,
           reconnect: float, pipe: Connection) -> None:
    loop(port, trickle, reconnect).run(sources, per_source, pipe)


class Flood:
    """Slow connections from `sources` (`per_source` each) in spawned processes, each
    process running a `loop` (a `FloodLoop` class: faust's by default).

    Held connections trickle every `trickle` seconds; a connection the server refuses or
    closes is opened again `reconnect` seconds later.
    """

    def __init__(self, port: int, sources: list[str], per_source: int, processes: int = 1,
                 trickle: float = 1.0, reconnect: float = 1.0, loop: type[FloodLoop] = FloodLoop) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.workers = []
        for index in range(processes):
            mine, theirs = ctx.Pipe()
            worker = ctx.Process(target=_flood, daemon=True, args=(
                loop, port, sources[index::processes], per_source, trickle, reconnect, theirs))
            worker.start()
            self.pipes.append(mine)
            self.workers.append(worker)

    def _ask(self, command: str) -> dict[str, int]:
        for pipe in self.pipes:
            pipe.send(command)
        total: Counter[str] = Counter()
        for pipe in self.pipes:
            total.update(pipe.recv())
        return dict(total)

    def status(self) -> dict[str, int]:
        """Summed over the processes: what their loops count (faust's: connects, open, held, refused,
        dropped, closed_unheld, errors)."""
        return self._ask("status")

    def wait_connected(self, wanted: int, timeout: float = 120.0) -> dict[str, int]:
        """Wait until the flood has opened `wanted` connections (each tried once at least, refused
        or not); its status then."""
        deadline = time.monotonic() + timeout
        while (status := self.status()).get("connects", 0) < wanted and time.monotonic() < deadline:
            time.sleep(0.25)
        return status

    def stop(self) -> dict[str, int]:
        """Close every connection and end the processes; the last status."""
        final = self._ask("stop")
        for worker in self.workers:
            worker.join(30)
            if worker.is_alive():
                worker.kill()
        return final


def percentile(values: list[float], share: float) -> float:
    """The `share` (0-1) quantile of sorted `values` (NaN for none)."""
    return values[min(len(values) - 1, int(len(values) * share))] if values else math.nan


def flood_sources(per_team: int, teams: tuple[int, ...] = (1, 2)) -> list[str]:
    """`per_team` loopback addresses inside each team's default network 127.0.T.0/24."""
    return [f"127.0.{team}.{10 + i}" for team in teams for i in range(per_team)]


def open_files(pid: int) -> int:
    """How many files a process has open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def stop_clients(clients: list) -> list[float]:
    """Stop client threads (each with a `stop` event and its `latencies`); all their latencies, sorted."""
    for client in clients:
        client.stop.set()
    for client in clients:
        client.join(FARM_TIMEOUT * 3)
    return sorted(t for client in clients for t in client.latencies)
