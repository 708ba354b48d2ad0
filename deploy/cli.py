"""The `adrange` command line: one group, each command's work done by its own module."""

from __future__ import annotations

import sys

if sys.argv[1:2] in (["web"], ["replay"]):  # gevent must patch the standard library before anything imports ssl
    from gevent import monkey

    monkey.patch_all()

import os
import secrets
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import click

from scoreboard.config import ConfigError, GameConfig, Service, load_config

if TYPE_CHECKING:
    from rich.progress import Progress

    from checker.envs import CheckerEnv
    from scoreboard.afteraction.record import GameRecord
    from scoreboard.store import GameStore


def load_or_exit(path: str) -> GameConfig:
    """Load a game file or print its errors and exit with status 2."""
    try:
        return load_config(path)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


config_option = click.option(
    "-c", "--config", "config_path", default="game.yml", show_default=True,
    envvar="ADRANGE_CONFIG", help="game file",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """adrange: an attack-defense cyber range."""


@main.command()
@click.argument("path", default="game.yml")
@click.option("--force", is_flag=True, help="overwrite an existing file")
def init(path: str, force: bool) -> None:
    """Write a commented example game file to PATH."""
    target = Path(path)
    if target.exists() and not force:
        raise click.ClickException(f"{path} exists; use --force to overwrite")
    text = resources.files("scoreboard").joinpath("example.yml").read_text()
    text = text.replace("CHANGE-ME-to-a-long-random-string", secrets.token_urlsafe(24))
    text = text.replace("REDIS-PASSWORD", secrets.token_urlsafe(18))
    challenges = Path(__file__).resolve().parent.parent / "challenges"  # the sample challenges
    text = text.replace("CHALLENGES", os.path.relpath(challenges, target.resolve().parent))
    target.write_text(text)
    click.echo(f"wrote {path}")


@main.command()
@click.argument("path")
def validate(path: str) -> None:
    """Check a game file (and the files it names) and print a summary, or every error with its key path."""
    from scoreboard.config import offline_problems

    config = load_or_exit(path)
    problems = offline_problems(config)
    if problems:
        for problem in problems:
            click.echo(f"error: {path}: {problem}", err=True)
        sys.exit(2)
    click.echo(
        f"{path}: ok: game {config.game.name!r}, {len(config.playing_teams)} teams "
        f"(+{len(config.teams) - len(config.playing_teams)} NOP), {len(config.services)} services, "
        f"scoring {config.game.scoring.formula}"
    )


def _logging(verbose: bool) -> None:
    """Rich log lines on a terminal; plain one-line records in log files (greppable, unwrapped)."""
    import logging

    level = logging.DEBUG if verbose else logging.INFO
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        logging.basicConfig(level=level, format="%(name)s: %(message)s", handlers=[RichHandler(show_path=False)])
    else:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command("hash-password")
@click.option("--stdin", "from_stdin", is_flag=True, help="read the password from standard input (no prompt)")
def hash_password(from_stdin: bool) -> None:
    """Print the hash of an admin password, for web.admin_password_hash in the game file."""
    from werkzeug.security import generate_password_hash

    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("admin password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise click.ClickException("use at least 8 characters")
    click.echo(generate_password_hash(password))


@main.command("admin-password")
@config_option
def admin_password_command(config_path: str) -> None:
    """Generate a new admin password for a game whose file sets none (printed once, stored
    hashed); everyone logged in to the web is logged out."""
    from deploy.organizer import replace_admin_password

    config = load_or_exit(config_path)
    try:
        password = replace_admin_password(config, _store_or_exit(config))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"new admin password (shown once, stored hashed): {password}")


@main.command("teams")
@config_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def teams_command(config_path: str, fmt: str) -> None:
    """The teams with their addresses, portal tokens and SSH logins, to hand out."""
    from deploy.organizer import FIELDS, effective_config, render_rows, team_rows

    config, source = effective_config(load_or_exit(config_path))
    rows = team_rows(config)
    if fmt != "table":
        click.echo(render_rows(rows, fmt), nl=False)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{config.game.name}: teams ({source})")
    for field in FIELDS:
        table.add_column(field, no_wrap=True)
    cells = [[str(row[f]) for f in FIELDS] for row in rows]
    for line in cells:
        table.add_row(*line)
    # Never cut a token or a password to fit the terminal: a narrow one wraps whole lines.
    needed = sum(max(len(f), *(len(line[i]) for line in cells)) + 3 for i, f in enumerate(FIELDS)) + 1
    console = Console()
    Console(width=max(console.width, needed)).print(table)


@main.command("game")
@config_option
@click.argument("action", type=click.Choice(["status", "start", "pause", "resume", "stop", "reopen"]))
@click.option("--stop-at", default=None, help="reopen: the new end (ISO time); default none")
def game_command(config_path: str, action: str, stop_at: str | None) -> None:
    """Show the game's state, or ask the ticker to start, pause, resume, stop or reopen it."""
    import datetime as dt
    import json

    from deploy.organizer import game_status
    from scoreboard.store import GameStore, StateError, connect

    config = load_or_exit(config_path)
    if action != "status":
        store = GameStore(config, connect(config.redis_url))
        try:
            if action == "reopen":
                store.reopen(dt.datetime.fromisoformat(stop_at).timestamp() if stop_at else None, "cli")
            else:
                store.request_state(action, "cli")
        except StateError as exc:
            raise click.ClickException(str(exc)) from None
        except ValueError as exc:
            raise click.ClickException(f"--stop-at: {exc}") from None
        held = store.ticker_lease_holder()
        click.echo(f"{action} requested: " + ("the ticker applies it within a second" if held
                                              else "no ticker runs now; it applies it when one starts"))
        return
    click.echo(json.dumps(game_status(config), indent=2))


def _store_or_exit(config: GameConfig) -> GameStore:
    """The game's store, or a clear stop when its Redis does not answer."""
    import redis

    from scoreboard.store import GameStore, connect, without_password

    store = GameStore(config, connect(config.redis_url))
    try:
        store.redis.ping()
    except redis.RedisError as exc:
        raise click.ClickException(f"Redis at {without_password(config.redis_url)} does not answer: {exc}") from None
    return store


@main.command("rescore")
@config_option
@click.option("--repair", is_flag=True, help="write the recomputed counters over the live ones (safe while playing)")
def rescore_command(config_path: str, repair: bool) -> None:
    """Recompute every score from the event streams and compare with the live counters.

    Exits 0 when they are equal (or were repaired), 1 when they differ."""
    from rich.console import Console
    from rich.table import Table

    from scoreboard.scoring.audit import rescore

    store = _store_or_exit(load_or_exit(config_path))
    audit = rescore(store, repair=repair)
    click.echo(f"replayed {audit.captures} accepted flags and {audit.closes} round closes over {audit.boxes} boxes")
    if audit.equal:
        click.echo("live counters equal the event streams")
        return
    table = Table("team", "service", "counter", "live", "recomputed", title="differences")
    for difference in audit.differences:
        for name, (live, rebuilt) in difference.fields.items():
            table.add_row(str(difference.box[0]), str(difference.box[1]), name, str(live), str(rebuilt))
    Console().print(table)
    for team, (live, rebuilt) in audit.totals.items():
        click.echo(f"{team}: total {live:g} live, {rebuilt:g} recomputed")
    if audit.repaired:
        click.echo(f"repaired {len(audit.differences)} boxes: the live counters now equal the event streams")
    else:
        click.echo("run with --repair to write the recomputed counters")
        sys.exit(1)


@main.command("export")
@config_option
@click.option("-o", "--output", "folder", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="folder to write (default export-<game>)")
def export_command(config_path: str, folder: Path | None) -> None:
    """Write the final scoreboard, its round-by-round history, the CTFtime feed and every
    event stream (JSON Lines) into a folder."""
    from deploy.export import export

    config = load_or_exit(config_path)
    store = _store_or_exit(config)
    folder = folder or Path(f"export-{config.game.name}")
    written = export(store, folder, lambda stream, n: click.echo(f"events/{stream}.jsonl: {n} events"))
    click.echo(f"wrote {folder}/scoreboard.json, ctftime.json and {sum(written.values())} events")


def _record_or_exit(game: Path, config_path: str | None) -> GameRecord:
    """A game's record from an export folder or a game file with live Redis, or a clear stop."""
    from scoreboard.afteraction.record import RecordError, load

    try:
        return load(game, Path(config_path) if config_path else None)
    except RecordError as exc:
        raise click.ClickException(str(exc)) from None


@main.command("replay")
@click.argument("game", type=click.Path(path_type=Path), default="game.yml")
@click.option("-c", "--config", "config_path", default=None,
              help="the game file, for an export folder written before exports kept the scoring setup")
@click.option("--speed", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="game seconds per second")
@click.option("--round", "start_round", type=click.IntRange(min=0), default=0, show_default=True,
              help="start at the end of this round (0: the game's start)")
@click.option("--paused", is_flag=True, help="start paused")
@click.option("--host", default="127.0.0.1", show_default=True, help="listen address")
@click.option("--port", type=int, default=8090, show_default=True, help="listen port")
@click.option("--check", is_flag=True, help="only compare the replay with the live history; exit 1 when they differ")
def replay_command(game: Path, config_path: str | None, speed: float, start_round: int, paused: bool, host: str,
                   port: int, check: bool) -> None:
    """Replay a game on the real board, from its event streams: GAME is an export folder
    (`adrange export`) or a game file whose Redis answers. Every round's totals and ranks are
    first compared with the live history."""
    from scoreboard.afteraction.timeline import Timeline, differences

    timeline = Timeline(_record_or_exit(game, config_path))
    found = differences(timeline)
    rounds = len(timeline.closes)
    if found:
        click.echo(f"the replay differs from the live history in {len(found)} places:", err=True)
        for line in found[:20]:
            click.echo(f"  {line}", err=True)
    else:
        click.echo(f"replayed {len(timeline.steps)} events: every round's totals and ranks ({rounds} rounds) "
                   "equal the live history")
    if check:
        sys.exit(1 if found else 0)
    if start_round and start_round not in timeline.closes:
        raise click.ClickException(f"--round {start_round}: the game closed rounds 1 to {rounds} only")
    from scoreboard.afteraction.server import serve_replay

    click.echo(f"replay of {timeline.config.game.name} on http://{host}:{port}/ at {speed:g}x")
    serve_replay(timeline, host, port, speed, start_round, paused)


@main.command("report")
@click.argument("game", type=click.Path(path_type=Path), required=False)
@click.option("-c", "--config", "config_path", default=None,
              help="the game file (live Redis; default game.yml when no GAME), or with an export folder the "
              "game file for an export written before exports kept the scoring setup")
@click.option("-o", "--output", "folder", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="folder to write (default report-<game>)")
@click.option("--lang", type=click.Choice(["zh", "en", "both"]), default="both", show_default=True)
@click.option("--no-pdf", is_flag=True, help="write the HTML only")
@click.option("--chromium", default="/usr/bin/chromium", show_default=True, help="the Chromium that prints the PDF")
def report_command(game: Path | None, config_path: str | None, folder: Path | None, lang: str, no_pdf: bool,
                   chromium: str) -> None:
    """Write the after-action report: one self-contained HTML file (opens offline) and its PDF
    per language. GAME: an export folder (`adrange export`); without it, the game of -c in live Redis."""
    import time

    from rich.console import Console

    from scoreboard.afteraction.report import ReportError, write_reports

    if game is None:
        game, config_path = Path(config_path or "game.yml"), None
    record = _record_or_exit(game, config_path)
    folder = folder or Path(f"report-{record.config.game.name}")
    languages = ("zh", "en") if lang == "both" else (lang,)
    console = Console(stderr=True)
    started = time.monotonic()
    try:
        with console.status("writing the report") as status:
            written = write_reports(record, folder, languages, pdf=not no_pdf, chromium=chromium,
                                    progress=lambda what: status.update(what))
    except ReportError as exc:
        raise click.ClickException(str(exc)) from None
    for item in written:
        click.echo(f"{item.lang}: wrote {item.html}" + (f" and {item.pdf}" if item.pdf else ""))
    click.echo(f"report written in {time.monotonic() - started:.1f} s")


@main.command("web")
@config_option
@click.option("--host", default=None, help="listen address (default web.host)")
@click.option("--port", type=int, default=None, help="listen port (default web.port)")
@click.option("-v", "--verbose", is_flag=True)
def web_command(config_path: str, host: str | None, port: int | None, verbose: bool) -> None:
    """Serve the board, team portal, admin, JSON APIs and HTTP submission."""
    from scoreboard.store import wait_for_redis
    from scoreboard.web.serve import serve

    config = load_or_exit(config_path)
    _logging(verbose)
    wait_for_redis(config.redis_url, "web")
    serve(config, host, port)


@main.command("submit-server")
@config_option
@click.option("--join", is_flag=True,
              help="share the ports with a submit-server already running (scale-out); without it a busy "
                   "port is refused")
@click.option("-v", "--verbose", is_flag=True)
def submit_server_command(config_path: str, join: bool, verbose: bool) -> None:
    """Serve TCP flag submission (faust, ructf, forcad dialects; ports from the game file)."""
    import uvloop  # libuv's event loop: two to three times asyncio's round trips per second here

    from scoreboard.store import wait_for_redis
    from scoreboard.submission.tcp import PortInUse, serve

    config = load_or_exit(config_path)
    _logging(verbose)
    wait_for_redis(config.redis_url, "submit-server")
    try:
        uvloop.run(serve(config, join=join))
    except KeyboardInterrupt:
        pass
    except PortInUse as exc:
        raise click.ClickException(exc.strerror) from None


@main.command("ticker")
@config_option
@click.option("--lease", type=float, default=3.0, show_default=True,
              help="seconds a dead active ticker keeps the lease before a standby takes over")
@click.option("-v", "--verbose", is_flag=True)
def ticker_command(config_path: str, lease: float, verbose: bool) -> None:
    """Run the round clock (one active per game; start more as hot standby)."""
    from checker.ticker import run_ticker

    config = load_or_exit(config_path)
    _logging(verbose)
    run_ticker(config, lease_seconds=lease)


@main.command("worker")
@config_option
@click.option("--concurrency", type=int, default=None, help="worker processes (default: CPU count)")
@click.option("-v", "--verbose", is_flag=True)
def worker_command(config_path: str, concurrency: int | None, verbose: bool) -> None:
    """Run a Celery worker (prefork) that checks the game's targets."""

    from scoreboard.store import wait_for_redis

    config = load_or_exit(config_path)
    wait_for_redis(config.redis_url, "worker")  # its warnings reach stderr before Celery sets up logging
    os.environ["ADRANGE_CONFIG"] = str(Path(config_path).resolve())
    from checker.celery_app import app, current_config, queue_name, run_worker

    argv = ["worker", "-P", "prefork", "-Q", queue_name(current_config()), "-n", f"adrange.{os.getpid()}@%h",
            "--without-gossip", "--without-mingle", "-l", "DEBUG" if verbose else "INFO"]
    if concurrency:
        argv += ["-c", str(concurrency)]
    run_worker(app, argv, [sys.executable, "-m", "deploy.cli", *sys.argv[1:]])


@main.command("run")
@config_option
def run_command(config_path: str) -> None:
    """Run the platform's processes (web, TCP submission, ticker, worker; the capture
    process too with captures.enabled) supervised.

    One per game: a second `adrange run` of the same game is refused while the first
    lives. A local redis_url where nothing answers gets a redis-server of its own (data in
    .run/<game>/redis); logs go to .run/<game>/logs; the processes die with this command
    however it ends (Ctrl-C, SIGTERM, kill -9)."""
    from pathlib import Path

    from deploy.demo import platform_programs
    from deploy.redis_server import ensure_redis
    from deploy.supervisor import Program, RunLease, Supervisor, adrange, state_dir
    from scoreboard.store import GameStore, connect
    from scoreboard.web.auth import new_admin_password

    config = load_or_exit(config_path)
    if config.captures.enabled:  # refuse now, not in a capture process restarted for ever
        from deploy.captures import CaptureError, check_host

        try:
            check_host(config)
        except CaptureError as exc:
            raise click.ClickException(f"captures.enabled: {exc}") from None
    work = state_dir(config.game.name)
    lease = RunLease(work)
    if not lease.acquire():
        raise click.ClickException(f"game {config.game.name!r} is already running (adrange run, pid "
                                   f"{lease.holder()}); stop that one first")
    try:
        redis_server = ensure_redis(config.redis_url, work / "redis", click.echo)
    except RuntimeError as exc:
        lease.release()
        raise click.ClickException(str(exc)) from None
    store = GameStore(config, connect(config.redis_url))
    store.init()
    password = new_admin_password(config, store)
    supervisor = Supervisor(work / "logs")
    try:
        for program in platform_programs(Path(config_path).resolve()):
            supervisor.start(program)
        if config.captures.enabled:  # hosted only (config.py): tcpdump per box, as root
            supervisor.start(Program("captures", adrange("captures", "run", "-c", str(Path(config_path).resolve()))))
        web = f"http://{config.web.host}:{config.web.port}"
        click.echo(f"board {web}/  portal {web}/team/  admin {web}/admin/")
        if password:
            click.echo(f"admin password (shown once, stored hashed): {password}")
        click.echo(f"running; logs in {supervisor.log_dir}; Ctrl-C stops")
        supervisor.wait()
    finally:
        supervisor.stop_all()
        if redis_server:
            redis_server.stop()
        lease.release()


@main.command("demo")
@click.option("--teams", type=click.IntRange(2, 6), default=4, show_default=True, help="playing demo teams")
@click.option("--round-seconds", type=float, default=20, show_default=True)
@click.option("--resume", is_flag=True, help="continue the last demo game instead of a fresh one")
@click.option("--redis-port", type=int, default=6390, show_default=True)
@click.option("--web-port", type=int, default=5000, show_default=True)
@click.option("--submit-port", type=int, default=31337, show_default=True,
              help="faust dialect port; ructf and forcad use the next two")
@click.option("--name", default="demo", show_default=True, help="game name (containers, networks, Redis keys)")
@click.option("--subnet", default="10.77.0.0/16", show_default=True, help="the boxes' bridge network")
def demo_command(teams: int, round_seconds: float, resume: bool, redis_port: int, web_port: int,
                 submit_port: int, name: str, subnet: str) -> None:
    """A live demo exercise: targets, checkers, attacking bots, board on http://127.0.0.1:5000."""
    from deploy.demo import run_demo

    _logging(False)
    try:
        run_demo(teams, round_seconds, resume, redis_port, web_port, submit_port, name, subnet)
    except RuntimeError as exc:  # already running, no redis-server: say so, no traceback
        raise click.ClickException(str(exc)) from None


@main.command("bot")
@config_option
@click.option("--team", "team_id", type=int, required=True, help="the team this bot plays")
@click.option("--via", type=click.Choice(["http", "faust", "forcad"]), default="http", show_default=True)
@click.option("--web-url", default=None, help="board URL (default from web.host/port)")
@click.option("--interval", type=float, default=None, help="seconds between sweeps (default round/3)")
@click.option("--patch-at-round", type=int, default=None, help="patch own boxes from this round on")
@click.option("--down-service", default=None, help="service to take down for a while")
@click.option("--down-at-round", type=int, default=None)
@click.option("--down-rounds", type=int, default=2, show_default=True)
def bot_command(config_path: str, team_id: int, via: str, web_url: str | None, interval: float | None,
                patch_at_round: int | None, down_service: str | None, down_at_round: int | None,
                down_rounds: int) -> None:
    """An attacker bot: reference exploits against the other teams, flags submitted via a protocol."""
    from deploy.bots import Bot, BotPlan

    config = load_or_exit(config_path)
    _logging(False)
    plan = BotPlan(via, patch_at_round, down_service, down_at_round, down_rounds)
    url = web_url or f"http://{config.web.host}:{config.web.port}"
    Bot(config, team_id, plan, url).run(interval or max(2.0, config.game.round_seconds / 3))


@main.group("checkers")
def checkers_group() -> None:
    """Per-service checker environments: fetch wheels, build venvs, show their state; stop fork servers."""


wheelhouse_option = click.option("--wheelhouse", type=click.Path(path_type=Path), default=None,
                                 help="wheel folder (default $ADRANGE_WHEELHOUSE or /var/lib/adrange/wheelhouse)")


def _progress() -> Progress:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=Console(stderr=True))


@checkers_group.command("fetch")
@config_option
@wheelhouse_option
def checkers_fetch(config_path: str, wheelhouse: Path | None) -> None:
    """Download every checker's requirements into the wheelhouse (on a connected machine)."""
    from checker import envs

    config = load_or_exit(config_path)
    target = wheelhouse or envs.wheelhouse_dir()
    files = envs.requirements_files(config)
    with _progress() as progress:
        task = progress.add_task(f"fetching into {target}", total=len(files))
        try:
            envs.fetch(config, target, done=lambda _: progress.advance(task))
        except (envs.CheckerEnvError, OSError) as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"fetched {len(files)} requirements file(s) into {target}")


@checkers_group.command("build")
@config_option
@wheelhouse_option
@click.option("--online", is_flag=True, help="install from the package registry instead of only the wheelhouse")
def checkers_build(config_path: str, wheelhouse: Path | None, online: bool) -> None:
    """Build each service's checker environment that is not ready (offline from the wheelhouse)."""
    import time

    from checker import envs

    config = load_or_exit(config_path)
    groups = _env_groups(config)
    errors = []
    with _progress() as progress:
        task = progress.add_task("checker environments", total=len(groups))
        for env, services in groups.items():
            names = ", ".join(s.name for s in services)
            progress.update(task, description=names)
            was_ready, started = env.ready, time.monotonic()
            try:
                envs.build_env(config, services[0], wheelhouse, online)
                state = "ready" if was_ready else f"built in {time.monotonic() - started:.1f}s"
                progress.console.print(f"{names}: {state}: {env.root}")
            except envs.CheckerEnvError as exc:
                errors.append(f"{names}: {exc}")
            progress.advance(task)
    if errors:
        raise click.ClickException("\n".join(errors))


@checkers_group.command("status")
@config_option
def checkers_status(config_path: str) -> None:
    """Show each service's checker environment: path, ready or not, requirements."""
    from rich.console import Console
    from rich.table import Table

    from checker import envs

    config = load_or_exit(config_path)
    table = Table("service", "environment", "state", "requirements", title="checker environments")
    for env, services in _env_groups(config).items():
        requirements = envs.requirements_file(config, services[0])
        needs = envs.requirement_lines(requirements) if requirements else []
        needs += [f"apt:{name}" for name in services[0].checker.apt]
        table.add_row(", ".join(s.name for s in services), str(env.root),
                      "[green]ready" if env.ready else "[red]not built", " ".join(needs) or "-")
    Console().print(table)


@checkers_group.command("stop")
@config_option
def checkers_stop(config_path: str) -> None:
    """Stop the game's checker fork servers (workers start them again when needed)."""
    from checker.sandbox import stop_servers

    config = load_or_exit(config_path)
    click.echo(f"stopped {stop_servers(config.game.name)} fork server(s)")


def _env_groups(config: GameConfig) -> dict[CheckerEnv, list[Service]]:
    """Each checker environment with the services that share it, in game file order."""
    from checker import envs

    groups: dict[CheckerEnv, list[Service]] = {}
    try:
        for service in envs.checker_services(config):
            groups.setdefault(envs.env_for(config, service), []).append(service)
    except envs.CheckerEnvError as exc:
        raise click.ClickException(str(exc)) from None
    return groups


@main.group("captures")
def captures_group() -> None:
    """Traffic captures of the hosted boxes: run the capture process, list the files."""


@captures_group.command("run")
@config_option
@click.option("-v", "--verbose", is_flag=True)
def captures_run(config_path: str, verbose: bool) -> None:
    """Capture every box's traffic into per-round pcap files for its team (as root; one per game)."""
    from deploy.captures import CaptureError, Recorder, check_host
    from scoreboard.store import wait_for_redis

    config = load_or_exit(config_path)
    if not config.captures.enabled:
        raise click.ClickException(f"{config_path}: captures.enabled is false: this game captures nothing")
    _logging(verbose)
    wait_for_redis(config.redis_url, "captures")
    try:
        check_host(config)
        Recorder(config, _store_or_exit(config)).run()
    except CaptureError as exc:
        raise click.ClickException(str(exc)) from None


@captures_group.command("list")
@config_option
def captures_list(config_path: str) -> None:
    """Per team: capture files, how many are released, their size and rounds."""
    from rich.console import Console
    from rich.table import Table

    from deploy.captures import listing
    from scoreboard.captures import game_dir

    config = load_or_exit(config_path)
    table = Table("team", "files", "released", "MiB", "rounds",
                  title=f"{game_dir(config)} (released {config.captures.delay_rounds} round(s) after)")
    for row in listing(config, _store_or_exit(config)):
        rounds = f"{row.rounds[0]}-{row.rounds[-1]}" if row.rounds else "-"
        table.add_row(row.team, str(row.files), str(row.released), f"{row.size / 2**20:.1f}", rounds)
    Console().print(table)


from deploy.commands import register  # noqa: E402

register(main)

if __name__ == "__main__":
    main()
