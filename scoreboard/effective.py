"""The effective game: the game file plus the admins' changes, as every process sees it.

Overrides live in Redis (``GameStore.set_override``) as small dicts per team or service:
``name``, ``address``, ``disabled`` and, for teams added mid-game, ``new`` with ``token``.
Every edit bumps the overrides version in the same transaction. `apply_overrides` is pure;
`EffectiveGame` keeps its result per process and rebuilds it when the version changes
(checked at most once per ``max_age`` seconds), and `PerVersion` keeps what is built from
it (a judge, a team directory) until the next change.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import redis

from .config import GameConfig, Team, derive_token

if TYPE_CHECKING:
    from .store import GameStore

log = logging.getLogger("adrange.effective")
Overrides = dict[tuple[str, int], dict[str, Any]]
T = TypeVar("T")

TEAM_FIELDS = ("name", "address", "disabled")
SERVICE_FIELDS = ("name", "disabled")


def apply_overrides(config: GameConfig, overrides: Overrides) -> GameConfig:
    """The effective game: renamed/readdressed/disabled teams and services, added teams.

    A disabled team leaves ``teams``; a disabled service stays with ``enabled=False``.
    The game file's config is never changed (teams and services are copied).
    """
    if not overrides:
        return config
    teams = [team.model_copy() for team in config.teams]
    services = [service.model_copy() for service in config.services]
    known = {team.id for team in teams}
    for (kind, item_id), values in sorted(overrides.items()):
        if kind == "team" and item_id not in known and values.get("new"):
            teams.append(_added_team(config, item_id, values))
            known.add(item_id)
    targets: dict[tuple[str, int], Any] = {("team", t.id): t for t in teams}
    targets.update({("service", s.id): s for s in services})
    for key, values in overrides.items():
        target = targets.get(key)
        if target is None:
            continue
        if values.get("name"):
            target.name = values["name"]
        if isinstance(target, Team):
            if values.get("address"):
                target.address = values["address"]
        elif "disabled" in values:
            target.enabled = not values["disabled"]
    disabled = disabled_teams(overrides)
    return config.model_copy(update={"teams": [t for t in teams if t.id not in disabled], "services": services})


def _added_team(config: GameConfig, team_id: int, values: dict[str, Any]) -> Team:
    """A team an admin added mid-game, with the defaults a game-file team would get."""
    return Team(name=values.get("name") or f"team{team_id}", id=team_id,
                token=values.get("token") or derive_token(config.game.secret, team_id),
                address=values.get("address") or config.deploy.address_scheme.format(team=team_id),
                network=config.deploy.network_scheme.format(team=team_id))


def disabled_teams(overrides: Overrides) -> set[int]:
    """Ids of teams an admin disabled."""
    return {item_id for (kind, item_id), v in overrides.items() if kind == "team" and v.get("disabled")}


class EffectiveGame:
    """The game file plus admin overrides, as every process sees it.

    `current()` answers from memory and asks Redis for the overrides version at most once
    per ``max_age`` seconds (``math.inf``: only when `refresh()` is called, e.g. by a
    background task); the overrides themselves are read only when the version moved.
    While Redis cannot be read, the last known game stays in use.
    """

    def __init__(self, store: GameStore, max_age: float = 1.0) -> None:
        self.store = store
        self.max_age = max_age
        self._state: tuple[int, GameConfig] = (-1, store.config)  # (version, config); -1: never read
        self._checked = -math.inf

    def current(self) -> GameConfig:
        """The effective game, at most ``max_age`` seconds behind the admins' last edit."""
        if time.monotonic() - self._checked >= self.max_age:
            return self.refresh()
        return self._state[1]

    def refresh(self) -> GameConfig:
        """Check the overrides version now; rebuild the game if it changed."""
        self._checked = time.monotonic()
        try:
            version = self.store.overrides_version()
            if version != self._state[0]:
                # Read after the version: an edit in between only makes the next check rebuild again.
                self._state = (version, apply_overrides(self.store.config, self.store.overrides()))
        except redis.RedisError as exc:
            log.warning("cannot read admin overrides (%s); keeping game version %d", exc, self._state[0])
        return self._state[1]

    @property
    def version(self) -> int:
        """The overrides version of the game `current()` returned last (-1 before any read)."""
        return self._state[0]


class PerVersion(Generic[T]):
    """Something built from the effective game (a judge, a team directory), rebuilt only
    when the game changes."""

    def __init__(self, game: EffectiveGame, build: Callable[[GameConfig], T]) -> None:
        self.game = game
        self._build = build
        self._built: tuple[GameConfig, T] | None = None

    def get(self) -> T:
        """The object for the game's current version."""
        config = self.game.current()
        built = self._built
        if built is None or built[0] is not config:
            built = (config, self._build(config))
            self._built = built
        return built[1]
