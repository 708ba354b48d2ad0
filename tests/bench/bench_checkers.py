"""Round engine throughput and fairness: T teams x S services checked through real Celery workers.

A private redis-server, a real `adrange worker` (prefork) and one fast asyncio notes target
listening on every team's loopback address (127.78.T.1).

Throughput: each phase opens a round, plans every chain at offset 0 (no start spread, so
the figure is throughput, not the spread), releases them in one ticker step and waits until
every box has a result:

- native protocol at growing sizes, up to 200 teams x 10 services (2,000 chains);
- the CLI protocol (one process per action) at a small size;
- release cost per chain in the ticker (Celery publish to Redis).

It then says the largest T x S that fits a 60 s round with the measured throughput, and
where a chain's time goes (checker actions vs Celery and store overhead).

Fairness: a real `adrange ticker` and a worker pool too small for the round (30 teams x 3
CLI services, 2 processes, 7 s rounds, healthy targets) for a few rounds. Chains that do not
fit are "not checked" (CHECKER_ERROR, not judged); no healthy target may ever get a
team-costing status. Exits 1 if one did, or if a box not checked blames its team.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from checker import round_plan
from checker.ticker import Ticker
from deploy.redis_server import RedisServer
from scoreboard.store import GameStore
from scoreboard.types import GameState
from tests.bench.common import bench
from tests.engine_helpers import (
    Fairness,
    checker,
    engine_game,
    fairness,
    start_ticker,
    start_worker,
    wait_closed,
    wait_until,
)

console = Console(stderr=True)
PORT = 17301
ROUND = 60.0
# The fairness phase: CLI services, worker processes, round and action timeout (seconds).
FAIR_SERVICES, FAIR_CONCURRENCY, FAIR_ROUND, FAIR_TIMEOUT = 3, 2, 7.0, 2.0
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
    """Open `round_`, plan every chain at offset 0 and release them in one ticker step, wait
    for every result; return the figures."""
    config = store.config
    boxes = len(config.teams) * len(config.services)
    started = time.time()
    store.open_round(round_, started)
    store.save_release_plan(round_, round_plan.release_plan(
        [(team.id, service.id, 0.0) for service in config.services for team in config.teams]))
    ticker.release(config, round_, started, store.state()["run"], time.time())
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


def throughput(redis_url: str, work: Path, teams: int, services: int, concurrency: int) -> None:
    """The throughput phases, with their figures."""
    console.print(f"worker concurrency {concurrency} (prefork), {os.cpu_count()} CPUs, target: asyncio")
    small = run_phase(redis_url, work, 20, 5, "native", 1, concurrency)
    report("native 20x5", small[0], concurrency)
    big = run_phase(redis_url, work, teams, services, "native", 2, concurrency)
    for i, figures in enumerate(big, 1):
        rate = report(f"native {teams}x{services} round {i}", figures, concurrency)
    cli = run_phase(redis_url, work, 10, 3, "cli", 1, concurrency)
    cli_rate = report("cli 10x3", cli[0], concurrency)
    last = big[-1]
    fits = int(rate * ROUND * 0.8)  # leave a fifth of the round as margin
    console.print(
        f"{teams}x{services} = {last['boxes']:.0f} chains take {last['elapsed']:.1f}s of a "
        f"{ROUND:.0f}s round; at {rate:.0f} chains/s about {fits} chains fit (80% of the round), "
        f"e.g. {fits // services} teams x {services} services"
    )
    bench("checker_round_2000_chains", last["elapsed"], "s")
    bench("checker_native_chains_per_s", rate, "chains/s")
    bench("checker_cli_chains_per_s", cli_rate, "chains/s")
    bench("checker_dispatch_per_chain", last["dispatch"] * 1000 / last["boxes"], "ms")
    bench("checker_chains_fit_60s_round", fits, "chains")


def fairness_phase(redis_url: str, work: Path, teams: int, rounds: int) -> Fairness:
    """`rounds` rounds of a real ticker and a too-small worker pool over healthy targets; their tally."""
    checkers = [checker("forcad_style.py", "cli", timeout=FAIR_TIMEOUT)] * FAIR_SERVICES
    config, store, path = engine_game(redis_url, work, teams=teams, round_seconds=FAIR_ROUND, checkers=checkers,
                                      address_scheme=ADDRESS_SCHEME)
    worker = start_worker(path, work, FAIR_CONCURRENCY, "worker-fairness")
    ticker = start_ticker(path, work, "ticker-fairness")
    try:
        store.request_state("start", "bench")
        wait_closed(store, rounds, rounds * FAIR_ROUND + 120)
    finally:
        ticker.kill()
        worker.kill()
    return fairness(store, store.state()["closed_round"])


def report_fairness(tally: Fairness, teams: int) -> bool:
    """Print the fairness figures; True when every box was treated fairly."""
    stats = tally.stats
    console.print(
        f"fairness {teams}x{FAIR_SERVICES} cli, {FAIR_CONCURRENCY} worker processes, {FAIR_ROUND:g}s rounds: "
        f"{tally.rounds} rounds, {tally.boxes} boxes, {tally.ok} OK, {tally.unchecked} not checked, "
        f"{len(tally.costed)} team-costing; chains released {stats.get('released', 0):.0f}, "
        f"started {stats.get('started', 0):.0f}, max dispatch delay {stats.get('max_delay', 0):.2f}s"
    )
    for line in tally.costed + tally.blaming:
        console.print(f"[red]unfair: {line}")
    bench("fair_costed_rounds_healthy_targets", len(tally.costed), "rounds")
    bench("fair_unchecked_boxes", tally.unchecked, "boxes")
    bench("fair_checked_share", 100 * tally.checked_share, "%")
    for name in ("late", "cut", "unstarted", "unfinished"):
        bench(f"fair_{name}_chains", stats.get(name, 0), "chains")
    bench("fair_max_dispatch_delay", stats.get("max_delay", 0), "s")
    return not tally.costed and not tally.blaming


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=200)
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=max(4, 4 * (os.cpu_count() or 1)))
    parser.add_argument("--fair-teams", type=int, default=30, help="teams of the fairness phase")
    parser.add_argument("--fair-rounds", type=int, default=5, help="rounds of the fairness phase")
    parser.add_argument("--only", choices=("throughput", "fairness"), help="run one part only")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="adrange-bench-checkers-"))
    (work / "redis").mkdir()
    server = RedisServer(work / "redis").start()
    target = start_target(max(args.teams, 20, args.fair_teams))
    fair = True
    try:
        if args.only != "fairness":
            throughput(server.url, work, args.teams, args.services, args.concurrency)
        if args.only != "throughput":
            fair = report_fairness(fairness_phase(server.url, work, args.fair_teams, args.fair_rounds),
                                   args.fair_teams)
    finally:
        target.terminate()
        server.cleanup()
    if not fair:
        sys.exit(1)


if __name__ == "__main__":
    main()
