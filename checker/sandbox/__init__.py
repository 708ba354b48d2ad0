"""Checker actions in a sandbox with no way out: never in the worker, never as root.

Each service's actions go to its own resident fork server (`forkserver.py`), started by the
worker as the service's dedicated user (`identity.ensure_identity`), in the service's cgroup
(memory, pids and CPU limits), with the interpreter of the service's own checker
environment (`checker.envs`). Each action is the init of a new PID namespace, so every
process it starts dies with it. Python CLI checkers are forked from the server, which has
imported their dependencies once; other CLI programs are executed; native checkers run one
method in a forked process. Whatever cannot be set up is CHECKER_ERROR with the reason in
the private message: an action never falls back to root or to the worker.
"""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from checker.envs import CheckerEnv, CheckerEnvError, ensure_env
from scoreboard.config import GameConfig, Service
from scoreboard.types import Status

from ..runner.base import ActionRequest, ActionResult
from ..runner.cli import cli_verdict
from .identity import RUN_ROOT, Identity, Limits, SandboxError, ensure_identity, join_cgroup

log = logging.getLogger(__name__)

# Seconds allowed past an action's timeout for the fork server to answer.
ANSWER_GRACE = 5.0
START_SECONDS = 30.0
# How long a worker process trusts its last look at a service's environment and identity
# (hashing the checker folder and re-setting the cgroup on every action would cost more
# than the action's own platform overhead).
RECHECK_SECONDS = 10.0
_lock = threading.Lock()
_ready: dict[tuple[str, int], tuple[CheckerEnv, Identity, float]] = {}  # (game, service) -> env, identity, checked

__all__ = ["SandboxError", "run_sandboxed", "stop_servers"]


def run_sandboxed(config: GameConfig, service: Service, request: ActionRequest) -> ActionResult:
    """Run one action of `service`'s checker (CLI or native) in its sandbox."""
    started = time.monotonic()
    try:
        env, identity = _prepare(config, service)
        payload = _request(service, request, env, identity)
        try:
            answer = _call(identity, payload, request.timeout + ANSWER_GRACE)
        except (ConnectionRefusedError, FileNotFoundError):  # the server idled out or was stopped
            with _lock:
                _ready.pop((config.game.name, service.id), None)
            env, identity = _prepare(config, service)
            answer = _call(identity, payload, request.timeout + ANSWER_GRACE)
        if "error" in answer:
            raise SandboxError(answer["error"])
    except (SandboxError, OSError, ValueError) as exc:
        return ActionResult(request.action, Status.CHECKER_ERROR, "checker error (platform)",
                            f"sandbox: {exc}", duration=time.monotonic() - started, command="sandbox")
    command = f"{payload['mode']} {' '.join(payload['argv'][1:3])} as {identity.user}"
    if service.checker.protocol == "native":
        return _native_result(request, answer, command)
    return _cli_result(request, answer, command)


def _prepare(config: GameConfig, service: Service) -> tuple[CheckerEnv, Identity]:
    """The service's environment and identity, its fork server running (looked at again at
    most every `RECHECK_SECONDS`: a rebuilt environment gets a new server)."""
    key = (config.game.name, service.id)
    with _lock:
        known = _ready.get(key)
        if known and time.monotonic() - known[2] < RECHECK_SECONDS:
            return known[0], known[1]
        try:
            env = ensure_env(config, service)
        except CheckerEnvError as exc:
            raise SandboxError(str(exc)) from None
        identity = ensure_identity(config.game.name, service.id, Limits())
        if not known or known[0].stamp != env.stamp or not identity.socket.exists():
            _start_server(identity, env)
        _ready[key] = (env, identity, time.monotonic())
        return env, identity


def _start_server(identity: Identity, env: CheckerEnv) -> None:
    """Start the service's fork server unless one of this environment answers already."""
    stamp_file, pid_file = identity.run_dir / "forkserver.stamp", identity.run_dir / "forkserver.pid"
    with open(identity.run_dir / ".start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _answers(identity.socket) and stamp_file.exists() and stamp_file.read_text() == env.stamp:
            return
        _kill(pid_file)
        argv = [str(env.python), str(env.forkserver), "--socket", str(identity.socket),
                "--checker", str(env.checker)]

        def drop() -> None:  # in the child, before exec: into the cgroup, then the service's user
            join_cgroup(identity.cgroup)
            os.setgroups([])
            os.setgid(identity.gid)
            os.setuid(identity.uid)
            if os.geteuid() == 0 or os.getuid() == 0:
                raise OSError("privileges were not dropped")

        with open(identity.run_dir / "forkserver.log", "ab") as out:
            proc = subprocess.Popen(argv, cwd=str(env.checker_dir), env=_environment(env, identity),
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=out, close_fds=True,
                                    start_new_session=True, preexec_fn=drop)
        pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + START_SECONDS
        while not _answers(identity.socket):
            if proc.poll() is not None:
                tail = (identity.run_dir / "forkserver.log").read_text(errors="replace")[-800:]
                raise SandboxError(f"the fork server of {identity.user} exited with {proc.returncode}: {tail}")
            if time.monotonic() > deadline:
                raise SandboxError(f"the fork server of {identity.user} did not start in {START_SECONDS:g}s")
            time.sleep(0.02)
        stamp_file.write_text(env.stamp)
        log.info("fork server of %s started (pid %d)", identity.user, proc.pid)


def _answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def _kill(pid_file: Path) -> None:
    try:
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
    except (OSError, ValueError):
        pass


def _environment(env: CheckerEnv, identity: Identity) -> dict[str, str]:
    """What a checker finds in its environment: its own interpreter first, nothing inherited."""
    home = str(identity.home)
    return {"PATH": f"{env.root}/bin:/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": home,
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONIOENCODING": "utf-8", "VIRTUAL_ENV": str(env.root)}


def _request(service: Service, request: ActionRequest, env: CheckerEnv, identity: Identity) -> dict[str, Any]:
    checker = str(env.checker)
    args = [request.action, request.host]
    if request.action != "check":
        args += [request.flag_id, request.flag, str(request.vuln)]
    python = _is_python(Path(checker))
    mode = "native" if service.checker.protocol == "native" else ("cli" if python else "exec")
    return {"mode": mode, "argv": [checker, *args], "cwd": str(env.checker_dir), "env": _environment(env, identity),
            "timeout": request.timeout,
            "native": {"class": service.checker.class_name, "action": request.action, "host": request.host,
                       "flag_id": request.flag_id, "flag": request.flag, "vuln": request.vuln}}


def _is_python(path: Path) -> bool:
    """A Python checker (forked from the server) rather than a program to execute."""
    if path.suffix == ".py":
        return True
    try:
        with path.open("rb") as handle:
            first = handle.readline(256)
    except OSError:
        return False
    return first.startswith(b"#!") and b"python" in first


def _call(identity: Identity, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(timeout)
    try:
        conn.connect(str(identity.socket))
        conn.sendall(json.dumps(payload).encode() + b"\n")
        data = conn.makefile("rb").readline()
    except TimeoutError:
        raise SandboxError(f"the fork server of {identity.user} did not answer in {timeout:g}s") from None
    finally:
        conn.close()
    if not data:
        raise SandboxError(f"the fork server of {identity.user} closed the connection")
    return json.loads(data)


def _outputs(answer: dict[str, Any]) -> tuple[bytes, bytes]:
    return base64.b64decode(answer["stdout"]), base64.b64decode(answer["stderr"])


def _cli_result(request: ActionRequest, answer: dict[str, Any], command: str) -> ActionResult:
    stdout, stderr = _outputs(answer)
    code, duration = answer["returncode"], float(answer["duration"])
    if not answer["timed_out"] and code is not None and code < 0:
        return _killed(request, code, stderr, duration, command)
    return cli_verdict(request, code, answer["timed_out"], stdout, stderr, duration, command)


def _killed(request: ActionRequest, code: int, stderr: bytes, duration: float, command: str) -> ActionResult:
    why = f"killed by signal {-code} (the service's memory or pids limit?)"
    return ActionResult(request.action, Status.CHECKER_ERROR, "checker error (platform)",
                        f"{why}\n{stderr.decode('utf-8', 'replace')}".strip(), duration=duration, command=command)


def _native_result(request: ActionRequest, answer: dict[str, Any], command: str) -> ActionResult:
    outcome, duration = answer.get("outcome"), float(answer["duration"])
    stderr = _outputs(answer)[1]
    if answer["timed_out"]:
        return cli_verdict(request, None, True, b"", stderr, duration, command)
    if not outcome:
        code = answer.get("returncode") or 0
        if code < 0:
            return _killed(request, code, stderr, duration, command)
        return ActionResult(request.action, Status.CHECKER_ERROR, "checker error (platform)",
                            f"the checker exited with {code} before it answered\n"
                            f"{stderr.decode('utf-8', 'replace')}".strip(), duration=duration, command=command)
    return ActionResult(request.action, Status(outcome["status"]), outcome["public"], outcome["private"],
                        flag_id=outcome.get("flag_id"), public_flag_id=outcome.get("public_flag_id"),
                        duration=duration, command=f"{command} {outcome.get('class', '')}".strip())


def stop_servers(game: str | None = None) -> int:
    """Stop the fork servers of a game (every game's when None): tests, `adrange checkers
    stop`; return how many were asked to stop."""
    stopped = 0
    for pid_file in RUN_ROOT.glob(f"{game or '*'}/*/forkserver.pid"):
        _kill(pid_file)
        pid_file.unlink(missing_ok=True)
        stopped += 1
    with _lock:
        for key in [k for k in _ready if game is None or k[0] == game]:
            del _ready[key]
    return stopped
