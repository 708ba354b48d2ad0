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
import statistics
import time

from rich.console import Console

from deploy.redis_server import free_port
from scoreboard.types import GameState
from tests.bench.common import bench, bench_game, cpu_seconds
from tests.bench.spectators import Crowd
from tests.game_helpers import flag_of
from tests.processes import Process, write_game

console = Console(stderr=True)


async def run(args: argparse.Namespace) -> None:
    with bench_game(args.teams, 2, flag_lifetime=100000, round_seconds=600) as (config, store, work):
        store.set_state(GameState.RUNNING)
        store.open_round(1)
        port = free_port()
        path = write_game(work / "game.yml", {**config.model_dump(mode="json", exclude_none=True),
                                              "redis_url": config.redis_url})
        web = Process(["web", "-c", str(path), "--port", str(port)], work, "web").start(("127.0.0.1", port))
        crowd: Crowd | None = None
        try:
            started = time.monotonic()
            crowd = await asyncio.to_thread(Crowd, f"http://127.0.0.1:{port}", args.spectators, args.processes)
            bench("board_connect_seconds", time.monotonic() - started, "s")
            console.print(f"{crowd.connected} spectators connected from {args.processes} processes")
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
            seen_all = await asyncio.to_thread(crowd.finish)
            crowd = None
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
            bench("board_spectators", len(seen_all), "clients")
        finally:
            if crowd is not None:
                crowd.finish()
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
