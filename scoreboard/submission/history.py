"""Each team's recent submissions over every channel (TCP dialects, HTTP, portal form), for
the portal, and the count of denied flags by verdict, for /metrics.

The flag path only appends to a buffer in process memory: no Redis round trip per flag or
per batch, so a batch whose flags are all denied is answered without any. The buffer is
written at most about once a second (and at shutdown), every team's entries and the
denial counts in one pipeline (`GameStore.record_submissions`: LPUSH + LTRIM, HINCRBY). Only the
newest `KEEP` entries per team are kept, in the buffer as in Redis, so a flood of garbage
grows neither. A process killed hard (kill -9) loses up to a second of history and of
denial counts; a failed write is retried with the next one. Scores never depend on it: accepted flags are scored
by the submit script, whatever happens here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Any

import redis

from ..budgets import ThrottledLog
from ..store import GameStore
from ..types import TeamID
from .dialects import printable
from .verdicts import Result, Verdict

log = logging.getLogger("adrange.submit.history")
log.addFilter(ThrottledLog())  # a Redis outage would say it every second
KEEP = 200  # entries per team, newest
FLUSH_SECONDS = 1.0
FLAG_CHARS = 100  # of a submitted line, kept and shown (flags are shorter)
CHANNELS = ("faust", "ructf", "forcad", "http", "portal")

_Entry = tuple[float, str, str | bytes, Result]  # time, channel, flag as sent, verdict


def encode(moment: float, channel: str, flag: str | bytes, result: Result) -> str:
    """One entry as stored: "time channel verdict points flag" (the flag made printable, without
    spaces, so it can come last): cheaper to write than JSON, at a flood's rate."""
    raw = flag.encode("utf-8", "replace") if isinstance(flag, str) else flag
    return f"{moment:.3f} {channel} {result.verdict.value} {result.points!r} {printable(raw, FLAG_CHARS)}"


def team_history(store: GameStore, team: TeamID) -> list[dict[str, Any]]:
    """A team's recent submissions, newest first (a batch in its own order), each with its
    time, channel, flag, verdict, points, accepted and the verdict's text."""
    entries = []
    for line in reversed(store.submission_history(team)):  # oldest first
        moment, channel, verdict, points, flag = line.split(" ", 4)
        result = Result(Verdict(verdict), float(points))
        entries.append({"t": float(moment), "channel": channel, "flag": flag, "verdict": verdict,
                        "accepted": result.accepted, "points": result.points, "msg": result.text})
    return sorted(entries, key=lambda e: -e["t"])  # processes flush about once a second each: put in time order


SMALL_BATCH = 32  # up to this many results are counted in a plain loop (a Counter's setup costs more)


def _denials(results: Sequence[Result]) -> dict[str, int]:
    """Denied flags by verdict. A large batch is counted by object identity first (in C: a
    flood's results are mostly the same few shared objects), then by verdict."""
    denied: dict[str, int] = {}
    if len(results) <= SMALL_BATCH:
        pairs: Iterable[tuple[Result, int]] = ((r, 1) for r in results)
    else:
        objects = dict(zip(map(id, results), results, strict=True))
        pairs = ((objects[key], count) for key, count in Counter(map(id, results)).items())
    for result, count in pairs:
        if result.verdict is not Verdict.ACCEPTED:
            name = result.verdict.value
            denied[name] = denied.get(name, 0) + count
    return denied


def _add(into: dict[str, int], counts: dict[str, int]) -> None:
    for name, count in counts.items():
        into[name] = into.get(name, 0) + count


class SubmissionHistory:
    """The buffer of one process; `record` on the flag path, `flush` from a background task."""

    def __init__(self, store: GameStore, keep: int = KEEP) -> None:
        self.store = store
        self.keep = keep
        self._pending: dict[TeamID, deque[_Entry]] = {}
        self._denied: dict[str, int] = {}  # verdict -> denied flags since the last flush
        self._lock = threading.Lock()  # record (event loop, request) against flush (a thread)
        self._flusher: threading.Thread | None = None

    def record(self, team: TeamID | None, channel: str, flags: Sequence[str | bytes],
               results: Sequence[Result]) -> None:
        """Count one batch's denials and buffer its verdicts for the team's history (only its
        newest `keep` can survive, so only those are looked at; no team: only counted)."""
        if not flags:
            return
        denied = _denials(results)
        now = time.time()
        cut = [f[:FLAG_CHARS] for f in flags[-self.keep:]]  # a long line must not stay referenced
        with self._lock:
            _add(self._denied, denied)
            if team is None:
                return
            entries = self._pending.get(team)
            if entries is None:
                entries = self._pending[team] = deque(maxlen=self.keep)
            entries.extend(zip(repeat(now), repeat(channel), cut, results[-self.keep:], strict=False))

    def pending(self) -> int:
        """Entries waiting for the next flush."""
        with self._lock:
            return sum(map(len, self._pending.values()))

    def flush(self) -> None:
        """Write what is buffered, one pipeline for every team; kept for the next flush if Redis fails."""
        with self._lock:
            (taken, self._pending), (denied, self._denied) = (self._pending, {}), (self._denied, {})
        if not taken and not denied:
            return
        try:
            self.store.record_submissions({team: [encode(*e) for e in entries] for team, entries in taken.items()},
                                          self.keep, denied)
        except redis.RedisError as exc:
            log.warning("submission history and denial counts not written, retrying: %s", exc)
            with self._lock:
                _add(self._denied, denied)
                for team, older in taken.items():
                    merged = deque(older, maxlen=self.keep)
                    merged.extend(self._pending.get(team, ()))
                    self._pending[team] = merged

    def start(self) -> None:
        """Flush every FLUSH_SECONDS from a daemon thread (a greenlet under gevent) until the process ends."""
        if self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_forever, name="submission-history", daemon=True)
            self._flusher.start()

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            try:
                self.flush()
            except Exception:  # a bug here must not end the flushing
                log.exception("writing the submission history failed")
