"""Round engine throughput: T teams x S services checked through real Celery workers.

A private redis-server, a real `adrange worker` (prefork) and one fast asyncio notes target
listening on every team's loopback address (127.78.T.1). Each phase opens a round, sends
every chain at once (no start spread, so the figure is throughput, not the spread) and
waits until every box has a result:

- native protocol at growing sizes, up to 200 teams x 10 services (2,000 chains);
- the CLI protocol (one process per action) at a small size;
- dispatch cost per chain in the ticker (Celery publish to Redis).

It then says the largest T x S that fits a 60 s round with the measured throughput, and
where a chain's time goes (checker actions vs Celery and store overhead).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

from rich.console import Console

from checker.ticker import Ticker
from deploy.redis_server import RedisServer
from scoreboard.store import GameStore
from scoreboard.types import GameState
from tests.bench.common import bench
from tests.engine_helpers import checker, engine_game, start_worker, wait_until

console = Console(stderr=True)
PORT = 17301
ROUND = 60.0
# Apart from the tests' targets (127.77.T.1), so both can run at once.
ADDRESS_SCHEME = "127.78.{team}.1"


# -- the target: the notes protocol (tests/targets/notes_tcp.py) over asyncio ---------------
def _serve_notes(hosts: list[str], ready: multiprocessing.synchronize.Event) -> None:
    notes: dict[str, str] = {}
    counter = iter(range(10**12))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                command, _, arg = line.decode().strip().partition(" ")
                if command == "PING":
                    answer = "PONG"
                elif command == "PUT":
                    note_id = f"{next(counter):012x}"
                    notes[note_id] = arg
                    answer = f"ID {note_id}"
                elif command == "GET":
                    answer = f"NOTE {notes[arg]}" if arg in notes else "NONE"
                else:
                    answer = "ERROR"
                writer.write(answer.encode() + b"\n")
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, hosts, PORT, backlog=1024, reuse_address=True)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def start_target(teams: int) -> multiprocessing.Process:
    """The asyncio notes target on 127.78.T.1 for every team (NOP included), in its own process."""
    hosts = [ADDRESS_SCHEME.format(team=t) for t in range(1, teams + 2)]
    ready = multiprocessing.Event()
    process = multiprocessing.Process(target=_serve_notes, args=(hosts, ready), daemon=True)
    process.start()
    if not ready.wait(30):
        raise RuntimeError("the notes target did not start")
    return process


# -- one measured round ------------------------------------------------------------
def measure_round(store: GameStore, ticker: Ticker, round_: int, timeout: float) -> dict[str, float]:
    """Open `round_`, send every chain at once, wait for every result; return the figures."""
    config = store.config
    boxes = len(config.teams) * len(config.services)
    started = time.time()
    store.open_round(round_, started)
    ticker.dispatch(round_, started + ROUND, started, window=0)
    dispatched = time.time() - started
    wait_until(lambda: len(store.round_statuses(round_)) >= boxes, timeout,
               lambda: f"{len(store.round_statuses(round_))}/{boxes} results", interval=0.1)
    elapsed = time.time() - started
    details = store.check_details(round_).values()
    ok = sum(1 for d in details if d["status"] == 101)
    chain_time = sum(d["detail"].get("duration", 0) for d in details)
    action_time = sum(a["duration"] for d in details for a in d["detail"].get("actions", []))
    return {"boxes": boxes, "elapsed": elapsed, "dispatch": dispatched, "ok": ok,
            "chain_time": chain_time, "action_time": action_time}


def run_phase(redis_url: str, work: Path, teams: int, services: int, protocol: str, rounds: int,
              concurrency: int) -> list[dict[str, float]]:
    """A game of `teams` x `services` with one worker; measure `rounds` rounds."""
    name = "notes_checker.py" if protocol == "native" else "forcad_style.py"
    config, store, path = engine_game(redis_url, work, teams=teams, round_seconds=ROUND,
                                      checkers=[checker(name, protocol, timeout=5)] * services,
                                      address_scheme=ADDRESS_SCHEME)
    store.set_state(GameState.RUNNING)
    worker = start_worker(path, work, concurrency, f"worker-{protocol}-{teams}x{services}")
    try:
        ticker = Ticker(config, store)
        return [measure_round(store, ticker, r, 240) for r in range(1, rounds + 1)]
    finally:
        worker.kill()


def report(label: str, figures: dict[str, float], concurrency: int) -> float:
    """Print one round's figures; return chains/s."""
    n, elapsed = figures["boxes"], figures["elapsed"]
    rate = n / elapsed
    overhead = max(0.0, concurrency * elapsed - figures["chain_time"]) / n
    console.print(
        f"{label}: {n:.0f} chains, round done in {elapsed:.2f}s of {ROUND:.0f}s ({elapsed / ROUND:.0%}), "
        f"{rate:.0f} chains/s, {figures['ok']:.0f} OK; dispatch {figures['dispatch'] * 1000 / n:.2f} ms/chain; "
        f"per chain: actions {figures['action_time'] * 1000 / n:.1f} ms, chain {figures['chain_time'] * 1000 / n:.1f}"
        f" ms, worker idle/Celery overhead {overhead * 1000:.1f} ms"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=200)
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=max(4, 4 * (os.cpu_count() or 1)))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="adrange-bench-checkers-"))
    (work / "redis").mkdir()
    server = RedisServer(work / "redis").start()
    target = start_target(max(args.teams, 20))
    try:
        console.print(f"worker concurrency {args.concurrency} (prefork), {os.cpu_count()} CPUs, target: asyncio")
        small = run_phase(server.url, work, 20, 5, "native", 1, args.concurrency)
        report("native 20x5", small[0], args.concurrency)
        big = run_phase(server.url, work, args.teams, args.services, "native", 2, args.concurrency)
        for i, figures in enumerate(big, 1):
            rate = report(f"native {args.teams}x{args.services} round {i}", figures, args.concurrency)
        cli = run_phase(server.url, work, 10, 3, "cli", 1, args.concurrency)
        cli_rate = report("cli 10x3", cli[0], args.concurrency)
        last = big[-1]
        fits = int(rate * ROUND * 0.8)  # leave a fifth of the round as margin
        console.print(
            f"{args.teams}x{args.services} = {last['boxes']:.0f} chains take {last['elapsed']:.1f}s of a "
            f"{ROUND:.0f}s round; at {rate:.0f} chains/s about {fits} chains fit (80% of the round), "
            f"e.g. {fits // args.services} teams x {args.services} services"
        )
        bench("checker_round_2000_chains", last["elapsed"], "s")
        bench("checker_native_chains_per_s", rate, "chains/s")
        bench("checker_cli_chains_per_s", cli_rate, "chains/s")
        bench("checker_dispatch_per_chain", last["dispatch"] * 1000 / last["boxes"], "ms")
        bench("checker_chains_fit_60s_round", fits, "chains")
    finally:
        target.terminate()
        server.cleanup()


if __name__ == "__main__":
    main()
