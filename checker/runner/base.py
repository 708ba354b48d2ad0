"""What every checker protocol returns: `ActionResult` for an action, `CheckerInfo` for ``info``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from scoreboard.types import Status

Action = Literal["check", "put", "get"]
ACTIONS: tuple[Action, ...] = ("check", "put", "get")

# Public and private messages are cut to this many characters before they are stored.
MESSAGE_LIMIT = 4096


@dataclass
class ActionResult:
    """The verdict of one checker action against one target.

    `flag_id` is the flag id to use for later gets (set by a successful put);
    `public_flag_id` is the part of it published as attack data, if any.
    `command` says what ran (argv, class or URL), for the organizers' logs.
    """

    action: str
    status: Status
    public: str = ""
    private: str = ""
    flag_id: str | None = None
    public_flag_id: str | None = None
    duration: float = 0.0
    command: str = ""

    def __post_init__(self) -> None:
        self.public = clip(self.public)
        self.private = clip_tail(self.private)


@dataclass
class CheckerInfo:
    """What a checker says about itself: flag store weights, seconds per action, attack data."""

    vulns: list[int] = field(default_factory=lambda: [1])
    timeout: float | None = None
    attack_data: bool = True


class CheckerInfoError(Exception):
    """A checker could not say what it is (``info`` failed, the file does not load, ...)."""


@dataclass
class ActionRequest:
    """One action's arguments, as every protocol receives them."""

    action: Action
    host: str
    flag_id: str = ""
    flag: str = ""
    vuln: int = 1
    timeout: float = 10
    context: dict[str, Any] = field(default_factory=dict)


def clip(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """`text` cut to its first `limit` characters, marked when cut (public messages)."""
    return text if len(text) <= limit else text[: limit - 15] + " ...[truncated]"


def clip_tail(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """`text` cut to its last `limit` characters, marked when cut: a traceback's last line
    names the error (private messages)."""
    return text if len(text) <= limit else "[truncated]... " + text[len(text) - limit + 15:]
