"""Soak: a many-team game with short rounds under steady farm load and a crowd of spectators.

Starts a private redis-server and the real `submit-server` and `web` processes (see
tests/fault_helpers.py), then for `--seconds`: farms (faust, forcad over TCP, HTTP) submit
this round's flags of random victims, `--spectators` Socket.IO clients (in their own
processes) watch the board,
and the bench itself closes a round every `--round-seconds` (statuses for every box).
Per round it prints throughput, p99 submit latency, RSS of the submit and web processes
and Redis used_memory, so leaks show; at the end the capture ledger is checked and the
headline figures are printed as ``BENCH soak_... <value> <unit>`` lines.
"""

from __future__ import annotations

import argparse
import logging
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

from scoreboard.flags import FlagCodec
from tests.bench.common import bench
from tests.bench.spectators import Crowd
from tests.fault_helpers import (
    Client,
    HttpClient,
    Platform,
    TcpClient,
    Traffic,
    check_ledger,
    next_round,
    rss_kib,
    start_platform,
)

console = Console(stderr=True)


def timed(client: Client) -> Client:
    """Record each batch's round trip in `client.latencies`."""
    client.latencies = []  # type: ignore[attr-defined]
    exchange = client.exchange

    def measured(flags: list[str]) -> list[str]:
        start = time.perf_counter()
        replies = exchange(flags)
        client.latencies.append(time.perf_counter() - start)  # type: ignore[attr-defined]
        return replies

    client.exchange = measured  # type: ignore[method-assign]
    return client


def current_flags(platform: Platform, attacker: int, seed: int, now: list[int]) -> Iterator[str]:
    """Flags a farm steals: round `now[0]`'s flags of random victims, each at most once."""
    config = platform.config
    codec = FlagCodec(config.game.secret, config.game.flag_prefix)
    rng = random.Random(seed)
    victims = [t.id for t in config.playing_teams if t.id != attacker]
    while True:
        round_ = now[0]
        boxes = [(v, s.id, slot) for v in victims for s in config.services for slot in range(4)]
        rng.shuffle(boxes)
        for victim, service, slot in boxes:
            if now[0] != round_:
                break
            yield codec.generate(round_, victim, service, slot)
        while now[0] == round_:  # every flag of the round stolen: wait for the next one
            yield codec.generate(round_, rng.choice(victims), 1, 0)  # duplicates, as farms resend


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120, help="how long the soak runs")
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--round-seconds", type=float, default=10)
    parser.add_argument("--farms", type=int, default=6, help="attacking farms (faust, forcad, http in turn)")
    parser.add_argument("--spectators", type=int, default=100)
    args = parser.parse_args()
    logging.getLogger("engineio.client").setLevel(logging.CRITICAL)  # disconnect chatter at the end
    work = Path(tempfile.mkdtemp(prefix="adrange-soak-"))
    platform = start_platform(work, teams=args.teams, services=2)
    kinds = ["faust", "forcad", "http"]
    clients: list[Client] = []
    now = [platform.store.state()["round"]]
    for team in range(1, args.farms + 1):
        kind = kinds[(team - 1) % len(kinds)]
        client = HttpClient(platform, team, batch=50) if kind == "http" else TcpClient(platform, team, kind, batch=50)
        client.flags = current_flags(platform, team, team, now)
        clients.append(timed(client))
    crowd: Crowd | None = None
    try:
        crowd = Crowd(platform.web_url, args.spectators)  # own processes: their CPU is not the board's
        for client in clients:
            client.start()
        traffic = Traffic(clients)
        pids = {"submit": platform.submit.proc.pid, "web": platform.web.proc.pid}
        first: dict[str, float] = {}
        last: dict[str, float] = {}
        start = time.monotonic()
        accepted_before = 0
        overall: list[float] = []
        console.log(f"soak: {args.teams} teams, {args.farms} farms, {args.spectators} spectators, "
                    f"{args.round_seconds}s rounds for {args.seconds}s")
        while time.monotonic() - start < args.seconds:
            round_start = time.monotonic()
            time.sleep(min(args.round_seconds, max(0.1, args.seconds - (round_start - start))))
            closed = now[0] = next_round(platform)
            took = time.monotonic() - round_start
            accepted = int(platform.store.stats().get("accepted", 0))
            latencies = []
            for c in clients:
                latencies += c.latencies  # type: ignore[attr-defined]
                c.latencies = []  # type: ignore[attr-defined]
            overall += latencies
            figures = {name: rss_kib(pid) / 1024 for name, pid in pids.items()}
            figures["redis"] = platform.store.redis.info("memory")["used_memory"] / 2**20
            first = first or dict(figures)
            last = figures
            connected, events = crowd.status()
            print(f"round {closed - 1}: {took:.1f}s, {(accepted - accepted_before) / took:.0f} accepted/s, "
                  f"p99 submit {percentile(latencies, 0.99) * 1000:.1f} ms, RSS submit {figures['submit']:.1f} MiB, "
                  f"web {figures['web']:.1f} MiB, redis used {figures['redis']:.1f} MiB, "
                  f"{events} spectator events, {connected} spectators connected",
                  flush=True)
            accepted_before = accepted
        elapsed = time.monotonic() - start
        captures = check_ledger(platform, traffic)
        outages = sum(len(c.outages) for c in clients)
        connected, events = crowd.status()
    finally:
        for client in clients:
            client.stop.set()
        for client in clients:
            client.join(10)
        if crowd is not None:
            crowd.finish()
        platform.stop()
    assert outages == 0, f"{outages} client outages during the soak"
    bench("soak_accepted", captures / elapsed, "flags/s")
    bench("soak_submit_p99", percentile(overall, 0.99) * 1000, "ms")
    for name in ("submit", "web", "redis"):
        bench(f"soak_{name}_memory_growth", last[name] - first[name], "MiB")
    bench("soak_spectator_events", events / elapsed, "events/s")
    bench("soak_spectators_connected_at_end", connected, "clients")


if __name__ == "__main__":
    main()
