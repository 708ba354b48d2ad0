"""Team access to its own boxes: SSH as user ``team`` with a password derived from the secret.

Each box publishes its sshd at the team's address on port 2200 + service id. The password
is an HMAC of the game secret and the team id (not its name, which admins may change), so
the portal can show it without storing it; another team's password does not open the box.
Pure naming, shared by `deploy` (which sets the boxes up) and the team portal (which shows
the logins).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from .config import GameConfig, Service, Team
from .types import TeamID

SSH_USER = "team"
SSH_PORT_BASE = 2200


def ssh_port(service: Service) -> int:
    """The host port of the box's sshd: 2200 + service id."""
    return SSH_PORT_BASE + service.id


def team_password(config: GameConfig, team: Team) -> str:
    """The team's SSH password: 20 lower-case base32 characters of HMAC(secret, team id)."""
    mac = hmac.new(config.game.secret.encode(), b"ssh:%d" % team.id, hashlib.sha256).digest()
    return base64.b32encode(mac).decode().lower()[:20]


def team_access(config: GameConfig, team_id: TeamID) -> list[dict]:
    """SSH logins for the team portal: one dict per hosted service (empty in external mode).

    Each dict has ``service``, ``host``, ``port``, ``user`` and ``password``.
    """
    if not config.deploy.hosts_boxes or not config.deploy.ssh:
        return []
    team = config.team(team_id)
    password = team_password(config, team)
    return [
        {"service": s.name, "host": team.address, "port": ssh_port(s), "user": SSH_USER, "password": password}
        for s in config.services if s.enabled
    ]
