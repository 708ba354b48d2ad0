"""The fork server of one service's checker: resident, unprivileged, in the service's environment.

Started by the worker (`checker.sandbox`) as the service's own user, inside the service's
cgroup, with the environment's interpreter; standard library only (it runs outside the
platform's venv). At start it imports what the checker imports (read from its source), so
every action after that is a fork, not a fresh interpreter.

Per action (one JSON line on its Unix socket, one JSON line back) a handler process:

1. enters a new user and PID namespace of its own (no privilege needed), so the action is
   the init of its namespace: when it ends, or is killed at its timeout, the kernel kills
   every process it started, `setsid` and double-fork escapees included;
2. forks the action: mode ``cli`` runs the checker file as ``__main__`` with the argv, cwd,
   environment, stdin, stdout, stderr and exit code a CLI checker expects; mode ``exec``
   executes a program (checkers in other languages); mode ``native`` runs one method of a
   `checker.lib.Checker` subclass and sends its outcome back;
3. collects stdout (its head) and stderr (its tail), kills the namespace at the timeout
   and answers ``{"returncode", "signal", "stdout", "stderr", "timed_out", "duration",
   "outcome", "cpu"}``.

Actions report the modules they imported that the server had not (imports inside
functions, on first use); the server imports them between requests, so later actions fork
warmer. It exits after `IDLE_SECONDS` without a request, and dies with the worker process
that started it: the server, each handler and each action get SIGKILL from the kernel when
their parent dies (``PR_SET_PDEATHSIG``), so a killed worker leaves no checker behind.
"""

from __future__ import annotations

import argparse
import ast
import base64
import builtins
import ctypes
import gc
import importlib
import json
import os
import random
import resource
import runpy
import selectors
import signal
import socket
import sys
import time
import traceback
import types

CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
PR_SET_PDEATHSIG = 1
IDLE_SECONDS = 300.0
OUTPUT_CAP = 64 * 1024
DRAIN_SECONDS = 1.0


def preload(checker: str) -> list[str]:
    """Import the top-level modules the checker file imports (failures are left to the action)."""
    try:
        with open(checker, encoding="utf-8", errors="replace") as handle:
            tree = ast.parse(handle.read())
    except (OSError, SyntaxError):
        return []
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    loaded = []
    for name in dict.fromkeys(names):
        try:
            importlib.import_module(name)
            loaded.append(name)
        except Exception:  # the action itself will report it
            pass
    return loaded


def die_with_parent() -> None:
    """Ask the kernel for SIGKILL when the parent dies (exit now if it already has)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # adopted by init: the parent died before the request
        os._exit(0)


def _enter_namespaces() -> None:
    """A new user namespace (mapping our own uid and gid) and a new PID namespace for the
    next child: the action becomes the init of its own namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.geteuid(), os.getegid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWPID) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUSER | CLONE_NEWPID) failed")
    with open("/proc/self/setgroups", "w") as handle:
        handle.write("deny")
    with open("/proc/self/uid_map", "w") as handle:
        handle.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as handle:
        handle.write(f"{gid} {gid} 1")


def _run_action(request: dict, checker: str, out_w: int, err_w: int, result_w: int) -> None:
    """In the forked action (pid 1 of its namespace): become what the checker expects, run it."""
    die_with_parent()
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd in (out_w, err_w, null):
        if fd > 2:
            os.close(fd)
    for sig in (signal.SIGCHLD, signal.SIGPIPE, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    random.seed()  # every fork would otherwise draw the same "random" names
    mode = request["mode"]
    if mode == "exec":
        os.closerange(3, 65536)
        os.execve(request["argv"][0], request["argv"], request["env"])
    code = 0
    try:
        if mode == "native":
            code = _native(request, checker, result_w)
        else:
            sys.argv = [checker, *request["argv"][1:]]
            _run_main(checker)
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException:  # what CPython does with an uncaught exception
        traceback.print_exc()
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    _report_imports()
    os._exit(code)


_learn_fd = -1  # write end of the server's pipe for modules actions imported late
_known: set[str] = set()


def _report_imports() -> None:
    """Tell the server which modules this action imported that it had not (imported inside
    functions, on first use): it imports them too, so later actions start warmer."""
    if _learn_fd < 0:
        return
    new = [name for name in sys.modules if name not in _known and name != "__main__"]
    line, chunks = "", []
    for name in new:  # writes of at most PIPE_BUF bytes never interleave with other actions'
        if len(line) + len(name) + 1 > 4000:
            chunks.append(line)
            line = ""
        line += name + "\n"
    for chunk in [*chunks, line]:
        if chunk:
            try:
                os.write(_learn_fd, chunk.encode())
            except OSError:
                return


def _learn(data: bytes) -> None:
    """In the server: import what actions reported (failures are left to the actions)."""
    for name in data.decode(errors="replace").split():
        if name not in _known:
            _known.add(name)
            try:
                importlib.import_module(name)
            except BaseException:  # a module that does not import on its own is just not preloaded
                pass
    _known.update(sys.modules)
    gc.freeze()


_compiled: dict[str, object] = {}


def _run_main(checker: str) -> None:
    """Run the checker file as ``__main__``, as ``python checker.py`` would (compiled once, in
    the server, before the fork; never with this file's ``from __future__`` flags, which
    would turn the checker's annotations into strings: gornilo reads them as classes)."""
    code = _compiled.get(checker)
    if code is None:
        with open(checker, "rb") as handle:
            code = compile(handle.read(), checker, "exec", dont_inherit=True)
    main = types.ModuleType("__main__")
    main.__dict__.update(__file__=checker, __cached__=None, __loader__=None, __package__=None, __spec__=None,
                         __builtins__=builtins)
    sys.modules["__main__"] = main
    exec(code, main.__dict__)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _native(request: dict, checker: str, result_w: int) -> int:
    """Run one action of a `checker.lib.Checker` subclass; write its outcome as JSON."""
    from checker.lib.outcome import perform  # in the environment: a copy of the platform's lib

    spec = request["native"]
    module = runpy.run_path(checker, run_name="adrange_checker")
    from checker.lib.base import Checker

    classes = [v for v in module.values() if isinstance(v, type) and issubclass(v, Checker) and v is not Checker
               and v.__module__ == "adrange_checker"]
    if spec.get("class"):
        classes = [c for c in classes if c.__name__ == spec["class"]]
    if len(classes) != 1:
        wanted = f" named {spec['class']}" if spec.get("class") else ""
        raise RuntimeError(f"{checker}: expected one Checker subclass{wanted}, found {[c.__name__ for c in classes]}")
    outcome = perform(classes[0], spec["action"], spec["host"], spec["flag_id"], spec["flag"], spec["vuln"],
                      float(request["timeout"]))
    data = {"status": int(outcome.status), "public": outcome.public, "private": outcome.private,
            "flag_id": outcome.flag_id, "public_flag_id": outcome.public_flag_id, "class": classes[0].__name__}
    payload = json.dumps(data).encode()
    while payload:
        payload = payload[os.write(result_w, payload):]
    return 0


def handle(conn: socket.socket, checker: str) -> None:
    """Serve one request on `conn` (in a forked handler process)."""
    started = time.monotonic()
    line = conn.makefile("rb").readline()
    if not line.strip():  # a liveness probe: connected, sent nothing
        return
    request = json.loads(line)
    answer: dict = {}
    try:
        _enter_namespaces()
    except OSError as exc:
        answer = {"error": f"sandbox: cannot enter new user and PID namespaces: {exc}"}
        conn.sendall(json.dumps(answer).encode() + b"\n")
        return
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    res_r, res_w = os.pipe()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    pid = os.fork()
    if pid == 0:
        for fd in (out_r, err_r, res_r):
            os.close(fd)
        conn.close()
        _run_action(request, checker, out_w, err_w, res_w)
    for fd in (out_w, err_w, res_w):
        os.close(fd)
    stdout, stderr, result, timed_out, status = _collect(pid, out_r, err_r, res_r, started + float(request["timeout"]))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    answer = {
        "returncode": os.waitstatus_to_exitcode(status) if not timed_out else None,
        "timed_out": timed_out,
        "stdout": base64.b64encode(stdout).decode(),
        "stderr": base64.b64encode(stderr).decode(),
        "outcome": json.loads(result) if result else None,
        "duration": time.monotonic() - started,
        "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
    }
    conn.sendall(json.dumps(answer).encode() + b"\n")


def _collect(pid: int, out_r: int, err_r: int, res_r: int, deadline: float) -> tuple[bytes, bytes, bytes, bool, int]:
    """Drain the action's pipes until it exits or its time is up (then kill its namespace)."""
    buffers = {out_r: bytearray(), err_r: bytearray(), res_r: bytearray()}
    selector = selectors.DefaultSelector()
    for fd in buffers:
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ)
    timed_out, status, stop = False, 0, None
    while selector.get_map():
        now = time.monotonic()
        if stop is None:
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                status, stop = raw, now + DRAIN_SECONDS
            elif now >= deadline:
                timed_out = True
                os.kill(pid, signal.SIGKILL)  # the init of its namespace: every process in it dies
                _, status = os.waitpid(pid, 0)
                stop = now + DRAIN_SECONDS
        elif now >= stop:
            break
        for key, _ in selector.select(timeout=0.02):
            chunk = os.read(key.fd, 65536)
            if not chunk:
                selector.unregister(key.fd)
                continue
            kept = buffers[key.fd]
            kept += chunk
            if key.fd == err_r:
                del kept[:-OUTPUT_CAP]
            elif key.fd == out_r:
                del kept[OUTPUT_CAP:]
    if stop is None:  # pipes closed before the exit was seen
        _, status = os.waitpid(pid, 0)
    selector.close()
    return bytes(buffers[out_r]), bytes(buffers[err_r]), bytes(buffers[res_r]), timed_out, status


def serve(path: str, checker: str) -> None:
    """Accept requests on the Unix socket `path` until idle for `IDLE_SECONDS`; import the
    modules actions report between requests."""
    global _learn_fd
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # handlers are reaped by the kernel
    if os.path.exists(path):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o600)
    server.listen(256)
    learn_r, _learn_fd = os.pipe()
    os.set_blocking(learn_r, False)
    os.set_blocking(_learn_fd, False)  # a full pipe costs a report, never a blocked action
    _known.update(sys.modules)
    selector = selectors.DefaultSelector()
    selector.register(server, selectors.EVENT_READ)
    selector.register(learn_r, selectors.EVENT_READ)
    print(f"forkserver {os.getpid()} ready on {path} as uid {os.getuid()}", flush=True)
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < IDLE_SECONDS:
        for key, _ in selector.select(timeout=5.0):
            if key.fd == learn_r:
                try:
                    _learn(os.read(learn_r, 65536))
                except BlockingIOError:
                    pass
                continue
            conn, _ = server.accept()
            idle_since = time.monotonic()
            if os.fork() == 0:
                die_with_parent()
                server.close()
                os.close(learn_r)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                try:
                    handle(conn, checker)
                except BaseException:
                    traceback.print_exc()
                finally:
                    os._exit(0)
            conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="adrange checker fork server (one per service)")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--checker", required=True)
    parser.add_argument("--no-preload", action="store_true")
    args = parser.parse_args()
    if os.geteuid() == 0:
        sys.exit("forkserver: refusing to run as root")
    die_with_parent()
    sys.path.append(os.path.dirname(args.checker))  # the checker's own modules, after the env's
    if not args.no_preload:
        loaded = preload(args.checker)
        print(f"forkserver preloaded {len(loaded)} modules: {' '.join(loaded)}", flush=True)
        try:
            with open(args.checker, "rb") as handle:
                _compiled[args.checker] = compile(handle.read(), args.checker, "exec", dont_inherit=True)
        except (OSError, SyntaxError):
            pass  # the action reports it
    gc.collect()
    gc.freeze()  # forked actions do not copy the preloaded objects' pages by collecting them
    serve(args.socket, args.checker)


if __name__ == "__main__":
    main()
