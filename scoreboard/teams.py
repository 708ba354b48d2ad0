"""Finding a team by its token or by the address it connects from."""

from __future__ import annotations

import hmac
import ipaddress

from .config import GameConfig
from .types import TeamID


class TeamDirectory:
    """Token and source-address lookups over a game's teams."""

    def __init__(self, config: GameConfig) -> None:
        self._tokens = {t.token: t.id for t in config.teams if t.token}
        self._networks = sorted(
            ((ipaddress.ip_network(t.network, strict=False), t.id) for t in config.teams if t.network),
            key=lambda item: -item[0].prefixlen,  # most specific first
        )

    def by_token(self, token: str | None) -> TeamID | None:
        """The team holding this token, compared in constant time per team."""
        if not token:
            return None
        found = None
        for known, team in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                found = team
        return found

    def by_address(self, address: str) -> TeamID | None:
        """The team whose network holds this source address (most specific network wins)."""
        found = self._find(address)
        return found[1] if found else None

    def network_of(self, address: str) -> str | None:
        """The team network (CIDR text) holding this source address, or None."""
        found = self._find(address)
        return str(found[0]) if found else None

    def _find(self, address: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, TeamID] | None:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        for network, team in self._networks:
            if ip in network:
                return network, team
        return None
