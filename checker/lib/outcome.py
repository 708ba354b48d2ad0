"""Run one action of a `Checker` subclass in-process and turn whatever happens into a verdict.

Shared by `checker.lib.main` (a native checker file used as a CLI checker) and the
runner's native protocol, so both give the same statuses for the same behaviour.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass
from typing import Any, Literal

from scoreboard.types import Status

from .base import Checker
from .deadline import ActionTimeout, call_with_timeout
from .errors import CheckerError, StatusError

Action = Literal["check", "put", "get"]
ACTIONS: tuple[str, ...] = ("check", "put", "get")


@dataclass
class Outcome:
    """The verdict of one action; `flag_id` is set after a successful put."""

    status: Status
    public: str = ""
    private: str = ""
    flag_id: str | None = None
    public_flag_id: str | None = None


def perform(
    checker_cls: type[Checker],
    action: str,
    host: str,
    flag_id: str = "",
    flag: str = "",
    vuln: int = 1,
    timeout: float | None = None,
) -> Outcome:
    """Run `action` of `checker_cls` against `host` within `timeout` seconds (the class's by default).

    StatusError → its status; time up → DOWN; anything else → CHECKER_ERROR with the
    traceback as private message.
    """
    limit = timeout if timeout is not None else checker_cls.timeout
    checker: Checker | None = None

    def run() -> Outcome:
        nonlocal checker
        checker = checker_cls(host, timeout=limit)
        if action == "check":
            checker.check()
            return Outcome(Status.OK)
        if action not in ("put", "get"):
            raise CheckerError("unknown action", f"action {action!r} is not one of {ACTIONS}")
        if not 1 <= vuln <= len(checker_cls.vulns):
            raise CheckerError("unknown flag store", f"vuln {vuln} outside 1..{len(checker_cls.vulns)}")
        if action == "get":
            checker.get(flag_id, flag, vuln)
            return Outcome(Status.OK)
        new_id = put_result_to_flag_id(checker.put(flag_id, flag, vuln), flag_id)
        return Outcome(Status.OK, flag_id=new_id, public_flag_id=public_flag_id(new_id))

    try:
        return call_with_timeout(run, limit)
    except ActionTimeout:
        return Outcome(Status.DOWN, f"checker did not finish in {limit:g}s", f"{action} timed out")
    except StatusError as exc:
        return Outcome(exc.status, exc.public, exc.private)
    except Exception as exc:
        return Outcome(Status.CHECKER_ERROR, "checker error", _traceback(exc))
    finally:
        if checker is not None:
            checker.close()


def put_result_to_flag_id(result: Any, given: str) -> str:
    """The flag id a put returned: str as is, dict as JSON, None keeps `given`."""
    if result is None:
        return given
    if isinstance(result, str):
        return result
    if isinstance(result, dict):
        return json.dumps(result, separators=(",", ":"), ensure_ascii=False)
    raise CheckerError("bad put result", f"put returned {type(result).__name__}, expected str, dict or None")


def public_flag_id(flag_id: str) -> str | None:
    """The ``public_flag_id`` part of a JSON object flag id, else None."""
    if not flag_id.startswith("{"):
        return None
    try:
        data = json.loads(flag_id)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("public_flag_id") is None:
        return None
    value = data["public_flag_id"]
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)).strip()
