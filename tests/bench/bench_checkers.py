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

Fairness: a real `adrange ticker` and a worker pool too small for the round (100 teams x 3
CLI services, 2 processes, 7 s rounds, healthy targets) for a few rounds. Chains that do not
fit are "not checked" (CHECKER_ERROR, not judged); no healthy target may ever get a
team-costing status. Exits 1 if one did, or if a box not checked blames its team.

Real world: what a CLI action of a checker as organizers write them (checklib, requests,
bs4, in its own environment) costs against a notes web app (tests/targets/realworld): CPU
seconds of the child processes per action, called straight through the runner, and the
share of it that is the checker's real work (the same actions in one warm interpreter).
Exits 1 if an action against these healthy targets was not OK.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import redis
from rich.console import Console

from checker import round_plan
from checker.runner import ActionResult, run_action, run_service_action
from checker.ticker import Ticker
from deploy.redis_server import RedisServer
from scoreboard.config import CheckerSpec, GameConfig, load_config, parse_config
from scoreboard.store import GameStore
from scoreboard.types import GameState, Status
from tests.bench.common import bench, cpu_seconds
from tests.conftest import game_data
from tests.engine_helpers import (
    COSTING,
    Fairness,
    checker,
    engine_game,
    fairness,
    start_ticker,
    start_worker,
    wait_closed,
    wait_until,
)
from tests.processes import write_game
from tests.targets.realworld import HERE as REALWORLD_DIR
from tests.targets.realworld import WARM, install_checker, python_of
from tests.targets.realworld.notes_web import serving_notes_web

console = Console(stderr=True)
PORT = 17301
ROUND = 60.0
# The fairness phase: CLI services, worker processes, round and action timeout (seconds).
FAIR_SERVICES, FAIR_CONCURRENCY, FAIR_ROUND, FAIR_TIMEOUT = 3, 2, 7.0, 2.0
# Apart from the tests' targets (127.77.T.1), so both can run at once.
ADDRESS_SCHEME = "127.78.{team}.1"
PHASES = ("throughput", "fairness", "realworld", "floor")
# The real-world phase: its web targets' addresses, how many, the checker measured.
REALWORLD_SCHEME, REALWORLD_TEAMS, REALWORLD_CHECKER = "127.81.{team}.1", 10, "checklib_checker"
CHECKLIB = REALWORLD_DIR / REALWORLD_CHECKER / "checker.py"
# Service ids of the sandboxed phases: a service's user and cgroup are per id and host-wide
# (checker.sandbox.identity), so keep apart from the tests' low ids running meanwhile.
REALWORLD_SERVICE_ID, FLOOR_SERVICE_BASE = 201, 210
# The floor phase: a production-like game on the sandboxed path (teams x services, round).
FLOOR_SCHEME, FLOOR_TEAMS, FLOOR_SERVICES, FLOOR_ROUND = "127.82.{team}.1", 50, 10, 60.0
CPUACCT = Path("/sys/fs/cgroup/cpuacct")


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


def serve_in_process(serve: Callable[[list[str], multiprocessing.synchronize.Event], None], hosts: list[str],
                     what: str) -> multiprocessing.Process:
    """`serve(hosts, ready)` in its own process, returned once it says it is ready."""
    ready = multiprocessing.Event()
    process = multiprocessing.Process(target=serve, args=(hosts, ready), daemon=True)
    process.start()
    if not ready.wait(30):
        raise RuntimeError(f"{what} did not start")
    return process


def start_target(teams: int) -> multiprocessing.Process:
    """The asyncio notes target on 127.78.T.1 for every team (NOP included), in its own process."""
    return serve_in_process(_serve_notes, [ADDRESS_SCHEME.format(team=t) for t in range(1, teams + 2)],
                            "the notes target")


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


# -- real world: CPU per CLI action of a checklib checker ---------------------------------
@dataclass
class Mode:
    """A way to run checker actions (`run_action`'s signature) and the meter of the CPU
    seconds its checker processes have used so far; `label` names its BENCH figures."""

    label: str
    run: Callable[..., ActionResult]
    cpu: Callable[[], float]
    parts: Callable[[], dict[str, float]] | None = None  # the CPU seconds split by where they are spent


def children_cpu() -> float:
    """User + system CPU seconds of this process's children that have ended."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# One new interpreter per action. A fork server would be Mode("forkserver", its run, its meter).
EXEC = Mode("realworld_cli", run_action, children_cpu)


def sandbox_game(name: str, services: list[tuple[int, str]], teams: int, scheme: str, round_seconds: float,
                 redis_url: str = "redis://127.0.0.1:1/0", timeout: float | None = 10,
                 checker: Path = CHECKLIB) -> dict:
    """A game file's data with one cli service per (id, name), each with `checker` (checklib's)."""
    data = game_data(redis_url, teams=teams, services=len(services), name=name, round_seconds=round_seconds)
    spec = {"protocol": "cli", "path": str(checker)} | ({"timeout": timeout} if timeout else {})
    data["services"] = [{"name": n, "id": i, "checker": dict(spec)} for i, n in services]
    data["deploy"] = {"address_scheme": scheme}
    return data


def build_checker_env(config: GameConfig) -> None:
    """The services' checker environment (one for all: same checker), from the registry."""
    from checker.envs import build_env

    started = time.monotonic()
    env = build_env(config, config.services[0], online=True)
    console.print(f"checker environment {env.root} ready in {time.monotonic() - started:.1f}s")


class ForkserverMeter:
    """CPU seconds spent for a service's sandboxed actions: the fork server's process tree
    (server, per-request handlers, actions and what they start) and the calling process.

    The handlers are short-lived and auto-reaped (the server ignores SIGCHLD), so neither
    /proc/<server>/stat nor its cutime sees them, and each answer's "cpu" covers the action
    only (not its handler's fork, pipe draining and exit). The service's own cgroup has no
    CPU accounting here (cgroup v1: it is in the cpu controller, cpuacct is a separate
    hierarchy) and is per service id for the whole host. So the meter moves the running
    fork server into a private cpuacct cgroup: everything it forks afterwards is charged
    there, exited processes included (cpuacct.usage, scheduler nanoseconds)."""

    def __init__(self, identity_run_dir: Path) -> None:
        self.pid = int((identity_run_dir / "forkserver.pid").read_text())
        self.group = CPUACCT / f"adrange-bench-{os.getpid()}"
        self.group.mkdir(exist_ok=True)
        (self.group / "cgroup.procs").write_text(str(self.pid))

    def tree(self) -> float:
        """CPU seconds of the fork server's tree since it was moved."""
        return int((self.group / "cpuacct.usage").read_text()) / 1e9

    def server(self) -> float:
        """CPU seconds of the server process itself (accept, fork)."""
        return cpu_seconds(self.pid)

    def check(self) -> None:
        if str(self.pid) not in (self.group / "cgroup.procs").read_text().split():
            raise RuntimeError("the fork server was restarted while measured: its CPU is not all counted")

    def close(self) -> None:
        for pid in (self.group / "cgroup.procs").read_text().split():  # back to the root cpuacct group
            with contextlib.suppress(OSError):
                (CPUACCT / "cgroup.procs").write_text(pid)
        with contextlib.suppress(OSError):
            self.group.rmdir()


def self_cpu() -> float:
    """User + system CPU seconds of this process (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def forkserver_mode(host: str, checker: Path = CHECKLIB, service_id: int = REALWORLD_SERVICE_ID,
                    label: str = "realworld_forkserver") -> Iterator[Mode]:
    """The `forkserver` mode: the round engine's path (`run_service_action`: the service's
    sandbox and fork server) for the checklib checker; its meter the fork server's tree
    plus this process (the worker's side: env and identity checks, the socket call)."""
    from checker.sandbox import stop_servers
    from checker.sandbox.identity import run_dir

    data = sandbox_game(f"benchrw{os.getpid()}", [(service_id, "checklib")], REALWORLD_TEAMS,
                        REALWORLD_SCHEME, ROUND, checker=checker)
    config = parse_config(data)
    service = config.services[0]
    build_checker_env(config)

    def run(spec: CheckerSpec, path: Path | None, action: str, host: str, flag_id: str = "", flag: str = "",
            vuln: int = 1) -> ActionResult:
        return run_service_action(config, service, action, host, flag_id, flag, vuln)  # type: ignore[arg-type]

    started = time.monotonic()
    first = run(service.checker, None, "check", host)  # starts the fork server (its imports: once)
    console.print(f"forkserver: server started and first check done in {time.monotonic() - started:.2f}s: "
                  f"{first.status.name} {first.private[-300:]}")
    meter = ForkserverMeter(run_dir(config.game.name, service.id))
    console.print(f"forkserver: its startup and first action cost {meter.server():.2f}s CPU in the server")
    base = {"server": meter.server(), "client": self_cpu()}

    def parts() -> dict[str, float]:
        meter.check()
        tree, server, client = meter.tree(), meter.server() - base["server"], self_cpu() - base["client"]
        return {"server": server, "handlers+actions": tree - server, "client": client}

    try:
        yield Mode(label, run, lambda: sum(parts().values()), parts)
    finally:
        meter.close()
        stop_servers(config.game.name)


def _serve_web(hosts: list[str], ready: multiprocessing.synchronize.Event) -> None:
    with serving_notes_web(*hosts):
        ready.set()
        threading.Event().wait()


def start_web(hosts: list[str]) -> multiprocessing.Process:
    """The notes web app on every address in `hosts`, in its own process."""
    return serve_in_process(_serve_web, hosts, "the notes web app")


def chain(mode: Mode, spec: CheckerSpec, host: str, flag: str) -> list[Status]:
    """Check, put `flag` and get it back on `host`; the statuses."""
    check = mode.run(spec, None, "check", host)
    put = mode.run(spec, None, "put", host, "seed", flag, 1)
    get = mode.run(spec, None, "get", host, put.flag_id or "", flag, 1)
    return [check.status, put.status, get.status]


def measure_actions(mode: Mode, spec: CheckerSpec, hosts: list[str], rounds: int,
                    concurrency: int) -> dict[str, float]:
    """`rounds` chains on every host, `concurrency` at a time; actions, OK ones, CPU and wall seconds."""
    jobs = [(host, f"{r:04d}{t:027d}=") for r in range(rounds) for t, host in enumerate(hosts)]
    parts = mode.parts() if mode.parts else {}
    cpu, started = mode.cpu(), time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        statuses = [s for done in pool.map(lambda job: chain(mode, spec, *job), jobs) for s in done]
    figures = {"actions": len(statuses), "ok": statuses.count(Status.OK), "cpu": mode.cpu() - cpu,
               "wall": time.monotonic() - started}
    if mode.parts:
        figures |= {f"part:{k}": v - parts[k] for k, v in mode.parts().items()}
    return figures


def warm_cost(script: Path, host: str, rounds: int) -> dict[str, float]:
    """The same chains in one interpreter of the checker's environment (`WARM`)."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(script.parent)}
    out = subprocess.run([python_of(script), str(WARM), str(script), host, str(rounds)],
                         env=env, capture_output=True, text=True, check=True, timeout=300)
    return json.loads(out.stdout)


def bare_interpreter_cpu(script: Path, runs: int = 10) -> float:
    """CPU seconds of starting and ending the checker's interpreter doing nothing."""
    before = children_cpu()
    for _ in range(runs):
        subprocess.run([python_of(script), "-c", "pass"], check=True)
    return (children_cpu() - before) / runs


def realworld_phase(work: Path, rounds: int, modes: tuple[str, ...] = ("exec", "forkserver")) -> bool:
    """The real-world phase: each mode's CPU per action and actions/s, and the real work's
    share; False when an action against the healthy targets was not OK."""
    folder = work / "realworld"
    folder.mkdir()
    for path in (work, folder):
        path.chmod(0o755)  # the checker runs as nobody when we are root
    started = time.monotonic()
    script = install_checker(REALWORLD_CHECKER, folder)
    console.print(f"realworld: {REALWORLD_CHECKER} environment made in {time.monotonic() - started:.1f}s")
    spec = CheckerSpec(protocol="cli", path=str(script), timeout=10)
    hosts = [REALWORLD_SCHEME.format(team=t) for t in range(1, REALWORLD_TEAMS + 1)]
    concurrency = os.cpu_count() or 1
    target = start_web(hosts)
    healthy = True
    per_action: dict[str, float] = {}
    try:
        warm = warm_cost(script, hosts[0], rounds)
        bare = bare_interpreter_cpu(script)
        for name in modes:
            with contextlib.ExitStack() as stack:
                mode = EXEC if name == "exec" else stack.enter_context(forkserver_mode(hosts[0]))
                target_cpu = cpu_seconds(target.pid)
                figures = measure_actions(mode, spec, hosts, rounds, concurrency)
                target_ms = (cpu_seconds(target.pid) - target_cpu) * 1000 / figures["actions"]
                healthy &= report_realworld(mode, figures, warm, bare, target_ms, concurrency)
                per_action[name] = figures["cpu"] / figures["actions"]
        if "exec" in per_action and "forkserver" in per_action:
            bench("realworld_forkserver_speedup", per_action["exec"] / per_action["forkserver"], "x")
        if "forkserver" in modes:
            platform_overhead(work, hosts[0], rounds * 30)
    finally:
        target.terminate()
        target.join(5)
        shutil.rmtree(folder, ignore_errors=True)
    return healthy


def platform_overhead(work: Path, host: str, actions: int) -> None:
    """The sandbox's own CPU per action: a checker that imports what the checklib checker
    imports (checklib, requests, bs4) and does nothing else, through the fork server."""
    folder = work / "null_checker"
    folder.mkdir()
    shutil.copy(CHECKLIB.parent / "requirements.txt", folder)
    (folder / "checker.py").write_text("import sys\n\nimport bs4\nimport checklib\nimport requests\n\n"
                                       "sys.exit(101 if bs4 and checklib and requests else 110)\n")
    with forkserver_mode(host, folder / "checker.py", REALWORLD_SERVICE_ID + 1, "realworld_null") as mode:
        before = mode.cpu()
        statuses = [mode.run(None, None, "check", host).status for _ in range(actions)]
        per_action = (mode.cpu() - before) * 1000 / actions
    assert set(statuses) == {Status.OK}, statuses
    console.print(f"platform overhead: {per_action:.1f} ms CPU per action (fork server, handler, namespace, "
                  f"fork, exit, worker side) with checklib, requests and bs4 preloaded")
    bench("realworld_forkserver_overhead_per_action", per_action, "ms")


def report_realworld(mode: Mode, figures: dict[str, float], warm: dict[str, float], bare: float,
                     target_ms: float, concurrency: int) -> bool:
    """Print one mode's figures and its BENCH lines; False when an action was not OK."""
    n = figures["actions"]
    per_action = figures["cpu"] / n
    work = warm["work"] / warm["actions"]
    rate = n / figures["wall"]
    console.print(
        f"{mode.label}: {n:.0f} actions ({figures['ok']:.0f} OK) over {REALWORLD_TEAMS} targets, {concurrency} "
        f"at a time: {per_action * 1000:.0f} ms CPU per action, {rate:.1f} actions/s; warm in one interpreter "
        f"{work * 1000:.1f} ms per action ({warm['ok']:.0f}/{warm['actions']:.0f} OK), so real work is "
        f"{work / per_action:.0%} of the cost; a bare interpreter costs {bare * 1000:.0f} ms, importing the "
        f"checker {warm['imports'] * 1000:.0f} ms; the target used {target_ms:.1f} ms per action"
    )
    if parts := {k[5:]: v for k, v in figures.items() if k.startswith("part:")}:
        console.print(f"{mode.label}: CPU per action by where: " + ", ".join(
            f"{k} {v * 1000 / n:.1f} ms" for k, v in parts.items()))
    bench(f"{mode.label}_cpu_per_action", per_action * 1000, "ms")
    bench(f"{mode.label}_actions_per_s", rate, "actions/s")
    bench(f"{mode.label}_work_share", 100 * work / per_action, "%")
    if figures["ok"] < n or warm["ok"] < warm["actions"]:
        console.print("[red]realworld: some actions were not OK against healthy targets")
        return False
    return True


# -- the floor: a production-sized game on the sandboxed path ----------------------------
def floor_phase(work: Path, rounds: int, concurrency: int) -> bool:
    """`FLOOR_TEAMS` x `FLOOR_SERVICES` checklib services (one shared environment, a fork
    server each) against notes_web targets, a real worker and ticker, `rounds` rounds of
    `FLOOR_ROUND` s; per round every chain's tally and when its last chain ended. False when
    a healthy box got a team-costing status."""
    from checker.sandbox import stop_servers

    (work / "redis").mkdir()
    server = RedisServer(work / "redis").start()
    services = [(FLOOR_SERVICE_BASE + i, f"checklib{i}") for i in range(1, FLOOR_SERVICES + 1)]
    data = sandbox_game(f"benchfl{os.getpid()}", services, FLOOR_TEAMS, FLOOR_SCHEME, FLOOR_ROUND,
                        redis_url=server.url, timeout=None)
    path = write_game(work / f"{data['game']['name']}.yml", data)
    config = load_config(path)
    store = GameStore(config, redis.Redis.from_url(server.url, decode_responses=True))
    store.init()
    build_checker_env(config)
    hosts = [FLOOR_SCHEME.format(team=t.id) for t in config.teams]
    targets = [start_web(hosts[i::2]) for i in range(2)]
    worker = ticker = None
    try:
        worker = start_worker(path, work, concurrency, "worker-floor")
        ticker = start_ticker(path, work, "ticker-floor")
        started = time.time()
        store.request_state("start", "bench")
        wait_closed(store, rounds, rounds * FLOOR_ROUND + 180)
        console.print(f"floor: {rounds} rounds closed {time.time() - started:.0f}s after the start")
    finally:
        for process in (ticker, worker):
            if process:
                process.kill()
        for target in targets:
            target.terminate()
            target.join(5)
        stopped = stop_servers(config.game.name)
        console.print(f"floor: {stopped} fork servers stopped")
    try:
        return report_floor(store, rounds, concurrency)
    finally:
        server.cleanup()


def report_floor(store: GameStore, rounds: int, concurrency: int) -> bool:
    """Print the floor phase's figures per round; False when a box got a team-costing status."""
    opened = {int(e["r"]): float(e["t"]) for e in store.events("round") if e["type"] == "opened"}
    config, fair = store.config, True
    for round_ in range(1, rounds + 1):
        details = store.check_details(round_)
        statuses = [Status(d["status"]) for d in details.values()]
        ok, unchecked = statuses.count(Status.OK), statuses.count(Status.CHECKER_ERROR)
        costed = [(box, d) for box, d in sorted(details.items()) if Status(d["status"]) in COSTING]
        actions: dict[str, int] = {}
        for d in details.values():
            for action in d["detail"].get("actions", []):
                name = action.get("action", "?")
                actions[name] = actions.get(name, 0) + 1
        done = max((d["t"] for d in details.values()), default=opened[round_]) - opened[round_]
        durations = sorted(d["detail"].get("duration", 0) for d in details.values())
        median = durations[len(durations) // 2] if durations else 0
        console.print(
            f"floor round {round_}: {len(details)} chains ({len(config.teams)} boxes' teams incl. NOP x "
            f"{len(config.services)} services, worker concurrency {concurrency}): {ok} OK, {len(costed)} "
            f"team-costing, {unchecked} not checked; actions {actions}; last chain done {done:.1f}s after "
            f"the round opened (of {FLOOR_ROUND:.0f}s); chain median {median:.2f}s, max "
            f"{durations[-1] if durations else 0:.2f}s; stats {store.round_stats(round_)}")
        for (team, service), d in costed[:10]:
            console.print(f"[red]floor round {round_} box {team}:{service} {Status(d['status']).name}: "
                          f"{d['public']} | {d['private'][-400:]}")
        for (team, service), d in [(b, d) for b, d in sorted(details.items())
                                   if Status(d["status"]) == Status.CHECKER_ERROR][:5]:
            console.print(f"[yellow]floor round {round_} box {team}:{service} not checked: "
                          f"{d['public']} | {d['private'][-400:]}")
        bench(f"floor_round{round_}_chains_checked", len(details) - unchecked, "chains")
        bench(f"floor_round{round_}_costed_boxes", len(costed), "boxes")
        bench(f"floor_round{round_}_done_s", done, "s")
        fair &= not costed
        last = (len(details) - unchecked, len(costed), done)
    bench("floor_chains_checked", last[0], "chains")
    bench("floor_costed_boxes", last[1], "boxes")
    bench("floor_round_done_s", last[2], "s")
    return fair


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=200)
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=max(4, 4 * (os.cpu_count() or 1)))
    parser.add_argument("--fair-teams", type=int, default=100, help="teams of the fairness phase (too many)")
    parser.add_argument("--fair-rounds", type=int, default=5, help="rounds of the fairness phase")
    parser.add_argument("--realworld-rounds", type=int, default=5,
                        help=f"chains per target ({REALWORLD_TEAMS} targets) of the realworld phase")
    parser.add_argument("--floor-rounds", type=int, default=2, help="rounds of the floor phase")
    parser.add_argument("--floor-concurrency", type=int, default=12, help="worker processes of the floor phase")
    parser.add_argument("--realworld-modes", default="exec,forkserver", help="modes of the realworld phase")
    parser.add_argument("--only", choices=PHASES, help="run one part only")
    args = parser.parse_args()
    phases = (args.only,) if args.only else PHASES
    work = Path(tempfile.mkdtemp(prefix="adrange-bench-checkers-"))
    passed = True
    if "throughput" in phases or "fairness" in phases:
        passed = engine_phases(args, work, phases)
    if "realworld" in phases:
        passed &= realworld_phase(work, args.realworld_rounds, tuple(args.realworld_modes.split(",")))
    if "floor" in phases:
        passed &= floor_phase(work, args.floor_rounds, args.floor_concurrency)
    if not passed:
        sys.exit(1)


def engine_phases(args: argparse.Namespace, work: Path, phases: tuple[str, ...]) -> bool:
    """The throughput and fairness phases asked for, on a private redis-server and the notes
    target; False when the fairness phase found an unfair verdict."""
    (work / "redis").mkdir()
    server = RedisServer(work / "redis").start()
    target = start_target(max(args.teams, 20, args.fair_teams))
    try:
        if "throughput" in phases:
            throughput(server.url, work, args.teams, args.services, args.concurrency)
        if "fairness" in phases:
            return report_fairness(fairness_phase(server.url, work, args.fair_teams, args.fair_rounds),
                                   args.fair_teams)
        return True
    finally:
        target.terminate()
        target.join(5)
        server.cleanup()


if __name__ == "__main__":
    main()
