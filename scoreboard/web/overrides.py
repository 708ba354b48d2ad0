"""Admin changes to teams and services mid-game, applied over the game file.

Overrides live in Redis (``GameStore.set_override``) as small dicts per team or service:
``name``, ``address``, ``disabled`` and, for teams added mid-game, ``new`` with ``token``.
`apply_overrides` is pure: the game file plus the overrides gives the effective game.
"""

from __future__ import annotations

from typing import Any

from ..config import GameConfig, Team, derive_token

TEAM_FIELDS = ("name", "address", "disabled")
SERVICE_FIELDS = ("name", "disabled")


def apply_overrides(config: GameConfig, overrides: dict[tuple[str, int], dict[str, Any]]) -> GameConfig:
    """The effective game: renamed/readdressed/disabled teams and services, added teams."""
    if not overrides:
        return config
    effective = config.model_copy(deep=True)
    effective.base_dir = config.base_dir
    known = {t.id for t in effective.teams}
    for (kind, item_id), values in sorted(overrides.items()):
        if kind == "team" and item_id not in known and values.get("new"):
            name = values.get("name") or f"team{item_id}"
            token = values.get("token") or derive_token(config.game.secret, name)
            address = values.get("address") or config.deploy.address_scheme.format(team=item_id)
            effective.teams.append(Team(name=name, id=item_id, token=token, address=address,
                                        network=config.deploy.network_scheme.format(team=item_id)))
            known.add(item_id)
    for (kind, item_id), values in overrides.items():
        try:
            target = effective.team(item_id) if kind == "team" else effective.service(item_id)
        except KeyError:
            continue
        if values.get("name"):
            target.name = values["name"]
        if kind == "team" and values.get("address"):
            target.address = values["address"]
        if kind == "service" and "disabled" in values:
            target.enabled = not values["disabled"]
    disabled = {item_id for (kind, item_id), v in overrides.items() if kind == "team" and v.get("disabled")}
    if disabled:
        effective.teams = [t for t in effective.teams if t.id not in disabled]
    return effective


def disabled_teams(overrides: dict[tuple[str, int], dict[str, Any]]) -> set[int]:
    """Ids of teams an admin disabled."""
    return {item_id for (kind, item_id), v in overrides.items() if kind == "team" and v.get("disabled")}
