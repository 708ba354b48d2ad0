"""The three TCP dialects as tables of texts over one server (tcp.py).

faust (FAUST/ENO), ructf (Hackerdom) and forcad, exact greetings and replies as in
DESIGN.md section 6. Every greeting is one write; every flag line gets one reply line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .verdicts import Result, Verdict

# What an echo may not carry as is: whitespace (the echo is the reply's first field), C0 and
# C1 controls, DEL, line and paragraph separators, and invalid UTF-8 (decoded to surrogates).
_UNSAFE = re.compile("[\x00-\x20\x7f-\xa0\u2028\u2029\udc80-\udcff]")


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


def _escape(match: re.Match[str]) -> str:
    code = ord(match[0])
    if code >= 0xDC80:  # an invalid byte, as surrogateescape decoded it
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(raw: bytes, limit: int) -> str:
    """A submitted line as it can be echoed back (and shown), cut to `limit` bytes: UTF-8 as
    sent; invalid bytes, controls and whitespace escaped as ``\\xNN``."""
    raw = raw[:limit]
    if raw.isascii():
        text = raw.decode("ascii")
        return text if text.isprintable() and " " not in text else _UNSAFE.sub(_escape, text)
    return _UNSAFE.sub(_escape, raw.decode("utf-8", "surrogateescape"))


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
