"""Helpers for tests/test_challenges.py: run sample challenges for real on loopback.

A challenge's service runs as a subprocess (stdlib only: ``python -I -S``) on its own
127.0.9.N address with a temporary data folder; checkers are loaded from their files and run
through `checker.lib` (native) or as CLI processes; exploits are imported or run as scripts.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import random
import shutil
import socket
import string
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from checker.lib import Checker
from tests.processes import wait_port

ROOT = Path(__file__).resolve().parent.parent / "challenges"
CHALLENGES = ("notes", "vault", "shop", "pinger")
START_SECONDS = 10.0


@dataclass(frozen=True)
class Challenge:
    """One challenge folder and its ``challenge.yml``."""

    name: str
    folder: Path
    spec: dict[str, Any]

    @property
    def port(self) -> int:
        return int(self.spec["ports"][0])

    @property
    def vulns(self) -> list[int]:
        return list(self.spec["vulns"])

    @property
    def file_mode(self) -> bool:
        return self.spec.get("flag_mode") == "file"

    def checker_class(self) -> type[Checker]:
        """The `Checker` subclass named by ``checker.class``, loaded from ``checker.path``."""
        module = _load(self.folder / self.spec["checker"]["path"], f"challenge_{self.name}_checker")
        return getattr(module, self.spec["checker"]["class"])

    def exploit_module(self) -> ModuleType:
        return _load(self.folder / "exploit.py", f"challenge_{self.name}_exploit")


def challenge(name: str) -> Challenge:
    """The challenge in ``challenges/<name>``."""
    folder = ROOT / name
    return Challenge(name, folder, yaml.safe_load((folder / "challenge.yml").read_text()))


def loopback(slot: int, name: str) -> str:
    """A loopback address of its own for test `slot` (0-24) and challenge `name`."""
    return f"127.0.9.{slot * 10 + CHALLENGES.index(name) + 1}"


def new_flag(prefix: str | None = None) -> str:
    """A random flag in the default ``[A-Z0-9]{31}=`` form, or ``PREFIX{...}``."""
    body = "".join(random.choices(string.ascii_uppercase + string.digits, k=31))
    return f"{prefix}{{{body.lower()}}}" if prefix else body + "="


def _load(path: Path, module_name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ServiceProcess:
    """A challenge service running as a real subprocess; a context manager that stops it."""

    def __init__(self, ch: Challenge, host: str, workdir: Path, service_dir: Path | None = None) -> None:
        self.challenge, self.host = ch, host
        self.service_dir = service_dir or ch.folder / "service"
        self.data = workdir / "data"
        self.flag_file = workdir / "flag"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "service.log"

    def start(self) -> ServiceProcess:
        """Start the service and wait until it listens; a no-op when it already runs."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        cmd = [sys.executable, "-I", "-S", str(self.service_dir / "app.py"), "--host", self.host,
               "--port", str(self.challenge.port), "--data", str(self.data)]
        if self.challenge.file_mode:
            cmd += ["--flag-file", str(self.flag_file)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.service_dir)
        try:
            wait_port(self.host, self.challenge.port, START_SECONDS)
            time.sleep(0.05)
            if self.proc.poll() is not None:  # somebody else holds the address
                raise TimeoutError
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"{self.challenge.name} did not start:\n{self.log.read_text()}") from None
        return self

    def stop(self) -> None:
        """Terminate the service (kill it if it lingers)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def patched_service(ch: Challenge, dest: Path, vulns: list[int]) -> Path:
    """A copy of the service in `dest` with ``patches/vulnN.patch`` applied by ``patch -p1``."""
    target = dest / "service"
    shutil.copytree(ch.folder / "service", target)
    for vuln in vulns:
        patch = ch.folder / "patches" / f"vuln{vuln}.patch"
        done = subprocess.run(["patch", "-p1", "--batch", "--forward", "-i", str(patch)], cwd=target,
                              capture_output=True, text=True)
        assert done.returncode == 0, f"{patch} does not apply:\n{done.stdout}{done.stderr}"
    return target


def run_checker_cli(ch: Challenge, *args: str) -> subprocess.CompletedProcess[str]:
    """``python checker.py ARGS`` in the challenge folder, as the CLI runner starts it."""
    return subprocess.run([sys.executable, ch.spec["checker"]["path"], *args], cwd=ch.folder,
                          capture_output=True, text=True, timeout=60)


def steal(ch: Challenge, host: str, attack_data: list[Any], flag_file: Path | None = None) -> list[str]:
    """The flags the imported reference exploit returns."""
    exploit = ch.exploit_module().exploit
    if flag_file is not None and "flag_file" in inspect.signature(exploit).parameters:
        return exploit(host, attack_data, flag_file=str(flag_file))
    return exploit(host, attack_data)


def steal_cli(ch: Challenge, host: str, attack_data: list[Any], flag_file: Path | None = None) -> list[str]:
    """The flags ``python exploit.py HOST --attack-data JSON`` prints (it must exit 0)."""
    cmd = [sys.executable, "exploit.py", host, "--attack-data", json.dumps(attack_data)]
    if flag_file is not None and ch.file_mode:
        cmd += ["--flag-file", str(flag_file)]
    done = subprocess.run(cmd, cwd=ch.folder, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@contextmanager
def wrong_service(host: str, port: int) -> Iterator[None]:
    """Something else listening on `port`: it answers every connection with an HTTP 404 and closes."""
    server = socket.create_server((host, port))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(0.3)
                try:
                    conn.recv(65536)
                except TimeoutError:
                    pass
                conn.sendall(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(2)
        server.close()
