"""Run a checklib checker's actions in this one interpreter and print their CPU cost as JSON.

    python warm.py CHECKER HOST ROUNDS

Each round is a check, then a put and a get of a flag. ``imports`` is the CPU seconds of
loading the checker with its packages, ``work`` those of all the actions after: what the
actions cost when no interpreter starts and nothing is imported anew.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from typing import Any

OK = 101


def act(checker_class: Any, host: str, action: str, *args: str) -> tuple[int, str]:
    """One action of a fresh checker object: its status and public message."""
    checker = checker_class(host)
    try:
        checker.action(action, *args)
    except checker.get_check_finished_exception():
        return checker.status, checker.public
    return 110, "no verdict"


def main() -> None:
    path, host, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    started = time.process_time()
    spec = importlib.util.spec_from_file_location("warm_checker", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    loaded = time.process_time()
    statuses = []
    for round_ in range(rounds):
        flag = f"{round_:031d}="
        statuses.append(act(module.Checker, host, "check")[0])
        status, flag_id = act(module.Checker, host, "put", "seed", flag, "1")
        statuses += [status, act(module.Checker, host, "get", flag_id, flag, "1")[0]]
    print(json.dumps({"imports": loaded - started, "work": time.process_time() - loaded,
                      "actions": len(statuses), "ok": statuses.count(OK)}))


if __name__ == "__main__":
    main()
