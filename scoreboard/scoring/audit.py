"""Rescoring: rebuild every box's counters from the event streams, compare them with the
live counters and, when asked, repair the live ones.

The event streams (``ev:capture``, ``ev:round``) are the record; the box counters are a
cache of it that the submit and close scripts keep. A repair swaps the rebuilt counters in
with one MULTI/EXEC guarded by WATCH on both streams: if a flag is accepted or a round
closes meanwhile, the transaction fails and the audit starts over, so a repair can run
while the game plays and never loses an event that landed during it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from ..effective import EffectiveGame
from ..ranking import rank
from ..store import GameStore
from ..types import ServiceID, TeamID
from .base import Counters
from .replay import normalize, replay

Box = tuple[TeamID, ServiceID]


@dataclass
class BoxDifference:
    """One box whose live counters differ from the rebuilt ones: field -> (live, rebuilt)."""

    box: Box
    fields: dict[str, tuple[int, int]]


@dataclass
class Audit:
    """What a rescore found (and whether it repaired it)."""

    captures: int
    closes: int
    boxes: int
    differences: list[BoxDifference]
    totals: dict[str, tuple[float, float]] = field(default_factory=dict)  # team -> (live, rebuilt), changed only
    repaired: bool = False

    @property
    def equal(self) -> bool:
        return not self.differences


def _live_counters(store: GameStore) -> dict[Box, Counters]:
    """Every box hash of the game (disabled teams included), as ints without zeros."""
    pattern = store.keys.box("*", "*")  # type: ignore[arg-type]
    keys = sorted(store.redis.scan_iter(match=pattern, count=1000))
    pipe = store.redis.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    boxes = {}
    for key, raw in zip(keys, pipe.execute(), strict=True):
        team, service = key.rsplit(":", 2)[-2:]
        if values := normalize(raw):
            boxes[(int(team), int(service))] = values
    return boxes


def _compare(live: dict[Box, Counters], rebuilt: dict[Box, Counters]) -> list[BoxDifference]:
    differences = []
    for box in sorted(live.keys() | rebuilt.keys()):
        old, new = live.get(box, {}), rebuilt.get(box, {})
        fields = {name: (old.get(name, 0), new.get(name, 0)) for name in sorted(old.keys() | new.keys())
                  if old.get(name, 0) != new.get(name, 0)}
        if fields:
            differences.append(BoxDifference(box, fields))
    return differences


def _changed_totals(store: GameStore, live: dict[Box, Counters], rebuilt: dict[Box, Counters]
                    ) -> dict[str, tuple[float, float]]:
    config = EffectiveGame(store).current()
    before = {row.name: row.total for row in rank(config, live)}
    after = {row.name: row.total for row in rank(config, rebuilt)}
    return {name: (before[name], after[name]) for name in before if before[name] != after[name]}


def rescore(store: GameStore, repair: bool = False, attempts: int = 10) -> Audit:
    """Rebuild the counters from the streams and compare; `repair` writes the rebuilt ones
    over the live ones atomically (retried when an event lands meanwhile)."""
    streams = [store.keys.stream("capture"), store.keys.stream("round")]
    with store.redis.pipeline() as pipe:
        for _ in range(attempts):
            try:
                pipe.watch(*streams)
                captures, rounds = list(store.events("capture")), list(store.events("round"))
                rebuilt = replay(store.config.game.scoring, captures, rounds)
                live = _live_counters(store)
                audit = Audit(len(captures), sum(e.get("type") == "closed" for e in rounds),
                              len(live.keys() | rebuilt.keys()), _compare(live, rebuilt),
                              _changed_totals(store, live, rebuilt))
                if not repair or audit.equal:
                    pipe.unwatch()
                    return audit
                pipe.multi()
                for difference in audit.differences:
                    key = store.keys.box(*difference.box)
                    pipe.delete(key)
                    if rebuilt.get(difference.box):
                        pipe.hset(key, mapping=rebuilt[difference.box])
                pipe.execute()
                audit.repaired = True
                return audit
            except redis.WatchError:
                continue
    raise RuntimeError(f"the event streams kept changing during {attempts} attempts; pause the game and retry")
