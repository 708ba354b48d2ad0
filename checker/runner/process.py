"""Run a checker program as a child process: own session, clean environment, capped output, time limit.

The child gets its own process group (``start_new_session``); when the time is up, or as
soon as the child itself exits, the WHOLE group is killed, so forked helpers cannot linger.
Its address space is capped (`MEMORY_LIMIT`), so a checker that eats memory fails alone
(CHECKER_ERROR) instead of pushing the worker host into the OOM killer.
stdout and stderr are drained continuously and kept up to `cap` bytes each (stdout its head,
the public message and flag id; stderr its tail, where a traceback names its error), so a
child that floods its output never blocks and never fills the worker's memory.
"""

from __future__ import annotations

import os
import resource
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass

OUTPUT_CAP = 64 * 1024
MEMORY_LIMIT = 1024 * 1024 * 1024  # bytes of address space per checker process
# After the child exits (or is killed), how long to keep draining pipes held open by escapees.
DRAIN_SECONDS = 1.0


@dataclass
class ProcessOutput:
    """What a finished (or killed) child left: exit code (None when timed out), output, timing."""

    returncode: int | None
    stdout: bytes
    stderr: bytes
    duration: float
    timed_out: bool


@dataclass
class RunAs:
    """Credentials to drop to (used only when the worker is root)."""

    uid: int
    gid: int


def run_process(
    argv: list[str],
    cwd: str,
    env: dict[str, str],
    timeout: float,
    run_as: RunAs | None = None,
    cap: int = OUTPUT_CAP,
    memory: int = MEMORY_LIMIT,
) -> ProcessOutput:
    """Run `argv` in a new session with at most `memory` bytes of address space; kill its
    process group after `timeout` seconds."""
    started = time.monotonic()
    creds = {"user": run_as.uid, "group": run_as.gid, "extra_groups": []} if run_as else {}

    def limit_memory() -> None:  # runs in the child, before exec
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        close_fds=True,
        preexec_fn=limit_memory,
        **creds,
    )
    try:
        stdout, stderr, timed_out = _collect(proc, started + timeout, cap)
    finally:
        _kill_group(proc.pid)
        proc.wait()
    return ProcessOutput(
        None if timed_out else proc.returncode, stdout, stderr, time.monotonic() - started, timed_out
    )


def _collect(proc: subprocess.Popen[bytes], deadline: float, cap: int) -> tuple[bytes, bytes, bool]:
    assert proc.stdout is not None and proc.stderr is not None
    buffers = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    selector = selectors.DefaultSelector()
    for pipe in (proc.stdout, proc.stderr):
        os.set_blocking(pipe.fileno(), False)
        selector.register(pipe.fileno(), selectors.EVENT_READ)
    timed_out = False
    stop_draining: float | None = None
    try:
        while selector.get_map():
            now = time.monotonic()
            if stop_draining is None:
                if _has_exited(proc.pid):
                    _kill_group(proc.pid)
                    stop_draining = now + DRAIN_SECONDS
                elif now >= deadline:
                    timed_out = True
                    _kill_group(proc.pid)
                    stop_draining = now + DRAIN_SECONDS
            elif now >= stop_draining:
                break
            for key, _ in selector.select(timeout=0.05):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                kept = buffers[key.fd]
                if key.fd == proc.stderr.fileno():
                    kept += chunk
                    del kept[:-cap]
                elif len(kept) < cap:
                    kept += chunk[: cap - len(kept)]
    finally:
        selector.close()
    return bytes(buffers[proc.stdout.fileno()]), bytes(buffers[proc.stderr.fileno()]), timed_out


def _has_exited(pid: int) -> bool:
    """True once `pid` has exited, without reaping it (so its process group id stays reserved)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
