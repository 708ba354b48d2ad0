"""Helpers that drive a game's state for tests and benchmarks."""

from __future__ import annotations

from scoreboard.flags import FlagCodec
from scoreboard.store import GameStore
from scoreboard.types import GameState


def start_at_round(store: GameStore, round_: int) -> None:
    """Start the game and open rounds up to `round_` (closing none)."""
    store.set_state(GameState.RUNNING)
    store.open_round(round_)


def flag_of(store: GameStore, round_: int, team: int, service: int, slot: int = 0) -> str:
    """The flag a checker would place for (round, team, service, slot)."""
    game = store.config.game
    return FlagCodec(game.secret, game.flag_prefix).generate(round_, team, service, slot)
