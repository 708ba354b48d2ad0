"""The three TCP dialects as tables of texts over one server (tcp.py).

faust (FAUST/ENO), ructf (Hackerdom) and forcad, exact greetings and replies as in
DESIGN.md section 6. Every greeting is one write; every flag line gets one reply line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import chain, repeat

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


_PLAIN = bytes(range(0x21, 0x7F))  # a flag is usually plain printable ASCII: echoed as is


def echo(raw: bytes, limit: int) -> bytes:
    """`printable` as bytes, without decoding the usual plain-ASCII flag."""
    raw = raw[:limit]
    return raw if raw.isalnum() or not raw.translate(None, _PLAIN) else printable(raw, limit).encode()


def _faust_tail(result: Result) -> str:
    return f" {_FAUST_CODES.get(result.verdict, 'ERR')} {result.text}\n"


def _bracket_tail(result: Result) -> str:
    return f"] {result.text}\n"


@dataclass(frozen=True)
class Dialect:
    """How one dialect greets, identifies the team, replies and ends. A reply line is
    `head` + the echoed flag + `tail(result)`."""

    name: str
    greeting: bytes
    tail: Callable[[Result], str]
    head: bytes = b""
    by_token: bool = False
    token_ok: bytes = b""
    token_bad: bytes = b""
    empty_line_ends: bool = False

    tails: dict[Result, bytes] = field(default_factory=dict, compare=False, repr=False)  # encoded, by result

    def tail_bytes(self, result: Result) -> bytes:
        """What follows the echoed flag in the reply to a flag with this result."""
        tail = self.tails.get(result)
        if tail is None:
            if len(self.tails) > 4096:  # points vary with the formula: keep it bounded
                self.tails.clear()
            tail = self.tails[result] = self.tail(result).encode()
        return tail

    def replies(self, lines: list[bytes], results: list[Result], limit: int) -> bytes:
        """The reply lines to submitted lines, as one block (each echo cut to `limit` bytes).

        Built by C loops: a batch's results are mostly a few shared objects, so each distinct
        one's tail is found once (by identity: every result is alive in `results` meanwhile),
        and a batch of plain ASCII lines is echoed as is."""
        if len(lines) <= 1:  # one flag per write: a player's loop
            return self.head + echo(lines[0], limit) + self.tail_bytes(results[0]) if lines else b""
        distinct = dict(zip(map(id, results), results, strict=True))
        tails = {key: self.tail_bytes(result) for key, result in distinct.items()}
        joined = b"".join(lines)
        if joined.translate(None, _PLAIN) or max(map(len, lines)) > limit:
            echoes: Iterable[bytes] = (echo(line, limit) for line in lines)
        else:
            echoes = lines
        return b"".join(chain.from_iterable(zip(repeat(self.head), echoes, map(tails.__getitem__, map(id, results)))))


FAUST = Dialect(
    name="faust",
    greeting=b"adrange flag submission\nOne flag per line please!\n\n",
    tail=_faust_tail,
)
RUCTF = Dialect(
    name="ructf",
    greeting=b"Enter your flags, finished with newline (or empty line to exit)\n",
    tail=_bracket_tail,
    head=b"[",
    empty_line_ends=True,
)
FORCAD = Dialect(
    name="forcad",
    greeting=b"Welcome! Please, enter your team token:\n",
    tail=_bracket_tail,
    head=b"[",
    by_token=True,
    token_ok=b"Now enter your flags, one in a line:\n",
    token_bad=b"Invalid team token\n",
    empty_line_ends=True,
)
DIALECTS = {d.name: d for d in (FAUST, RUCTF, FORCAD)}
