"""Live board fan-out: N Socket.IO spectators (websocket) on one real `web` process.

Starts a private redis-server and `adrange web`, connects N python-socketio AsyncClients
spread over `--processes` client processes (so the clients' own CPU does not pass for
board latency), then accepts one flag every `--interval` seconds (straight through the
store, as the submission servers do) and measures, for every spectator, the wall-clock
time from the accepted flag to the first ranking event that counts it. Prints p50/p99/max latency, the share
of (spectator, flag) pairs seen within 1 s, connect time and the web process's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
from multiprocessing.connection import Connection

import socketio
from rich.console import Console

from deploy.redis_server import free_port
from scoreboard.types import GameState
from tests.bench.common import bench, bench_game, cpu_seconds
from tests.game_helpers import flag_of
from tests.processes import Process, write_game

console = Console(stderr=True)


class Spectators:
    """Many AsyncClients that note when each captured-count first shows in a ranking."""

    def __init__(self, url: str, count: int) -> None:
        self.url = url
        self.count = count
        self.clients: list[socketio.AsyncClient] = []
        self.seen: list[dict[int, float]] = []  # per client: captured total -> first seen

    def _client(self, index: int) -> socketio.AsyncClient:
        client = socketio.AsyncClient(reconnection=False)
        seen: dict[int, float] = {}
        self.seen.append(seen)

        @client.on("ranking")
        async def on_ranking(data):
            total = sum(row["captured"] for row in data["ranking"])
            seen.setdefault(total, time.time())

        return client

    async def connect(self, batch: int = 50) -> None:
        for start in range(0, self.count, batch):
            clients = [self._client(i) for i in range(start, min(self.count, start + batch))]
            await asyncio.gather(*(c.connect(self.url, transports=["websocket"], wait_timeout=30) for c in clients))
            self.clients.extend(clients)

    async def close(self) -> None:
        await asyncio.gather(*(c.disconnect() for c in self.clients), return_exceptions=True)


def spectator_process(url: str, count: int, pipe: Connection) -> None:
    """One client process: connect `count` spectators, report, watch until told, send what was seen."""
    async def main() -> None:
        spectators = Spectators(url, count)
        await spectators.connect()
        pipe.send(len(spectators.clients))
        while not pipe.poll():
            await asyncio.sleep(0.2)
        pipe.recv()
        await spectators.close()
        pipe.send(spectators.seen)

    asyncio.run(main())


async def run(args: argparse.Namespace) -> None:
    with bench_game(args.teams, 2, flag_lifetime=100000, round_seconds=600) as (config, store, work):
        store.set_state(GameState.RUNNING)
        store.open_round(1)
        port = free_port()
        path = write_game(work / "game.yml", {**config.model_dump(mode="json", exclude_none=True),
                                              "redis_url": config.redis_url})
        web = Process(["web", "-c", str(path), "--port", str(port)], work, "web").start(("127.0.0.1", port))
        ctx = multiprocessing.get_context("spawn")
        pipes, workers = [], []
        share = [args.spectators // args.processes + (i < args.spectators % args.processes)
                 for i in range(args.processes)]
        try:
            started = time.monotonic()
            for count in share:
                mine, theirs = ctx.Pipe()
                worker = ctx.Process(target=spectator_process, args=(f"http://127.0.0.1:{port}", count, theirs))
                worker.start()
                pipes.append(mine)
                workers.append(worker)
            connected = sum([await asyncio.to_thread(p.recv) for p in pipes])
            bench("board_connect_seconds", time.monotonic() - started, "s")
            console.print(f"{connected} spectators connected from {args.processes} processes")
            await asyncio.sleep(2)
            cpu_before, wall_before = cpu_seconds(web.proc.pid), time.monotonic()
            sent: dict[int, float] = {}
            victims = [t.id for t in config.playing_teams if t.id != 1]
            for n in range(1, args.flags + 1):
                victim = victims[n % len(victims)]
                candidate = (flag_of(store, 1, victim, 1 + n % 2, (n // len(victims)) % 16), victim, 1 + n % 2, 1)
                sent[n] = time.time()
                answer = await asyncio.to_thread(store.submit, 1, [candidate])
                assert answer[0].startswith("A"), answer
                await asyncio.sleep(args.interval)
            await asyncio.sleep(2)
            cpu = (cpu_seconds(web.proc.pid) - cpu_before) / (time.monotonic() - wall_before)
            seen_all: list[dict[int, float]] = []
            for pipe in pipes:
                pipe.send("done")
                seen_all.extend(await asyncio.to_thread(pipe.recv))
            latencies, missing = [], 0
            for seen in seen_all:
                for n, at in sent.items():
                    first = min((t for total, t in seen.items() if total >= n), default=None)
                    if first is None:
                        missing += 1
                    else:
                        latencies.append(first - at)
            latencies.sort()
            pairs = len(sent) * len(seen_all)
            bench("board_ranking_latency_p50", 1000 * statistics.median(latencies), "ms")
            bench("board_ranking_latency_p99", 1000 * latencies[int(0.99 * (len(latencies) - 1))], "ms")
            bench("board_ranking_latency_max", 1000 * latencies[-1], "ms")
            bench("board_updates_within_1s", 100 * sum(1 for x in latencies if x <= 1.0) / pairs, "%")
            bench("board_updates_missed", missing, "pairs")
            bench("board_web_cpu", 100 * cpu, "%core")
            bench("board_spectators", connected, "clients")
        finally:
            for worker in workers:
                worker.join(30)
                if worker.is_alive():
                    worker.kill()
            web.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spectators", type=int, default=1000)
    parser.add_argument("--flags", type=int, default=30, help="accepted flags, one per interval")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between accepted flags")
    parser.add_argument("--teams", type=int, default=10)
    parser.add_argument("--processes", type=int, default=2, help="client processes the spectators are spread over")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
