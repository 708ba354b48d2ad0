"""The Swarm under a swarm-mode game: its nodes and their engines, images, the game network.

- **Nodes.** ``deploy.engines`` lists the engine of every node (the first a manager):
  Swarm places the boxes, but copying images, firewall rules and writing flag files need
  each node's own engine, so a node without one in the list is an error.
- **Images, offline.** Built once on ``deploy.swarm.build_engine`` (the base image and the
  challenge images, as in hosted mode), then copied to every node that lacks one: one
  ``docker save`` stream of the missing images, ``docker load`` on each node. No registry:
  nothing to run, secure or keep reachable, and a node can never pull from outside. Boxes
  name their image by id (``sha256:...``), which a node never tries to pull.
- **The game network** is an attachable overlay (``deploy.box_subnet``), created on the
  manager; Swarm stretches it to a node when a box lands there. A box's other leg is the
  node's ``docker_gwbridge`` (egress, host-mode published ports): on every node iptables
  rules (tagged with the game) drop new connections from that bridge to the node itself
  and out of it, so a box reaches nothing but the game network; replies to the published
  ports still flow.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import docker
from docker.errors import APIError, NotFound
from docker.types import IPAMConfig, IPAMPool
from rich.console import Console

from scoreboard.config import GameConfig

from . import images, network
from .engine import EngineError, connect

GWBRIDGE = "docker_gwbridge"


class SwarmError(Exception):
    """A swarm that cannot host the game as asked; the message says what to do."""


@dataclass(frozen=True)
class Node:
    """One Swarm node: its id, name, the address its published ports answer on, its engine."""

    id: str
    hostname: str
    address: str
    engine: str
    labels: dict

    @property
    def client(self) -> docker.DockerClient:
        return connect(self.engine)


def manager(config: GameConfig) -> docker.DockerClient:
    """The manager's engine (``deploy.engines[0]``), checked to be one."""
    url = config.deploy.engines[0]
    client = connect(url)
    swarm = client.info().get("Swarm") or {}
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
        raise SwarmError(f"deploy.engines[0] {url} is not a Swarm manager (deploy.mode swarm): run "
                         "`docker swarm init` there, or list a manager's engine first")
    return client


def nodes(config: GameConfig) -> dict[str, Node]:
    """Every node of the swarm by id, with the engine of ``deploy.engines`` that runs it."""
    by_node = {}
    for url in dict.fromkeys(config.deploy.engines):
        node_id = (connect(url).info().get("Swarm") or {}).get("NodeID")
        if not node_id:
            raise SwarmError(f"deploy.engines: {url} is not in a swarm (docker swarm join it, or drop it)")
        by_node[node_id] = url
    found = {}
    for node in manager(config).nodes.list():
        attrs = node.attrs
        if node.id not in by_node:
            raise SwarmError(f"swarm node {attrs['Description']['Hostname']} ({attrs['Status'].get('Addr')}) has no "
                             "engine in deploy.engines: list it (adrange copies images and flags through it)")
        address = attrs["Status"].get("Addr") or ""
        if address in ("", "0.0.0.0"):  # a manager may report no address: take its cluster one
            address = (attrs.get("ManagerStatus") or {}).get("Addr", "").rpartition(":")[0]
        found[node.id] = Node(node.id, attrs["Description"]["Hostname"], address, by_node[node.id],
                              attrs["Spec"].get("Labels") or {})
    return found


def node_clients(config: GameConfig) -> list[docker.DockerClient]:
    """Clients for every node's engine."""
    return [node.client for node in nodes(config).values()]


# -- images --------------------------------------------------------------------------
def build_config(config: GameConfig) -> GameConfig:
    """The game as seen by the build engine: images are built there only."""
    copy = config.model_copy(deep=True)
    copy.deploy.engines = [config.deploy.swarm.build_engine]
    return copy


def build_images(config: GameConfig, console: Console, build: bool = True, force: bool = False) -> dict[str, str]:
    """Build the base and challenge images on the build engine, copy them to every node;
    return each service's image id by service name."""
    builder_config = build_config(config)
    try:
        builder = connect(config.deploy.swarm.build_engine)
    except EngineError as exc:
        raise SwarmError(f"deploy.swarm.build_engine: {exc}") from None
    images.build_base([builder], config.deploy.base_image, console=console)
    if build:
        images.build_challenges(builder_config, force=force, console=console)
    tags = {s.name: images.image_name(builder_config, s, builder) for s in images.hosted_services(config)}
    ids = {}
    for name, tag in tags.items():
        try:
            ids[name] = builder.images.get(tag).id
        except NotFound:
            raise SwarmError(f"image {tag} for {name!r} is missing on {config.deploy.swarm.build_engine}: "
                             "run `adrange images build`") from None
    distribute(builder, node_clients(config), [config.deploy.base_image, *tags.values()], console)
    return ids


def distribute(source: docker.DockerClient, targets: Iterable[docker.DockerClient], tags: list[str],
               console: Console) -> int:
    """Copy the images `tags` from `source` to every target engine that lacks one of them
    (one saved tarball of what is missing, loaded on each in parallel); return the number of
    engines loaded."""
    missing: dict[int, tuple[docker.DockerClient, list[str]]] = {}
    for client in targets:
        lacking = [tag for tag in dict.fromkeys(tags) if not _has_same(client, source, tag)]
        if lacking:
            missing[id(client)] = (client, lacking)
    if not missing:
        return 0
    wanted = sorted({tag for _, lacking in missing.values() for tag in lacking})
    with tempfile.NamedTemporaryFile(prefix="adrange-images-", suffix=".tar") as tarball, \
            console.status(f"copying {len(wanted)} image(s) to {len(missing)} node(s)"):
        response = source.api._get(source.api._url("/images/get"), params={"names": wanted}, stream=True)
        source.api._raise_for_status(response)
        for chunk in response.iter_content(1 << 20):
            tarball.write(chunk)
        tarball.flush()
        with ThreadPoolExecutor(len(missing)) as pool:
            list(pool.map(lambda client: images.load_images([client], tarball.name),
                          [client for client, _ in missing.values()]))
    return len(missing)


def _has_same(client: docker.DockerClient, source: docker.DockerClient, tag: str) -> bool:
    try:
        return client.images.get(tag).id == source.images.get(tag).id
    except NotFound:
        return False


# -- the game network ------------------------------------------------------------------
def ensure_network(config: GameConfig) -> str:
    """Create the game's attachable overlay on the manager if missing; apply every node's rules."""
    name = network.network_name(config)
    client = manager(config)
    try:
        existing = client.networks.get(name)
        subnets = [c.get("Subnet") for c in existing.attrs["IPAM"]["Config"] or []]
        if existing.attrs.get("Driver") != "overlay" or config.deploy.box_subnet not in subnets:
            raise SwarmError(f"network {name} exists ({existing.attrs.get('Driver')}, {subnets}); deploy.mode swarm "
                             f"wants an overlay on {config.deploy.box_subnet}: run `adrange deploy down` first")
    except NotFound:
        ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=config.deploy.box_subnet, gateway=network.gateway(config))])
        try:
            client.networks.create(name, driver="overlay", attachable=True, ipam=ipam, scope="swarm",
                                   labels={network.LABEL_GAME: config.game.name})
        except APIError as exc:
            raise SwarmError(f"cannot create overlay network {name} ({config.deploy.box_subnet}): "
                             f"{exc.explanation or exc}") from None
    for node_client in node_clients(config):
        network._iptables(node_client, config.deploy.base_image, rules_script(config.game.name, add=True))
    return name


def remove_network(config: GameConfig) -> bool:
    """Drop every node's rules and the overlay; True if a network was removed."""
    for node_client in node_clients(config):
        if images.has_image(node_client, config.deploy.base_image):
            network._iptables(node_client, config.deploy.base_image, rules_script(config.game.name, add=False))
    try:
        overlay = manager(config).networks.get(network.network_name(config))
    except NotFound:
        return False
    overlay.remove()
    return True


def rules_script(game: str, add: bool) -> str:
    """Shell that removes every copy of the game's node rules, then (when adding) inserts them."""
    tag = f"-m comment --comment adrange-{game} -j DROP"
    new = "-m conntrack --ctstate NEW"
    rules = [("INPUT", f"-i {GWBRIDGE} {new} {tag}"), ("DOCKER-USER", f"-i {GWBRIDGE} ! -o {GWBRIDGE} {new} {tag}")]
    lines = ["set -e"]
    for chain, rule in rules:
        lines.append(f"while iptables -w -D {chain} {rule} 2>/dev/null; do :; done")
        if add:
            lines += [f"iptables -w -N {chain} 2>/dev/null || true", f"iptables -w -I {chain} 1 {rule}"]
    return "\n".join(lines)

