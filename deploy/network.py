"""The game network: one bridge per engine for every box, with predictable addresses.

Box addresses follow ``deploy.box_subnet`` + team * 256 + service, so with the default
10.77.0.0/16 team 3's service 2 is 10.77.3.2 on every engine; the gateway is the
subnet's first address. Teams' boxes reach each other's service ports on this network
(not sshd: below).

Isolation rules (iptables, applied on the engine's host by a short-lived helper container
from the base image, so they work for remote engines too):
- INPUT: new connections from the bridge to the host are dropped: a box cannot reach any
  host port through the gateway (Redis, the web app, sshd, the Docker API over TCP ...).
- DOCKER-USER: new connections from the bridge to any other interface are dropped: no
  internet, no other Docker networks. Replies to published ports still flow.
- DOCKER-USER: box to box on the bridge, TCP port 22 is dropped: no box reaches another
  box's sshd (teams come in through the published port, from the host side). Bridged
  traffic passes iptables only with ``net.bridge.bridge-nf-call-iptables=1`` (module
  br_netfilter, which dockerd loads), so the rules refuse to apply without it; inside the
  box sshd also refuses every game-network address but the gateway (deploy/base/adrange-box).
"""

from __future__ import annotations

import hashlib
import ipaddress

import docker
from docker.errors import APIError, ContainerError, NotFound
from docker.types import IPAMConfig, IPAMPool

from scoreboard.config import GameConfig, Service, Team

from .engine import url_of

LABEL_GAME = "adrange.game"


class NetworkError(Exception):
    """A game network that cannot be made or torn down; the message says why."""


def network_name(config: GameConfig) -> str:
    """The Docker name of the game's bridge network."""
    return f"adrange-{config.game.name}-game"


def bridge_name(config: GameConfig) -> str:
    """The host interface name of the bridge (at most 15 characters, stable per game)."""
    return "adr-" + hashlib.sha1(config.game.name.encode()).hexdigest()[:10]


def gateway(config: GameConfig) -> str:
    """The bridge's address on the host side."""
    return str(ipaddress.ip_network(config.deploy.box_subnet).network_address + 1)


def box_address(config: GameConfig, team: Team, service: Service) -> str:
    """The box's fixed address on the game network: subnet + team * 256 + service."""
    net = ipaddress.ip_network(config.deploy.box_subnet)
    addr = net.network_address + team.id * 256 + service.id
    if addr not in net or addr in (net.broadcast_address, net.network_address + 1):
        raise NetworkError(
            f"deploy.box_subnet {net} has no box address for team {team.id} service {service.id}: "
            "use a larger subnet (a /16 holds 255 teams)"
        )
    return str(addr)


def ensure_network(client: docker.DockerClient, config: GameConfig, base_image: str) -> str:
    """Create the game network on this engine if missing and apply the isolation rules."""
    name = network_name(config)
    try:
        network = client.networks.get(name)
        subnets = [c.get("Subnet") for c in network.attrs["IPAM"]["Config"] or []]
        if config.deploy.box_subnet not in subnets:
            raise NetworkError(f"network {name} exists with subnet {subnets}, config says "
                               f"{config.deploy.box_subnet}: run `adrange deploy down` first")
    except NotFound:
        ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=config.deploy.box_subnet, gateway=gateway(config))])
        try:
            client.networks.create(
                name, driver="bridge", ipam=ipam, labels={LABEL_GAME: config.game.name},
                options={"com.docker.network.bridge.name": bridge_name(config)},
            )
        except APIError as exc:
            raise NetworkError(f"cannot create network {name} ({config.deploy.box_subnet}): "
                               f"{exc.explanation or exc}") from None
    _iptables(client, base_image, _rules_script(bridge_name(config), add=True))
    return name


def remove_network(client: docker.DockerClient, config: GameConfig, base_image: str) -> bool:
    """Drop the isolation rules and the network; True if a network was removed."""
    try:
        network = client.networks.get(network_name(config))
    except NotFound:
        return False
    _iptables(client, base_image, _rules_script(bridge_name(config), add=False))
    network.remove()
    return True


def _rules(bridge: str) -> list[tuple[str, str]]:
    new = "-m conntrack --ctstate NEW"
    tag = "-m comment --comment adrange-isolate -j DROP"
    return [
        ("INPUT", f"-i {bridge} {new} {tag}"),
        ("DOCKER-USER", f"-i {bridge} ! -o {bridge} {new} {tag}"),
        ("DOCKER-USER", f"-i {bridge} -o {bridge} -p tcp --dport 22 {tag}"),
    ]


BRIDGE_FILTER_CHECK = (
    '[ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null)" = 1 ] || { '
    'echo "net.bridge.bridge-nf-call-iptables is not 1 on this host: traffic between boxes would skip '
    'the firewall (every box could reach the others\' sshd). Run: modprobe br_netfilter && '
    'sysctl -w net.bridge.bridge-nf-call-iptables=1" >&2; exit 1; }'
)


def _rules_script(bridge: str, add: bool) -> str:
    """Shell that removes every copy of each rule, then (when adding) inserts it once."""
    lines = ["set -e"] + ([BRIDGE_FILTER_CHECK] if add else [])
    for chain, rule in _rules(bridge):
        lines.append(f"while iptables -w -D {chain} {rule} 2>/dev/null; do :; done")
        if add:
            lines.append(f"iptables -w -N {chain} 2>/dev/null || true")
            lines.append(f"iptables -w -I {chain} 1 {rule}")
    return "\n".join(lines)


def _iptables(client: docker.DockerClient, base_image: str, script: str) -> None:
    try:
        client.containers.run(
            base_image, ["/bin/sh", "-c", script], entrypoint=[], network_mode="host", remove=True,
            cap_drop=["ALL"], cap_add=["NET_ADMIN", "NET_RAW"], labels={LABEL_GAME: "helper"},
        )
    except ContainerError as exc:
        raise NetworkError(f"isolation rules failed on {url_of(client)}: "
                           f"{(exc.stderr or b'').decode(errors='replace').strip()}") from None
