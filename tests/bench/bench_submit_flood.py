"""Flag submission under a connection flood: slow connections from two teams' networks
while a third team's farms keep submitting.

Starts a private redis-server, the real `web` and `submit-server` processes (the latter
under an open-file limit, as in a real deployment), then a flood from spawned client
processes: `--addresses` source addresses split over the networks of teams 1 and 2, each
holding `--per-address` faust connections that trickle one byte at a time and never end
a line, reconnecting whenever the server closes or refuses one. Meanwhile team 3 runs two
farms: one connection per batch, and one long-lived connection. Prints the farms' batch
round trip (p50 / p99 / max), what the flood held and was refused, the server's refusal
counters (as published to Redis for /metrics), its CPU per refused connection (measured
while only the flood runs), its most open files and how full the host's connection-tracking
table got (a full one drops everyone's new connections in the kernel), as
``BENCH submit_flood_... <value> <unit>`` lines.

`Farm` and `flooded_platform` are also the test suite's (tests/test_submit_flood.py); the
flood itself is `tests.bench.flood`.
"""

from __future__ import annotations

import argparse
import itertools
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

from tests.bench.common import bench, cpu_seconds
from tests.bench.flood import (
    FARM_TIMEOUT,
    FAUST_GREETING,
    Flood,
    flood_sources,
    open_files,
    percentile,
    raise_file_limit,
    stop_clients,
)
from tests.fault_helpers import Platform, flag_stream, start_platform

console = Console(stderr=True)


class Farm(threading.Thread):
    """One team's farm over faust: batches of fresh flags, either a connection per batch
    (connect, greeting, batch, replies, close) or one long-lived connection.

    Notes each batch's round trip (a per-batch connection's includes its connect) and
    every failure: a timeout after `FARM_TIMEOUT`, a closed connection, a reply that is
    not the flag's `OK`.
    """

    def __init__(self, port: int, source: str, flags: Iterator[str], batch: int = 20,
                 pause: float = 0.05, long_lived: bool = False) -> None:
        super().__init__(daemon=True, name=f"farm-{source}")
        self.port, self.source, self.flags = port, source, flags
        self.batch, self.pause, self.long_lived = batch, pause, long_lived
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.answered = 0
        self.step = ""  # what the farm was doing: connect, greeting, replies
        self.stop = threading.Event()
        self._sock: socket.socket | None = None
        self._buffer = b""

    def _read_until(self, end: bytes) -> bytes:
        assert self._sock is not None
        while end not in self._buffer:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed by the server after {self._buffer[:80]!r}")
            self._buffer += chunk
        got, _, self._buffer = self._buffer.partition(end)
        return got

    def _exchange(self, flags: list[str]) -> list[str]:
        if self._sock is None:
            self.step = "connect"
            self._sock = socket.create_connection(("127.0.0.1", self.port), timeout=FARM_TIMEOUT,
                                                  source_address=(self.source, 0))
            self._buffer = b""
            self.step = "greeting"
            self._read_until(FAUST_GREETING)
        self.step = "replies"
        self._sock.sendall("".join(f"{flag}\n" for flag in flags).encode())
        return [self._read_until(b"\n").decode() for _ in flags]

    def _disconnect(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def run(self) -> None:
        while not self.stop.is_set():
            flags = [next(self.flags) for _ in range(self.batch)]
            start = time.perf_counter()
            try:
                replies = self._exchange(flags)
            except (OSError, UnicodeDecodeError) as exc:
                self.failures.append(f"{self.step}: {type(exc).__name__}: {exc}"[:160])
                self._disconnect()
                continue
            self.latencies.append(time.perf_counter() - start)
            self.answered += len(flags)
            self.failures.extend(reply for flag, reply in zip(flags, replies, strict=True)
                                 if not reply.startswith(f"{flag} OK"))
            if not self.long_lived:
                self._disconnect()
            time.sleep(self.pause)
        self._disconnect()


def start_farms(platform: Platform, team: int) -> list[Farm]:
    """Team `team`'s two farms (a connection per batch, one long-lived), started."""
    flags = [itertools.islice(flag_stream(platform.config, team), start, None, 2) for start in (0, 1)]  # disjoint
    port = platform.ports["faust"]
    farms = [Farm(port, f"127.0.{team}.7", flags[0]),
             Farm(port, f"127.0.{team}.8", flags[1], batch=5, long_lived=True)]
    for farm in farms:
        farm.start()
    return farms


def stop_farms(farms: list[Farm]) -> list[float]:
    """Stop the farms; all their batch round trips, sorted."""
    return stop_clients(farms)


def flooded_platform(work: Path, files: int, **limits: float) -> Platform:
    """`start_platform` (5 teams), its submit-server restarted under an open-file limit of `files`."""
    platform = start_platform(work, **limits)
    platform.submit.kill()
    platform.submit.args[:0] = ["prlimit", f"--nofile={files}:{files}"]
    platform.restart_submit()
    return platform


def refusals(platform: Platform) -> dict[str, int]:
    """The TCP server's refusal counters as published to Redis (reason -> count)."""
    stats = platform.store.stats()
    return {k.removeprefix("tcp_refused:"): v for k, v in stats.items() if k.startswith("tcp_refused:")}


def conntrack_use() -> float:
    """How full the host's firewall connection-tracking table is (0-1; 0 without one).

    When it is full the kernel drops new connections' packets, anyone's, before any server sees them.
    """
    try:
        count, most = (int(Path(f"/proc/sys/net/netfilter/nf_conntrack_{name}").read_text())
                       for name in ("count", "max"))
    except OSError:
        return 0.0
    return count / most


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=360, help="flood source addresses (two teams' /24s)")
    parser.add_argument("--per-address", type=int, default=64, help="connections per flood address")
    parser.add_argument("--files", type=int, default=20000, help="submit-server's open-file limit")
    parser.add_argument("--seconds", type=float, default=30, help="farming time under the flood")
    parser.add_argument("--processes", type=int, default=2, help="flood client processes")
    parser.add_argument("--reconnect", type=float, default=1.0, help="seconds before the flood reopens a connection")
    args = parser.parse_args()
    raise_file_limit(4096)
    work = Path(tempfile.mkdtemp(prefix="adrange-bench-flood-"))
    platform = flooded_platform(work, args.files)
    pid = platform.submit.proc.pid  # type: ignore[union-attr]
    try:
        wanted = args.addresses * args.per_address
        console.log(f"flood: {wanted} connections from {args.addresses} addresses in teams 1 and 2's networks")
        flood = Flood(platform.ports["faust"], flood_sources(args.addresses // 2), args.per_address,
                      args.processes, trickle=5.0, reconnect=args.reconnect)
        deadline = time.monotonic() + 60
        while (status := flood.status()).get("connects", 0) < wanted and time.monotonic() < deadline:
            time.sleep(0.5)
        console.log(f"flood up: {status}")
        cpu_before, refused_before = cpu_seconds(pid), sum(refusals(platform).values())
        time.sleep(5)  # the flood alone: the server's CPU per refused connection
        refusal_cpu = (cpu_seconds(pid) - cpu_before) / max(1, sum(refusals(platform).values()) - refused_before)
        farms = start_farms(platform, 3)
        most_files, conntrack, end = 0, 0.0, time.monotonic() + args.seconds
        while time.monotonic() < end:
            most_files, conntrack = max(most_files, open_files(pid)), max(conntrack, conntrack_use())
            time.sleep(1)
        took = stop_farms(farms)
        status = flood.status()
        time.sleep(1.5)  # the server publishes its counters every second
        refused = refusals(platform)
        flood.stop()
        failures = [f for farm in farms for f in farm.failures]
        answered = sum(farm.answered for farm in farms)
        console.log(f"farms: {answered} flags answered, {len(took)} batches, {len(failures)} failures "
                    f"{failures[:3]}; flood: {status}; server refused {refused}")
        bench("submit_flood_p50", percentile(took, 0.5) * 1000, "ms")
        bench("submit_flood_p99", percentile(took, 0.99) * 1000, "ms")
        bench("submit_flood_max", took[-1] * 1000, "ms")
        bench("submit_flood_farm_failures", len(failures), "failures")
        bench("submit_flood_held", status.get("held", 0), "connections")
        bench("submit_flood_refused", sum(refused.values()), "connections")
        for reason, count in sorted(refused.items()):
            bench(f"submit_flood_refused_{reason.split()[-1]}", count, "connections")
        bench("submit_flood_refusal_cpu", refusal_cpu * 1e6, "us")
        bench("submit_flood_server_files", most_files, "files")
        bench("submit_flood_conntrack_use", conntrack * 100, "%")
        assert not failures, (failures[:5], "conntrack table full: the host dropped SYNs" if conntrack > 0.99 else "")
    finally:
        platform.stop()


if __name__ == "__main__":
    main()
