"""Traffic captures: disk per round per box and capture CPU per box, idle and under traffic.

A hosted game of T teams with the `pinger` challenge (one HTTP box per team) and the real
capture process (`adrange captures run`: one tcpdump per box). One idle round, then R
rounds in which client threads send HTTP requests (the service's page and
its status API) to every box as fast as they can. Rounds are moved by the store's scripts
every `--round-seconds`. tcpdump's CPU is what the capture process's reaped children used
(its cutime + cstime); the process's own CPU (docker listing, rotation) is counted apart.

Prints `BENCH captures_disk_per_box_round` (KiB per box per round under that load),
`captures_bytes_per_request`, `captures_tcpdump_cpu_per_box` (% of a core under load),
`captures_tcpdump_us_per_packet`, `captures_idle_cpu_per_box`, `captures_process_cpu`.
Run: python -m tests.bench.bench_captures [--teams T] [--rounds R] [--round-seconds S]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import dpkt
import requests
from rich.console import Console

from deploy import boxes
from deploy.demo import challenge_services
from deploy.redis_server import RedisServer
from scoreboard import captures as files
from scoreboard.config import parse_config
from scoreboard.store import GameStore
from tests.bench.common import bench
from tests.conftest_docker import ROOT
from tests.game_helpers import start_at_round
from tests.processes import Process, write_game

console = Console(stderr=True)
FIRST_TEAM = 61


def cpu(pid: int) -> tuple[float, float]:
    """(own, reaped children's) CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def load(urls: list[str], stop: threading.Event, counts: list[int]) -> None:
    """Send requests round-robin to the boxes until `stop` (one count per answered request)."""
    http = requests.Session()
    index = 0
    while not stop.is_set():
        url = urls[index % len(urls)]
        index += 1
        try:
            http.get(url, timeout=5)
            counts.append(1)
        except requests.RequestException:
            pass


def packets(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in dpkt.pcap.Reader(handle))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--round-seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=4, help="client threads")
    args = parser.parse_args()
    subprocess.run([str(ROOT / "deploy" / "ensure_docker.sh")], check=True, stdout=subprocess.DEVNULL)
    work = Path(tempfile.mkdtemp(prefix="adrange-bench-captures-"))
    work.chmod(0o711)  # tcpdump (captures.user) passes through to the capture folder
    redis = RedisServer(work / "redis").start()
    data = {
        "game": {"name": f"benchcap{os.getpid()}", "secret": "bench-captures-secret-0123456789",
                 "round_seconds": args.round_seconds},
        "teams": [{"name": f"team{FIRST_TEAM + i}", "id": FIRST_TEAM + i} for i in range(args.teams)],
        "services": [s for s in challenge_services(args.round_seconds) if s["challenge"].endswith("pinger")],
        "deploy": {"mode": "hosted", "box_subnet": "10.218.0.0/16", "ssh": False},
        "captures": {"enabled": True, "dir": str(work / "pcap"), "file_size": "64m", "team_size": "2g"},
        "redis_url": redis.url,
    }
    path = write_game(work / "game.yml", data)
    config = parse_config(data, str(path), work)
    quiet = Console(quiet=True)
    capture = Process(["captures", "run", "-c", str(path)], work, "captures")
    try:
        boxes.up(config, console=quiet)
        store = GameStore(config)
        store.init()
        start_at_round(store, 1)
        capture.start()
        assert capture.proc is not None
        port = config.services[0].ports[0]
        urls = [f"http://{t.address}:{port}{p}" for t in config.teams for p in ("/", "/api/status")]
        time.sleep(args.round_seconds)  # round 1: idle
        store.close_round(1)
        store.open_round(2)
        time.sleep(3)  # round 1's tcpdumps reaped
        own0, children0 = cpu(capture.proc.pid)
        idle = children0 / args.teams / args.round_seconds
        stop, counts = threading.Event(), []
        clients = [threading.Thread(target=load, args=(urls, stop, counts)) for _ in range(args.clients)]
        started = time.monotonic()
        for client in clients:
            client.start()
        for round_ in range(2, 2 + args.rounds):
            time.sleep(max(0.0, started + (round_ - 1) * args.round_seconds - time.monotonic()))
            store.close_round(round_)
            store.open_round(round_ + 1)
            console.print(f"round {round_}: {len(counts)} requests so far")
        stop.set()
        for client in clients:
            client.join()
        loaded = time.monotonic() - started
        time.sleep(3)  # the last loaded round's tcpdumps reaped
        own1, children1 = cpu(capture.proc.pid)
    finally:
        capture.stop()
        boxes.down(config, console=quiet)
        redis.cleanup()
    rounds = range(2, 2 + args.rounds)
    found = [f for t in config.teams for f in files.team_files(config, t.id) if f.round in rounds]
    disk = sum(f.size for f in found)
    sent = sum(packets(f.path) for f in found)
    shutil.rmtree(work, ignore_errors=True)
    requests_done = len(counts)
    console.print(f"{requests_done} requests in {loaded:.1f} s ({requests_done / loaded:.0f}/s) to {args.teams} "
                  f"boxes; {len(found)} files, {disk / 2**20:.1f} MiB, {sent} packets")
    tcpdump_cpu = children1 - children0
    bench("captures_disk_per_box_round", disk / args.teams / args.rounds / 1024, "KiB")
    bench("captures_load_requests_per_box_s", requests_done / args.teams / loaded, "req/s")
    bench("captures_bytes_per_request", disk / max(1, requests_done), "bytes")
    bench("captures_tcpdump_cpu_per_box", 100 * tcpdump_cpu / args.teams / loaded, "%core")
    bench("captures_tcpdump_us_per_packet", 1e6 * tcpdump_cpu / max(1, sent), "us")
    bench("captures_idle_cpu_per_box", 100 * idle, "%core")
    bench("captures_process_cpu", 100 * (own1 - own0) / loaded, "%core")


if __name__ == "__main__":
    main()
