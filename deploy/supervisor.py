"""Run the platform's processes side by side: start, log, restart on crash, stop all.

Each program runs in its own process group with its output in ``LOG_DIR/<name>.log``.
A program that dies is started again after a back-off that doubles per quick crash and
starts over once the program has stayed up `HEALTHY_SECONDS` (a live exercise keeps
going). SIGINT or SIGTERM stops every program (SIGTERM, then SIGKILL after a grace
period). The programs die with the supervisor even when it is killed -9: each gets
SIGKILL from the kernel when its parent dies (``PR_SET_PDEATHSIG``), and passes the same
on to its own children (Celery's pool does; so do the checkers' fork servers).

`RunLease` keeps a second supervisor of the same game from starting (a lock the kernel
drops when its holder dies, however it dies).
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
HEALTHY_SECONDS = 30.0  # up this long: the next crash restarts it at once again
MAX_BACKOFF = 30.0
PR_SET_PDEATHSIG = 1


@dataclass
class Program:
    """One supervised command."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    restart: bool = True
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0  # starts since the program last stayed up HEALTHY_SECONDS
    next_start: float = 0.0
    started_at: float = 0.0
    last_delay: float = 0.0


def state_dir(game: str) -> Path:
    """A game's own folder for its lease, logs and local state: ``.run/<game>``."""
    return ROOT / ".run" / game


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable by its owner only: game state and logs hold
    secrets (a generated admin password is printed to the web log, Redis keeps tokens)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def adrange(*args: str) -> list[str]:
    """argv for an `adrange` subcommand run with this interpreter."""
    return [sys.executable, "-m", "deploy.cli", *args]


class Supervisor:
    """Starts programs, restarts the ones that crash, stops them all on request."""

    def __init__(self, log_dir: Path, console: Console | None = None,
                 healthy_seconds: float = HEALTHY_SECONDS) -> None:
        self.log_dir = log_dir
        self.healthy_seconds = healthy_seconds
        private_dir(self.log_dir)
        self.console = console or Console(stderr=True)
        self.programs: list[Program] = []
        self.stopping = False

    def start(self, program: Program) -> Program:
        """Start a program now and keep it supervised."""
        self.programs.append(program)
        self._spawn(program)
        return program

    def _spawn(self, program: Program) -> None:
        log = os.fdopen(os.open(self.log_dir / f"{program.name}.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600),
                        "ab")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **program.env}
        program.proc = subprocess.Popen(program.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        cwd=ROOT, env=env, start_new_session=True, preexec_fn=die_with_parent)
        log.close()
        program.starts += 1
        program.started_at = time.monotonic()

    def poll(self) -> None:
        """Restart crashed programs (with back-off); call this regularly."""
        now = time.monotonic()
        for program in self.programs:
            if self.stopping or program.proc is None or program.proc.poll() is None:
                continue
            if not program.restart:
                continue
            if program.next_start == 0.0:
                if now - program.started_at >= self.healthy_seconds:
                    program.starts = 0
                delay = program.last_delay = backoff(program.starts)
                program.next_start = now + delay
                self.console.log(f"[yellow]{program.name} exited with {program.proc.returncode}; "
                                 f"restarting in {delay:.1f}s (log: {self.log_dir / program.name}.log)")
            elif now >= program.next_start:
                program.next_start = 0.0
                self._spawn(program)

    def wait(self, interval: float = 0.5) -> None:
        """Supervise until SIGINT/SIGTERM."""
        def _stop(_sig: int, _frame: object) -> None:
            self.stopping = True

        old_int = signal.signal(signal.SIGINT, _stop)
        old_term = signal.signal(signal.SIGTERM, _stop)
        try:
            while not self.stopping:
                self.poll()
                time.sleep(interval)
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)

    def stop_all(self, grace: float = 8.0) -> None:
        """SIGTERM every program's group, then SIGKILL what is left after `grace` seconds."""
        self.stopping = True
        running = [p for p in self.programs if p.proc and p.proc.poll() is None]
        for program in running:
            _signal_group(program, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for program in running:
            assert program.proc is not None
            try:
                program.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(program, signal.SIGKILL)
                program.proc.wait()


def backoff(quick_crashes: int) -> float:
    """Seconds before the next start after this many starts that each crashed quickly."""
    return min(MAX_BACKOFF, 2.0 ** min(quick_crashes, 8) / 4)


def die_with_parent() -> None:
    """In a child before exec: ask the kernel for SIGKILL when the parent dies."""
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        os._exit(70)
    if os.getppid() == 1:  # the parent died before the request took effect
        os._exit(70)


class RunLease:
    """An exclusive lock on ``<state dir>/run.lock``: one supervisor per game.

    The kernel drops it when the holder exits, so a crashed supervisor never blocks the
    next one. `holder` names the process holding it, for the refusal message.
    """

    def __init__(self, state_dir: Path) -> None:
        private_dir(state_dir)
        self.path = state_dir / "run.lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock (False if another live process holds it)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        """The pid written by the process holding the lock ('?' if unreadable)."""
        try:
            return self.path.read_text().strip() or "?"
        except OSError:
            return "?"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _signal_group(program: Program, sig: int) -> None:
    assert program.proc is not None
    try:
        os.killpg(program.proc.pid, sig)
    except ProcessLookupError:
        pass
