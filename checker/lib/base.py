"""`Checker`, the base class a challenge author subclasses: check, put and get one target."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from scoreboard.types import Status

from .errors import error_for
from .net import HttpSession, LineSocket


class Checker:
    """Checks one team's instance of a service at `host`.

    Override `check`, `put` and `get`; raise `Mumble`, `Corrupt`, `Down` (or use the
    ``assert_*`` helpers) to fail, return to succeed. `vulns` lists the relative weights of
    the flag stores (``vuln`` runs from 1 to ``len(vulns)``); `timeout` is seconds per
    action; `attack_data` says whether flag ids are published to attackers.
    """

    vulns: ClassVar[list[int]] = [1]
    timeout: ClassVar[float] = 10
    attack_data: ClassVar[bool] = True

    def __init__(self, host: str, timeout: float | None = None) -> None:
        self.host = host
        self.timeout = timeout if timeout is not None else type(self).timeout  # type: ignore[misc]
        self._deadline = time.monotonic() + self.timeout
        self._open: list[HttpSession | LineSocket] = []

    # -- the three actions -----------------------------------------------------------
    def check(self) -> None:
        """Exercise the service's normal functionality; the default checks nothing."""

    def put(self, flag_id: str, flag: str, vuln: int) -> str | dict[str, Any] | None:
        """Store `flag` in flag store `vuln`; return the flag id to use for `get`.

        A str replaces `flag_id`; a dict is stored as JSON and its ``"public_flag_id"``
        becomes public attack data; None keeps the given `flag_id`.
        """
        raise NotImplementedError(f"{type(self).__name__}.put")

    def get(self, flag_id: str, flag: str, vuln: int) -> None:
        """Read back `flag` from flag store `vuln` using `flag_id` (as `put` returned it)."""
        raise NotImplementedError(f"{type(self).__name__}.get")

    # -- connections -----------------------------------------------------------------
    @property
    def remaining(self) -> float:
        """Seconds left of this action's time limit (at least 0.1, for I/O timeouts)."""
        return max(0.1, self._deadline - time.monotonic())

    def http(self, port: int, scheme: str = "http") -> HttpSession:
        """A requests session for ``scheme://host:port``: failures raise `Down` / `Mumble`."""
        session = HttpSession(self.host, port, scheme, timeout=self.remaining)
        self._open.append(session)
        return session

    def connect(self, port: int) -> LineSocket:
        """A line-oriented TCP connection to ``host:port``: refused or timed out raises `Down`."""
        sock = LineSocket(self.host, port, timeout=self.remaining)
        self._open.append(sock)
        return sock

    def close(self) -> None:
        """Close every session and connection this checker opened."""
        for item in self._open:
            try:
                item.close()
            except OSError:
                pass
        self._open.clear()

    # -- assertions ------------------------------------------------------------------
    def assert_eq(
        self, actual: Any, expected: Any, public: str, private: str = "", status: Status = Status.MUMBLE
    ) -> None:
        """Fail with `status` unless ``actual == expected``."""
        if actual != expected:
            raise error_for(status, public, private or f"expected {_short(expected)}, got {_short(actual)}")

    def assert_in(
        self, needle: Any, haystack: Any, public: str, private: str = "", status: Status = Status.MUMBLE
    ) -> None:
        """Fail with `status` unless ``needle in haystack``."""
        if haystack is None or needle not in haystack:
            raise error_for(status, public, private or f"{_short(needle)} not in {_short(haystack)}")

    def assert_true(self, cond: Any, public: str, private: str = "", status: Status = Status.MUMBLE) -> None:
        """Fail with `status` unless `cond` is true."""
        if not cond:
            raise error_for(status, public, private)


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
