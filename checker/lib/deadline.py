"""Run a function in-process with a time limit.

On the main thread (a CLI checker, a Celery prefork child) a real-time interval timer
interrupts the function wherever it is. Elsewhere the function runs in a daemon thread
that is abandoned when time is up: Python cannot kill a thread, so the result is
reported and the thread is left to finish on its own.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class ActionTimeout(BaseException):
    """The time limit passed. A BaseException, so a checker's ``except Exception`` cannot swallow it."""


def call_with_timeout(fn: Callable[[], T], seconds: float) -> T:
    """Return ``fn()``, or raise `ActionTimeout` when it runs longer than `seconds`."""
    if threading.current_thread() is threading.main_thread():
        return _with_itimer(fn, seconds)
    return _with_thread(fn, seconds)


def _with_itimer(fn: Callable[[], T], seconds: float) -> T:
    def expire(signum: int, frame: object) -> None:
        raise ActionTimeout(seconds)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _with_thread(fn: Callable[[], T], seconds: float) -> T:
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="checker-action", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise ActionTimeout(seconds)
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]
