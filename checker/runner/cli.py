"""CLI checker protocol (Hackerdom/ForcAD): ``checker check HOST``, ``put/get HOST FLAG_ID FLAG VULN``.

Exit code is the status (anything unknown is CHECKER_ERROR), stdout the public message,
stderr the private one; a put's stripped stdout replaces the flag id. The program runs in
its own folder, with a clean environment, as ``nobody`` when the worker is root, and its
whole process group is killed when the time is up (DOWN: many public checkers set no
timeouts of their own and hang on a silent service).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from checker.lib.outcome import public_flag_id
from scoreboard.types import Status

from .base import ActionRequest, ActionResult, CheckerInfo, CheckerInfoError
from .privileges import EXECUTE, READ, choose_user, interpreter_of
from .process import ProcessOutput, run_process

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def run_cli_action(path: Path, request: ActionRequest) -> ActionResult:
    """Run one action of the CLI checker at `path` and read its verdict."""
    args = [request.action, request.host]
    if request.action != "check":
        args += [request.flag_id, request.flag, str(request.vuln)]
    out, command = _run(path, args, request.timeout)
    return cli_verdict(request, out.returncode, out.timed_out, out.stdout, out.stderr, out.duration, command)


def cli_verdict(request: ActionRequest, returncode: int | None, timed_out: bool, stdout_raw: bytes,
                stderr_raw: bytes, duration: float, command: str) -> ActionResult:
    """What a finished CLI action says: timeout = DOWN (it had its whole timeout), the exit
    code as status (unknown = CHECKER_ERROR), stdout public, stderr private, put's flag id."""
    stdout = stdout_raw.decode("utf-8", "replace").strip()
    stderr = stderr_raw.decode("utf-8", "replace").strip()
    if timed_out:
        return ActionResult(
            request.action, Status.DOWN, f"checker did not finish in {request.timeout:g}s",
            stderr, duration=duration, command=command,
        )
    assert returncode is not None
    status = Status.from_exit_code(returncode)
    if status != returncode:
        stderr = f"exit code {returncode} is not a checker status\n{stderr}".strip()
    result = ActionResult(request.action, status, stdout, stderr, duration=duration, command=command)
    if request.action == "put" and status == Status.OK:
        result.flag_id = stdout or request.flag_id
        result.public_flag_id = public_flag_id(result.flag_id)
        result.public = ""
    return result


def cli_info(path: Path, timeout: float) -> CheckerInfo:
    """Run ``checker info`` and parse it (``vulns: 1:2`` lines or a JSON object)."""
    out, command = _run(path, ["info"], timeout)
    if out.timed_out or out.returncode not in (0, Status.OK):
        raise CheckerInfoError(
            f"{command}: info failed (exit {out.returncode}, timed out: {out.timed_out}): "
            f"{out.stderr.decode('utf-8', 'replace')[-500:]}"
        )
    return parse_info(out.stdout.decode("utf-8", "replace"))


def parse_info(text: str) -> CheckerInfo:
    """Read ``info`` output: Hackerdom lines (``vulns: 1:2``, ``timeout: 10``,
    ``attack_data: true``, ``public_flag_description: ...``) or one JSON object
    (``{"vulns": [1, 2] or 2, "timeout": 10, "attack_data": true}``)."""
    text = text.strip()
    info = CheckerInfo()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise CheckerInfoError(f"info is not valid JSON: {exc}") from None
        fields = {str(k).lower(): v for k, v in data.items()}
    else:
        fields = {}
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip().lower()] = value.strip()
    try:
        if "vulns" in fields:
            info.vulns = _vulns(fields["vulns"])
        if "timeout" in fields:
            info.timeout = float(fields["timeout"])
    except (TypeError, ValueError) as exc:
        raise CheckerInfoError(f"cannot read info {text[:200]!r}: {exc}") from None
    if "attack_data" in fields:
        info.attack_data = str(fields["attack_data"]).lower() in ("true", "1", "yes")
    elif "public_flag_description" in fields:
        info.attack_data = True
    return info


def _vulns(value: object) -> list[int]:
    if isinstance(value, int):
        weights = [1] * value
    elif isinstance(value, list):
        weights = [int(w) for w in value]
    else:
        weights = [int(w) for w in str(value).split(":") if w.strip()]
    if not weights or any(w < 0 for w in weights):
        raise ValueError(f"bad vulns {value!r}")
    return weights


def _run(path: Path, args: list[str], timeout: float) -> tuple[ProcessOutput, str]:
    path = path.resolve()
    env_path = f"{Path(sys.executable).parent}:{SYSTEM_PATH}"
    argv, needs = _argv(path, env_path)
    run_as, note = choose_user(needs)
    if run_as is None and note:
        log.warning("checker %s runs %s", path, note)
    command = shlex.join([*argv, *args]) + (f"  ({note})" if note else "")
    home = tempfile.mkdtemp(prefix="adrange-checker-")
    try:
        if run_as:
            os.chown(home, run_as.uid, run_as.gid)
        env = _environment(path, env_path, home)
        try:
            out = run_process([*argv, *args], str(path.parent), env, timeout, run_as)
        except OSError as exc:
            out = ProcessOutput(Status.CHECKER_ERROR, b"cannot start checker", str(exc).encode(), 0.0, False)
        return out, command
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _argv(path: Path, env_path: str) -> tuple[list[str], list[tuple[Path, int]]]:
    """The program to start and the files it needs (with the access needed) for `path`."""
    if os.access(path, os.X_OK):
        needs = [(path, READ | EXECUTE)]
        interpreter = interpreter_of(path, env_path)
        if interpreter is not None:
            needs.append((interpreter, EXECUTE))
        return [str(path)], needs
    if path.suffix == ".py":
        return [sys.executable, str(path)], [(path, READ), (Path(sys.executable), EXECUTE)]
    return [str(path)], [(path, READ | EXECUTE)]


def _environment(path: Path, env_path: str, home: str) -> dict[str, str]:
    """A clean environment: the project and the checker's folder importable, nothing inherited."""
    return {
        "PATH": env_path,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": home,
        "TMPDIR": home,
        "PYTHONPATH": f"{PROJECT_ROOT}{os.pathsep}{path.parent}",
        # The script's folder must not come first: a file named checker.py would hide the
        # `checker` package. The folder is on PYTHONPATH instead, after the project.
        "PYTHONSAFEPATH": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
    }

