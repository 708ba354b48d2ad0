"""Domain names shared by every package: ids, rounds and checker statuses."""

from __future__ import annotations

import enum

TeamID = int
ServiceID = int
Round = int


class Status(enum.IntEnum):
    """Per-round status of a (team, service), with the Hackerdom/ForcAD exit codes."""

    OK = 101
    CORRUPT = 102
    MUMBLE = 103
    DOWN = 104
    CHECKER_ERROR = 110
    # Not an exit code: current checks fine, an older flag lost.
    RECOVERING = 105

    @classmethod
    def from_exit_code(cls, code: int) -> Status:
        """Map a CLI checker's exit code; anything unknown is CHECKER_ERROR."""
        if code in (101, 102, 103, 104, 110):
            return cls(code)
        return cls.CHECKER_ERROR


class GameState(enum.StrEnum):
    """Where a game is in its life."""

    NOT_STARTED = "not_started"
    RUNNING = "running"
    PAUSED = "paused"
    OVER = "over"
