"""Verdict exceptions a checker raises to end an action with a status other than OK."""

from __future__ import annotations

from typing import ClassVar

from scoreboard.types import Status


class StatusError(Exception):
    """Ends a checker action with `status`; `public` is shown to the team, `private` to organizers."""

    status: ClassVar[Status] = Status.CHECKER_ERROR

    def __init__(self, public: str, private: str = "") -> None:
        super().__init__(public)
        self.public = public
        self.private = private

    def __str__(self) -> str:
        return f"{self.status.name}: {self.public}" + (f" ({self.private})" if self.private else "")


class Mumble(StatusError):
    """The service answers, but wrongly (protocol broken, functionality missing)."""

    status = Status.MUMBLE


class Corrupt(StatusError):
    """The service works, but a flag that was put is gone or altered."""

    status = Status.CORRUPT


class Down(StatusError):
    """The service cannot be reached: refused, reset, timed out."""

    status = Status.DOWN


class CheckerError(StatusError):
    """The checker itself failed: the organizers' fault, never the team's."""

    status = Status.CHECKER_ERROR


_BY_STATUS: dict[Status, type[StatusError]] = {
    cls.status: cls for cls in (Mumble, Corrupt, Down, CheckerError)
}


def error_for(status: Status, public: str, private: str = "") -> StatusError:
    """The exception that ends an action with `status` (MUMBLE, CORRUPT, DOWN or CHECKER_ERROR)."""
    try:
        return _BY_STATUS[status](public, private)
    except KeyError:
        raise ValueError(f"{status!r} is no failure; use MUMBLE, CORRUPT, DOWN or CHECKER_ERROR") from None
