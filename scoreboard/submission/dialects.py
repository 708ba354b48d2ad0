"""The three TCP dialects as tables of texts over one server (tcp.py).

faust (FAUST/ENO), ructf (Hackerdom) and forcad, exact greetings and replies as in
DESIGN.md section 6. Every greeting is one write; every flag line gets one reply line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .verdicts import Result, Verdict

_UNPRINTABLE = re.compile(r"[^\x21-\x7e]")  # spaces too: the echo is the reply's first field

_FAUST_CODES = {
    Verdict.ACCEPTED: "OK",
    Verdict.DUPLICATE: "DUP",
    Verdict.OWN: "OWN",
    Verdict.OLD: "OLD",
    Verdict.INVALID: "INV",
    Verdict.NOP: "INV",
    Verdict.NOP_SUBMITTER: "ERR",  # not the flag's fault
    Verdict.UNKNOWN_TEAM: "ERR",
}


def printable(raw: bytes, limit: int) -> str:
    """A submitted line made safe to echo back (and to show): printable ASCII without spaces, cut short."""
    return _UNPRINTABLE.sub("?", raw[:limit].decode("ascii", "replace"))


def _faust_reply(flag: str, result: Result) -> str:
    return f"{flag} {_FAUST_CODES.get(result.verdict, 'ERR')} {result.text}\n"


def _bracket_reply(flag: str, result: Result) -> str:
    return f"[{flag}] {result.text}\n"


@dataclass(frozen=True)
class Dialect:
    """How one dialect greets, identifies the team, replies and ends."""

    name: str
    greeting: bytes
    reply: Callable[[str, Result], str]
    by_token: bool = False
    token_ok: bytes = b""
    token_bad: bytes = b""
    empty_line_ends: bool = False


FAUST = Dialect(
    name="faust",
    greeting=b"adrange flag submission\nOne flag per line please!\n\n",
    reply=_faust_reply,
)
RUCTF = Dialect(
    name="ructf",
    greeting=b"Enter your flags, finished with newline (or empty line to exit)\n",
    reply=_bracket_reply,
    empty_line_ends=True,
)
FORCAD = Dialect(
    name="forcad",
    greeting=b"Welcome! Please, enter your team token:\n",
    reply=_bracket_reply,
    by_token=True,
    token_ok=b"Now enter your flags, one in a line:\n",
    token_bad=b"Invalid team token\n",
    empty_line_ends=True,
)
DIALECTS = {d.name: d for d in (FAUST, RUCTF, FORCAD)}
