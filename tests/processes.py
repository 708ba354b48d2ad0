"""Platform processes started for real (`python -m deploy.cli ...`) by tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def write_game(path: Path, data: dict[str, Any]) -> Path:
    """Write a game file for processes to load."""
    path.write_text(yaml.safe_dump(data))
    return path


def wait_port(host: str, port: int, timeout: float = 20, proc: subprocess.Popen | None = None) -> None:
    """Wait until something accepts connections on host:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


class Process:
    """One `adrange` command in its own process group, logged to a file."""

    def __init__(self, args: list[str], log_dir: Path, name: str) -> None:
        self.args = [sys.executable, "-m", "deploy.cli", *args]
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_for: tuple[str, int] | None = None) -> Process:
        log = self.log_path.open("ab")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                     env=env, start_new_session=True)
        if wait_for:
            try:
                wait_port(*wait_for, proc=self.proc)
            except Exception as exc:
                raise RuntimeError(f"{exc}\n--- {self.log_path}:\n{self.log_path.read_text()[-3000:]}") from None
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
