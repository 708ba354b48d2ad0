"""Flag submission throughput: each TCP dialect and HTTP, several concurrent clients.

Starts a private redis-server (AOF on, appendfsync always) and the real `submit-server`
and `web` processes, then measures accepted flags/s (every accepted flag is in Redis
before its reply is sent: the reply is built from the submit script's answer), rejected
flags/s for garbage, and in-process validations/s. Checks that the capture stream holds
exactly as many events as "Accepted" replies were seen. Then the side-by-side patterns of
issue 13 with server CPU per flag: distinct valid flags and forged (wrong-MAC) flags over 16
connections with 256 in flight each, and one flag per write on one connection (accepted:
fsync-bound, each waits for its own AOF write; rejected: no Redis at all), the last measured
with a C client (tests/bench/line_client.c) against the submit-server and, as this
machine's round-trip floor, against a C server that echoes every read
(tests/bench/echo_server.c; both built with `cc`, a blocking Python client without it):
unpinned, with server and client pinned to one core (the round trip costs only CPU), and
pinned to two cores (each round trip waits for a cross-CPU wake-up). Then 16 connections
each with one valid flag in flight (many farms' `nc` loops: what group commit is for). Last,
the 16x256 patterns with a second submit-server joined to the same ports (SO_REUSEPORT).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path

import requests
from rich.console import Console

from deploy.redis_server import free_port
from scoreboard.flags import FlagCodec
from scoreboard.store import GameStore
from scoreboard.submission.dialects import DIALECTS
from scoreboard.submission.judge import Judge
from scoreboard.types import GameState
from tests.bench.common import bench, bench_game, cpu_seconds
from tests.processes import Process, write_game

console = Console(stderr=True)
ECHO_SOURCE = Path(__file__).with_name("echo_server.c")
CLIENT_SOURCE = Path(__file__).with_name("line_client.c")


def flags_for(codec: FlagCodec, attacker: int, teams: int, services: int, count: int, start_round: int) -> list[str]:
    """`count` distinct valid flags of other teams for one attacker."""
    out: list[str] = []
    round_ = start_round
    while len(out) < count:
        for victim in range(1, teams + 1):
            if victim == attacker:
                continue
            for service in range(1, services + 1):
                for slot in range(16):
                    out.append(codec.generate(round_, victim, service, slot))
        round_ -= 1
    return out[:count]


async def tcp_client(dialect: str, port: int, source: str, token: str, flags: list[str], batch: int) -> int:
    """Send flags in batches over one connection; return how many were accepted."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0), limit=2**20)
    await reader.readuntil(DIALECTS[dialect].greeting)
    if dialect == "forcad":
        writer.write(token.encode() + b"\n")
        await reader.readline()
    accepted = 0
    ok = b" OK " if dialect == "faust" else b"Accepted"
    pending = b""
    for i in range(0, len(flags), batch):
        chunk = flags[i : i + batch]
        writer.write(("\n".join(chunk) + "\n").encode())
        lines = 0
        while lines < len(chunk):  # count reply lines in bulk; farms read this way too
            data = pending + await reader.read(1 << 20)
            complete, _, pending = data.rpartition(b"\n")
            if complete:
                lines += complete.count(b"\n") + 1
                accepted += complete.count(ok)
    writer.close()
    return accepted


def run_tcp(dialect: str, port: int, config, per_client: dict[int, list[str]], batch: int) -> tuple[int, float]:
    async def main() -> list[int]:
        return await asyncio.gather(*(
            tcp_client(dialect, port, f"127.0.{team}.5", config.team(team).token, flags, batch)
            for team, flags in per_client.items()))

    start = time.perf_counter()
    counts = asyncio.run(main())
    return sum(counts), time.perf_counter() - start


async def pattern_client(port: int, source: str, flags: list[bytes], in_flight: int) -> int:
    """faust: send `in_flight` flags per write, read their replies, again; how many were accepted."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0), limit=2**22)
    await reader.readuntil(DIALECTS["faust"].greeting)
    accepted, pending = 0, b""
    for i in range(0, len(flags), in_flight):
        chunk = flags[i : i + in_flight]
        writer.write(b"\n".join(chunk) + b"\n")
        lines = 0
        while lines < len(chunk):
            data = pending + await reader.read(1 << 20)
            complete, _, pending = data.rpartition(b"\n")
            if complete:
                lines += complete.count(b"\n") + 1
                accepted += complete.count(b" OK ")
    writer.close()
    return accepted


def run_pattern(port: int, per_connection: list[tuple[str, list[bytes]]], in_flight: int,
                server_pids: list[int]) -> tuple[float, float, int]:
    """Flags/s, server CPU us per flag (summed over the servers), and accepted count for one
    pattern over many connections."""
    async def main() -> list[int]:
        return await asyncio.gather(*(pattern_client(port, source, flags, in_flight)
                                      for source, flags in per_connection))

    total = sum(len(flags) for _, flags in per_connection)
    cpu, start = sum(map(cpu_seconds, server_pids)), time.perf_counter()
    accepted = sum(asyncio.run(main()))
    took = time.perf_counter() - start
    return total / took, (sum(map(cpu_seconds, server_pids)) - cpu) / total * 1e6, accepted


def compiled(work: Path, source: Path) -> Path | None:
    """`source` built with `cc -O2` into `work` (once); None without a C compiler."""
    binary = work / source.stem
    if binary.exists():
        return binary
    if not shutil.which("cc") or subprocess.run(["cc", "-O2", "-o", str(binary), str(source)]).returncode:
        console.log(f"no C compiler: {source.name} is not used")
        return None
    return binary


def one_per_write(port: int, source: str, flags: list[bytes], greeting_lines: int,
                  client: Path | None) -> tuple[float, int]:
    """Send one line, wait for its reply, again (a player's `nc` loop); round trips/s and how
    many replies said OK. The client is tests/bench/line_client.c when it could be built (the
    cheapest load generator, so the figure is the server's and the machine's), else a
    blocking Python socket."""
    if client is not None:
        done = subprocess.run([str(client), str(port), source, str(greeting_lines)], capture_output=True,
                              input=b"".join(flag + b"\n" for flag in flags), timeout=600, check=True)
        rate, accepted = done.stdout.split()
        return float(rate), int(accepted)
    sock = socket.create_connection(("127.0.0.1", port), source_address=(source, 0), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with sock:
        seen = b""
        while seen.count(b"\n") < greeting_lines:
            seen += sock.recv(4096)
        accepted, start = 0, time.perf_counter()
        for flag in flags:
            sock.sendall(flag + b"\n")
            reply = sock.recv(4096)
            while not reply.endswith(b"\n"):
                reply += sock.recv(4096)
            accepted += b" OK " in reply
        return len(flags) / (time.perf_counter() - start), accepted


PLACEMENTS = {"one_core": ({0}, {0}), "two_cores": ({0}, {1})}  # (server CPUs, client CPUs)


@contextmanager
def placed(server_pid: int, placement: str | None) -> Iterator[None]:
    """Pin the server's threads and this thread to CPUs for one measurement, then free both.
    A round trip between two cores of this VM waits for a cross-CPU wake-up (about 50 us
    here, whatever the server does); on one core it costs only the two sides' CPU."""
    if placement is None:
        yield
        return
    everything = os.sched_getaffinity(0)
    server_cpus, client_cpus = PLACEMENTS[placement]
    try:
        _pin(server_pid, server_cpus)
        os.sched_setaffinity(0, client_cpus)
        yield
    finally:
        os.sched_setaffinity(0, everything)
        _pin(server_pid, everything)


def _pin(pid: int, cpus: set[int]) -> None:
    for task in Path(f"/proc/{pid}/task").iterdir():
        with suppress(ProcessLookupError):
            os.sched_setaffinity(int(task.name), cpus)


def placements() -> list[str | None]:
    """Unpinned, then each placement this machine has the CPUs for."""
    cpus = os.sched_getaffinity(0)
    return [None, *(name for name, (server, client) in PLACEMENTS.items() if server | client <= cpus)]


def one_per_write_placed(port: int, source: str, flags: list[bytes], greeting_lines: int, server_pid: int,
                         client: Path | None) -> dict[str, tuple[float, float, int]]:
    """Placement ("" unpinned, "_one_core", "_two_cores") -> round trips/s, server CPU us
    per round trip, and how many replies said OK."""
    out = {}
    for placement in placements():
        with placed(server_pid, placement):  # the client process inherits this thread's CPUs
            cpu = cpu_seconds(server_pid)
            rate, accepted = one_per_write(port, source, flags, greeting_lines, client)
            out["_" + placement if placement else ""] = (rate, (cpu_seconds(server_pid) - cpu) / len(flags) * 1e6,
                                                         accepted)
    return out


def echo_floor(work: Path, flags: list[bytes], client: Path | None) -> dict[str, tuple[float, float, int]]:
    """`one_per_write_placed` for the C echo server: this machine's round-trip floor ({} without `cc`)."""
    binary = compiled(work, ECHO_SOURCE)
    if binary is None:
        return {}
    server = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        return one_per_write_placed(port, "127.0.0.1", flags, 0, server.pid, client)
    finally:
        server.kill()
        server.wait()


def wrong_mac(flag: str) -> bytes:
    """A flag of the right shape whose MAC does not match (what a forged or mistyped flag is)."""
    middle = len(flag) // 2
    return (flag[:middle] + ("B" if flag[middle] != "B" else "C") + flag[middle + 1:]).encode()


def pattern_sources(teams: int, connections: int) -> list[tuple[str, int]]:
    """(source address, attacking team) of each connection of the 16x256 patterns."""
    attackers = list(range(1, teams))
    return [(f"127.0.{attackers[i % len(attackers)]}.{10 + i}", attackers[i % len(attackers)])
            for i in range(connections)]


def valid_flags(codec: FlagCodec, teams: int, services: int, connections: int, per_connection: int,
                offset: int) -> list[tuple[str, list[bytes]]]:
    """(source, distinct valid flags from round `offset` down) for each pattern connection."""
    sources = pattern_sources(teams, connections)
    fresh = {team: flags_for(codec, team, teams, services, per_connection * connections, offset)
             for team in range(1, teams)}
    return [(source, [f.encode() for f in fresh[team][k * per_connection:(k + 1) * per_connection]])
            for k, (source, team) in enumerate(sources)]


def batched(codec: FlagCodec, teams: int, services: int, port: int, pids: list[int], connections: int,
            flags: int, offset: int, suffix: str = "") -> dict[str, tuple[float, str]]:
    """16 connections x 256 in flight: distinct valid flags (from round `offset` down), then
    5x as many forged ones; flags/s and server CPU per flag over the servers `pids`."""
    per_conn = flags // connections
    valid = valid_flags(codec, teams, services, connections, per_conn, offset)
    out: dict[str, tuple[float, str]] = {}
    rate, cpu, accepted = run_pattern(port, valid, 256, pids)
    assert accepted == per_conn * connections, f"{accepted} accepted of {per_conn * connections}"
    out[f"submit_accepted_16x256{suffix}"] = (rate, "flags/s")
    out[f"submit_accepted_16x256{suffix}_cpu_server"] = (cpu, "us/flag")
    forged = [(source, [wrong_mac(f.decode()) for f in flags]) for source, flags in valid] * 5  # 5x as many
    rate, cpu, accepted = run_pattern(port, forged, 256, pids)
    assert accepted == 0
    out[f"submit_rejected_16x256{suffix}"] = (rate, "flags/s")
    out[f"submit_rejected_16x256{suffix}_cpu_server"] = (cpu, "us/flag")
    return out


def concurrent_one_per_write(codec: FlagCodec, teams: int, services: int, port: int, pid: int, connections: int,
                             offset: int) -> dict[str, tuple[float, str]]:
    """`connections` farms at once, each sending one valid flag and waiting for its reply
    (many teams' `nc` loops): accepted flags/s and server CPU per flag."""
    per_conn = 1000
    rate, cpu, accepted = run_pattern(port, valid_flags(codec, teams, services, connections, per_conn, offset), 1,
                                      [pid])
    assert accepted == per_conn * connections, f"{accepted} accepted of {per_conn * connections}"
    return {f"submit_accepted_{connections}x1": (rate, "flags/s"),
            f"submit_accepted_{connections}x1_cpu_server": (cpu, "us/flag")}


def one_flag_per_write(codec: FlagCodec, teams: int, services: int, port: int, pid: int, offset: int,
                       work: Path) -> dict[str, tuple[float, str]]:
    """One flag per write on one connection: accepted (fsync-bound), then rejected in each
    CPU placement, beside the C echo server in the same placements."""
    source, team = pattern_sources(teams, 1)[0]
    greeting, client = DIALECTS["faust"].greeting.count(b"\n"), compiled(work, CLIENT_SOURCE)
    out: dict[str, tuple[float, str]] = {}
    single = flags_for(codec, team, teams, services, 3000, offset)
    cpu = cpu_seconds(pid)
    rate, accepted = one_per_write(port, source, [f.encode() for f in single], greeting, client)
    assert accepted == len(single), f"{accepted} accepted of {len(single)}"
    out["submit_accepted_one_per_write"] = (rate, "flags/s")
    out["submit_accepted_one_per_write_cpu_server"] = ((cpu_seconds(pid) - cpu) / len(single) * 1e6, "us/flag")
    forged = [wrong_mac(f) for f in flags_for(codec, team, teams, services, 20000, offset)]
    mine = one_per_write_placed(port, source, forged, greeting, pid, client)
    floor = echo_floor(work, forged, client)
    for placement, (rate, cpu, accepted) in mine.items():
        assert accepted == 0
        out[f"submit_rejected_one_per_write{placement}"] = (rate, "flags/s")
        out[f"submit_rejected_one_per_write{placement}_cpu_server"] = (cpu, "us/flag")
        if placement in floor:
            echo_rate, echo_cpu, _ = floor[placement]
            out[f"echo_c_one_per_write{placement}"] = (echo_rate, "round trips/s")
            out[f"echo_c_one_per_write{placement}_cpu_server"] = (echo_cpu, "us/round trip")
            out[f"submit_rejected_one_per_write{placement}_vs_echo_c"] = (rate / echo_rate, "x")
    return out


def scale_out(path: Path, work: Path, store: GameStore, run: Callable[[list[int]], dict[str, tuple[float, str]]],
              first: int) -> dict[str, tuple[float, str]]:
    """`run` again with a second submit-server joined to the first's ports (SO_REUSEPORT), once
    both count themselves in the game's live processes (they then split the connection caps)."""
    second = Process(["submit-server", "-c", str(path), "--join"], work, "submit-2").start()
    try:
        assert second.proc is not None
        deadline = time.monotonic() + 30
        while store.redis.zcard(store.keys.processes("submit")) < 2:
            assert time.monotonic() < deadline and second.proc.poll() is None, second.log_path.read_text()[-2000:]
            time.sleep(0.1)
        time.sleep(1.5)  # each server renews its share once a second
        return run([first, second.proc.pid])
    finally:
        second.stop()


def run_http(url: str, config, per_client: dict[int, list[str]], batch: int) -> tuple[int, float]:
    def client(team: int, flags: list[str]) -> int:
        session = requests.Session()
        accepted = 0
        for i in range(0, len(flags), batch):
            reply = session.put(f"{url}/flags", data=json.dumps(flags[i : i + batch]),
                                headers={"X-Team-Token": config.team(team).token}, timeout=30)
            accepted += sum(r["status"] for r in reply.json())
        return accepted

    start = time.perf_counter()
    with ThreadPoolExecutor(len(per_client)) as pool:
        counts = list(pool.map(lambda item: client(*item), per_client.items()))
    return sum(counts), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (attacking teams)")
    parser.add_argument("--flags", type=int, default=30000, help="flags per client per run")
    parser.add_argument("--batch", type=int, default=500, help="flags per write / PUT")
    parser.add_argument("--connections", type=int, default=16, help="connections of the side-by-side patterns")
    parser.add_argument("--pattern-flags", type=int, default=96000,
                        help="distinct valid flags of the 16x256 pattern (5x as many forged ones)")
    args = parser.parse_args()
    teams, services = args.clients + 1, 4
    with bench_game(teams, services, flag_lifetime=100000) as (config, store, work):
        store.set_state(GameState.RUNNING)
        store.open_round(100000)
        codec = FlagCodec(config.game.secret)
        tcp_ports = {d: free_port() for d in ("faust", "ructf", "forcad")}
        web_port = free_port()
        data = json.loads(config.model_dump_json(by_alias=True, exclude={"base_dir"}))
        data["submission"].update({f"{d}_port": p for d, p in tcp_ports.items()})
        data["submission"]["limits"]["rate_per_team"] = 10**9
        path = write_game(work / "game.yml", data)
        procs = [Process(["submit-server", "-c", str(path)], work, "submit").start(("127.0.0.1", tcp_ports["faust"])),
                 Process(["web", "-c", str(path), "--port", str(web_port)], work, "web").start(("127.0.0.1", web_port))]
        try:
            figures: dict[str, float] = {}
            cpu_units: dict[str, float] = {}
            pids = {"submit": procs[0].proc.pid, "web": procs[1].proc.pid,
                    "redis": int(store.redis.info("server")["process_id"])}
            offset = 100000
            total_accepted = 0
            for name in ("faust", "ructf", "forcad", "http"):
                per_client = {t: flags_for(codec, t, teams, services, args.flags, offset)
                              for t in range(1, args.clients + 1)}
                offset -= args.flags // ((teams - 1) * services * 16) + 2
                console.log(f"{name}: {args.clients} clients x {args.flags} flags")
                server_pid = pids["web" if name == "http" else "submit"]
                cpu_before = cpu_seconds(server_pid), cpu_seconds(pids["redis"])
                if name == "http":
                    accepted, took = run_http(f"http://127.0.0.1:{web_port}", config, per_client, args.batch * 4)
                else:
                    accepted, took = run_tcp(name, tcp_ports[name], config, per_client, args.batch)
                expected = args.clients * args.flags
                assert accepted == expected, f"{name}: {accepted} accepted of {expected}"
                total_accepted += accepted
                cpu_units[f"submit_{name}_cpu_server"] = (cpu_seconds(server_pid) - cpu_before[0]) / accepted * 1e6
                cpu_units[f"submit_{name}_cpu_redis"] = (cpu_seconds(pids["redis"]) - cpu_before[1]) / accepted * 1e6
                figures[f"submit_{'tcp_' if name != 'http' else ''}{name}_accepted"] = accepted / took
            events = store.redis.xlen(store.keys.stream("capture"))
            assert events == total_accepted, f"{events} capture events for {total_accepted} accepted replies"
            garbage = {t: [f"GARBAGE{i:025d}=" for i in range(args.flags)] for t in range(1, args.clients + 1)}
            rejected, took = run_tcp("faust", tcp_ports["faust"], config, garbage, args.batch)
            assert rejected == 0
            figures["submit_tcp_faust_rejected_garbage"] = args.clients * args.flags / took
            console.log(f"patterns: {args.connections} connections x 256 in flight, then one flag per write")
            port, span = tcp_ports["faust"], args.pattern_flags // ((teams - 1) * services * 16) + 2
            offset -= 50
            side_by_side = batched(codec, teams, services, port, [pids["submit"]], args.connections,
                                   args.pattern_flags, offset)
            side_by_side |= one_flag_per_write(codec, teams, services, port, pids["submit"], offset - span, work)
            side_by_side |= concurrent_one_per_write(codec, teams, services, port, pids["submit"], args.connections,
                                                     offset - 2 * span - 400)
            console.log("patterns again with a second submit-server on the same ports")
            side_by_side |= scale_out(path, work, store, lambda both: batched(
                codec, teams, services, port, both, args.connections, args.pattern_flags,
                offset - span - 200, "_two_processes"), pids["submit"])
        finally:
            for proc in procs:
                proc.stop()
        judge = Judge(config)
        sample = flags_for(codec, 1, teams, services, 20000, 1000)
        start = time.perf_counter()
        judge.prepare(1, sample)
        figures["submit_validations_in_process"] = len(sample) / (time.perf_counter() - start)
    for name, value in figures.items():
        bench(name, value, "flags/s")
    for name, value in cpu_units.items():  # where the time goes
        bench(name, value, "us/flag")
    tcp = [v for k, v in figures.items() if k.startswith("submit_tcp_") and k.endswith("_accepted")]
    bench("submit_tcp_accepted_vs_floor_20000", min(tcp) / 20000, "x")
    for name, (value, unit) in side_by_side.items():
        bench(name, value, unit)
    for name, floor in (("submit_rejected_16x256", 300_000), ("submit_rejected_one_per_write", 20_000),
                        ("submit_rejected_one_per_write_one_core", 20_000), ("submit_accepted_16x256", 60_000)):
        if name in side_by_side:
            bench(f"{name}_vs_floor_{floor}", side_by_side[name][0] / floor, "x")


if __name__ == "__main__":
    main()
