"""`main`: turns a file with a `Checker` subclass into a Hackerdom/ForcAD-style CLI checker.

    python checker.py info
    python checker.py check HOST
    python checker.py put HOST FLAG_ID FLAG VULN
    python checker.py get HOST FLAG_ID FLAG VULN

Exit code is the status (101 OK, 102 CORRUPT, 103 MUMBLE, 104 DOWN, 110 CHECKER_ERROR),
the public message goes to stdout, the private one to stderr; `put` prints the new flag id.
`info` prints ``vulns: 1:2`` lines (Hackerdom), or with ``--json`` one JSON object.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from scoreboard.types import Status

from .base import Checker
from .outcome import perform

USAGE = (
    "usage: checker.py info [--json] | check HOST"
    " | put HOST FLAG_ID FLAG VULN | get HOST FLAG_ID FLAG VULN"
)


def info_text(checker_cls: type[Checker], as_json: bool = False) -> str:
    """What ``info`` prints for `checker_cls`."""
    if as_json:
        return json.dumps(
            {"vulns": list(checker_cls.vulns), "timeout": checker_cls.timeout,
             "attack_data": checker_cls.attack_data}
        )
    return (
        f"vulns: {':'.join(str(w) for w in checker_cls.vulns)}\n"
        f"timeout: {checker_cls.timeout:g}\n"
        f"attack_data: {'true' if checker_cls.attack_data else 'false'}"
    )


def run_cli(checker_cls: type[Checker], argv: Sequence[str]) -> int:
    """Run one CLI invocation (`argv` without the program name); print results; return the exit code."""
    args = list(argv)
    if args[:1] == ["info"]:
        print(info_text(checker_cls, as_json="--json" in args[1:]))
        return Status.OK
    shapes = {"check": 2, "put": 5, "get": 5}
    if not args or args[0] not in shapes or len(args) != shapes[args[0]]:
        print("bad arguments", file=sys.stdout)
        print(f"{USAGE}\ngot: {args!r}", file=sys.stderr)
        return Status.CHECKER_ERROR
    action, host = args[0], args[1]
    flag_id, flag, vuln = (args[2], args[3], args[4]) if action != "check" else ("", "", "1")
    try:
        vuln_number = int(vuln)
    except ValueError:
        print("bad arguments", file=sys.stdout)
        print(f"VULN must be a number, got {vuln!r}", file=sys.stderr)
        return Status.CHECKER_ERROR
    outcome = perform(checker_cls, action, host, flag_id, flag, vuln_number)
    if outcome.status == Status.OK and action == "put":
        print(outcome.flag_id)
    elif outcome.public:
        print(outcome.public)
    if outcome.private:
        print(outcome.private, file=sys.stderr)
    return outcome.status


def main(checker_cls: type[Checker], argv: Sequence[str] | None = None) -> NoReturn:
    """Run `checker_cls` as a CLI checker with ``sys.argv`` and exit with the status code."""
    try:
        code = run_cli(checker_cls, sys.argv[1:] if argv is None else argv)
    except BaseException:
        traceback.print_exc()
        code = Status.CHECKER_ERROR
    sys.stdout.flush()
    sys.exit(int(code))
