"""Run the platform's processes side by side: start, log, restart on crash, stop all.

Each program runs in its own process group with its output in ``LOG_DIR/<name>.log``.
A program that dies is started again after a short back-off (a live exercise keeps going);
SIGINT or SIGTERM stops every program (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Program:
    """One supervised command."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    restart: bool = True
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    next_start: float = 0.0


def adrange(*args: str) -> list[str]:
    """argv for an `adrange` subcommand run with this interpreter."""
    return [sys.executable, "-m", "deploy.cli", *args]


class Supervisor:
    """Starts programs, restarts the ones that crash, stops them all on request."""

    def __init__(self, log_dir: Path, console: Console | None = None) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.console = console or Console(stderr=True)
        self.programs: list[Program] = []
        self.stopping = False

    def start(self, program: Program) -> Program:
        """Start a program now and keep it supervised."""
        self.programs.append(program)
        self._spawn(program)
        return program

    def _spawn(self, program: Program) -> None:
        log = (self.log_dir / f"{program.name}.log").open("ab")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **program.env}
        program.proc = subprocess.Popen(program.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        cwd=ROOT, env=env, start_new_session=True)
        log.close()
        program.starts += 1

    def poll(self) -> None:
        """Restart crashed programs (with back-off); call this regularly."""
        now = time.monotonic()
        for program in self.programs:
            if self.stopping or program.proc is None or program.proc.poll() is None:
                continue
            if not program.restart:
                continue
            if program.next_start == 0.0:
                delay = min(30.0, 2.0 ** min(program.starts, 5) / 4)
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


def _signal_group(program: Program, sig: int) -> None:
    assert program.proc is not None
    try:
        os.killpg(program.proc.pid, sig)
    except ProcessLookupError:
        pass
