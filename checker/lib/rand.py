"""Innocent-looking random data, so checker traffic cannot be told apart from players'."""

from __future__ import annotations

import random
import string

_SYSTEM = random.SystemRandom()

_ADJECTIVES = (
    "amber", "brave", "calm", "dusty", "eager", "fancy", "gentle", "happy", "icy", "jolly",
    "kind", "lucky", "mellow", "nimble", "odd", "proud", "quiet", "rapid", "shiny", "tidy",
    "urban", "vivid", "witty", "young", "zesty",
)
_NOUNS = (
    "otter", "falcon", "maple", "river", "comet", "pepper", "badger", "cactus", "harbor", "lantern",
    "meadow", "nebula", "orchid", "pixel", "quartz", "raven", "saddle", "tiger", "walnut", "yak",
    "anchor", "biscuit", "cobalt", "dune", "ember",
)
_WORDS = (
    "the", "a", "note", "meeting", "tomorrow", "remember", "buy", "milk", "call", "mom", "project",
    "deadline", "coffee", "book", "read", "chapter", "garden", "water", "plants", "idea", "draft",
    "send", "report", "friday", "lunch", "with", "team", "fix", "bike", "tire", "and", "then",
)


def rand_string(n: int = 12, alphabet: str = string.ascii_letters + string.digits) -> str:
    """`n` random characters from `alphabet` (letters and digits by default)."""
    return "".join(_SYSTEM.choice(alphabet) for _ in range(n))


def rand_user() -> str:
    """A plausible user name such as ``quiet_otter42``."""
    return f"{_SYSTEM.choice(_ADJECTIVES)}_{_SYSTEM.choice(_NOUNS)}{_SYSTEM.randrange(10, 10000)}"


def rand_password() -> str:
    """A password of 12-20 letters and digits."""
    return rand_string(_SYSTEM.randrange(12, 21))


def rand_text(words: int | None = None) -> str:
    """A short sentence of everyday words (5-15 of them unless `words` is given)."""
    count = words if words is not None else _SYSTEM.randrange(5, 16)
    text = " ".join(_SYSTEM.choice(_WORDS) for _ in range(count))
    return text[:1].upper() + text[1:] + "."
