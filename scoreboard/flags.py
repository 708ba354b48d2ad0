"""Signed flags: made and checked without a lookup.

A flag is base32(payload || mac) where payload packs (round, team, service, slot) in six
bytes and mac is HMAC-SHA256(secret, payload) cut to 13 bytes. The 19 bytes give 31
base32 characters and one '=' of padding: the classic ``[A-Z0-9]{31}=`` shape. With a
prefix the same text is wrapped as ``PREFIX{...}``.

`generate` makes a flag; `verify` returns its `FlagInfo` or raises a `FlagError` subclass
(`InvalidFlagFormat`, `InvalidFlagMAC`). Age and ownership are the caller's rules.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import NamedTuple

from .types import Round, ServiceID, TeamID

_MAC_BYTES = 13
_BODY = re.compile(rb"[A-Z2-7]{31}=")
_BASE32 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
# base32 letters to int(..., 32) digits (a decode several times faster than b32decode); every
# other byte to "!", so int() refuses a text with any of them: the table also checks the alphabet.
_TO_DIGITS = bytes(b"0123456789abcdefghijklmnopqrstuv"[_BASE32.find(b)] if b in _BASE32 else ord("!")
                   for b in range(256))
MAX_ROUND = 2**24 - 1


class FlagError(ValueError):
    """A text that is not a valid flag of this game."""


class InvalidFlagFormat(FlagError):
    """Not shaped like a flag."""


class InvalidFlagMAC(FlagError):
    """Shaped like a flag, but not signed by this game's secret."""


class FlagInfo(NamedTuple):
    """What a flag says about itself (a tuple: made for every valid flag submitted)."""

    round: Round
    team: TeamID
    service: ServiceID
    slot: int


def _pack(round_: Round, team: TeamID, service: ServiceID, slot: int) -> bytes:
    if not (0 <= round_ <= MAX_ROUND and 0 <= team < 4096 and 0 <= service < 256 and 0 <= slot < 16):
        raise ValueError("flag fields out of range")
    # 24 bits round, 12 bits team, 8 bits service, 4 bits slot = 48 bits.
    value = (round_ << 24) | (team << 12) | (service << 4) | slot
    return value.to_bytes(6, "big")


def _raw(flag: str | bytes) -> bytes:
    return flag.encode("utf-8", "replace") if isinstance(flag, str) else flag


def _unpack(payload: bytes) -> FlagInfo:
    value = int.from_bytes(payload, "big")
    return FlagInfo(value >> 24, (value >> 12) & 0xFFF, (value >> 4) & 0xFF, value & 0xF)


class FlagCodec:
    """Makes and checks the flags of one game (one secret, one optional prefix)."""

    def __init__(self, secret: str, prefix: str | None = None) -> None:
        key = hashlib.sha256(b"adrange-flag:" + secret.encode()).digest().ljust(64, b"\0")
        # HMAC-SHA256 (RFC 2104) with its keyed inner and outer states made once: a MAC is
        # then two hash copies, less than half the cost of hmac.digest on every flag.
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
        self.prefix = prefix
        self._head = f"{prefix}{{".encode() if prefix else b""
        self._tail = b"}" if prefix else b""

    def _mac(self, payload: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(payload)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:_MAC_BYTES]  # `check` does the same inline, for speed

    def generate(self, round_: Round, team: TeamID, service: ServiceID, slot: int = 0) -> str:
        """The flag for (round, team, service, slot). Deterministic for one secret."""
        payload = _pack(round_, team, service, slot)
        body = base64.b32encode(payload + self._mac(payload))
        return (self._head + body + self._tail).decode()

    def verify(self, flag: str | bytes) -> FlagInfo:
        """Decode and authenticate a flag; raise InvalidFlagFormat or InvalidFlagMAC."""
        found = self.check(flag)
        if found is not None:
            return found
        raw = self._body(_raw(flag))
        if raw is None:
            raise InvalidFlagFormat("missing flag prefix")
        if not _BODY.fullmatch(raw):
            raise InvalidFlagFormat("not a flag")
        if int(raw[:31].translate(_TO_DIGITS), 32) & 0b111:
            raise InvalidFlagFormat("not canonical base32")
        raise InvalidFlagMAC("bad signature")

    def check(self, flag: str | bytes) -> FlagInfo | None:
        """The flag's `FlagInfo`, or None when it is no valid flag (the submission hot path,
        where most lines may be garbage: no exception, one C call per step)."""
        raw: bytes | None = flag if isinstance(flag, bytes) else _raw(flag)
        if self._head:  # (no call at all for the usual flag without a prefix)
            raw = self._body(raw)
        if raw is None or len(raw) != 32 or raw[31] != 0x3D:  # 31 base32 letters and "="
            return None
        try:  # the table maps every byte but the 32 base32 letters to "!", which int() refuses
            value = int(raw[:31].translate(_TO_DIGITS), 32)
        except ValueError:
            return None
        if value & 0b111:  # padding bits must be zero: one flag, one spelling
            return None
        data = (value >> 3).to_bytes(19, "big")
        inner = self._inner.copy()
        inner.update(data[:6])
        outer = self._outer.copy()
        outer.update(inner.digest())
        if not hmac.compare_digest(outer.digest()[:_MAC_BYTES], data[6:]):
            return None
        return _unpack(data[:6])

    def _body(self, raw: bytes) -> bytes | None:
        """The flag text inside this game's prefix (all of it without one); None when the prefix is missing."""
        if not self._head:
            return raw
        if not (raw.startswith(self._head) and raw.endswith(self._tail)):
            return None
        return raw[len(self._head) : -len(self._tail)]

    @property
    def pattern(self) -> str:
        """A regular expression that matches this game's flags (for exploit farms)."""
        body = "[A-Z0-9]{31}="
        return f"{re.escape(self.prefix)}\\{{{body}\\}}" if self.prefix else body
