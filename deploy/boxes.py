"""Game boxes: one container per (team, service), converged to the game file.

A box runs the service's challenge image under the base image's supervisor
(``adrange-box``: sshd for the team, the service command as user ``svc``, restarted when
it exits). It sits on the game network at its fixed address, publishes the service's
ports and its sshd at the team's address, runs with CPU/memory/pids limits, every
capability dropped but the few the supervisor needs, and no-new-privileges.

`up` compares each box's ``adrange.spec`` label (a hash of everything it was created
with, image id included) with what the game file asks for now: equal boxes are left
alone (started if stopped), different ones recreated, boxes no longer wanted removed.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import docker
from docker.errors import APIError, NotFound
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from scoreboard import access
from scoreboard.config import GameConfig, Service, Team
from scoreboard.types import ServiceID, TeamID

from . import images, network
from .engine import all_engines, connect, engine_url

LABEL_GAME = network.LABEL_GAME
LABEL_TEAM = "adrange.team"
LABEL_SERVICE = "adrange.service"
LABEL_ROLE = "adrange.role"
LABEL_SPEC = "adrange.spec"
# What the supervisor needs as root in the box: drop to the service user (SETUID, SETGID),
# make /srv group-writable (CHOWN, FOWNER, DAC_OVERRIDE), kill the service on restart
# (KILL), and sshd's privilege separation (SYS_CHROOT).
BOX_CAPS = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID", "SYS_CHROOT"]
WORKERS = 4


class DeployError(Exception):
    """A deployment step that failed; the message says which box and why."""


@dataclass
class Box:
    """One wanted box: where it runs and everything it is created with."""

    team: Team
    service: Service
    engine: str
    name: str
    address: str
    create: dict = field(repr=False)

    @property
    def spec(self) -> str:
        """The hash stored in the box's label; a different hash means recreate."""
        return self.create["labels"][LABEL_SPEC]


@dataclass
class BoxStatus:
    """One row of `adrange deploy status`."""

    team: str
    service: str
    name: str
    state: str
    address: str
    published: str
    health: str


def box_name(config: GameConfig, team: Team, service: Service) -> str:
    """The container name: ``adrange-<game>-t<team id>-<service>``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"adrange-{config.game.name}-t{team.id}-{service.name}")


def require_hosted(config: GameConfig) -> None:
    """Raise DeployError unless the game deploys its own targets."""
    if config.deploy.mode != "hosted":
        raise DeployError("deploy.mode is external: teams bring their own vulnbox, adrange deploys nothing")


# -- what is wanted ----------------------------------------------------------------
def wanted_boxes(config: GameConfig) -> list[Box]:
    """Every box the game file asks for (NOP team included), with its create arguments."""
    boxes = []
    for team in config.teams:
        url = engine_url(config, team)
        client = connect(url)
        for service in images.hosted_services(config):
            image = images.image_name(config, service, client)
            boxes.append(_box(config, team, service, url, image, client))
    return boxes


def _box(config: GameConfig, team: Team, service: Service, url: str, image: str,
         client: docker.DockerClient) -> Box:
    try:
        image_attrs = client.images.get(image).attrs
    except NotFound:
        raise DeployError(f"image {image} for {service.name!r} is missing on {url}: "
                          "run `adrange images build`") from None
    cfg = image_attrs["Config"]
    entry = cfg.get("Entrypoint") or []
    command = ([] if entry == [images.BOX_ENTRYPOINT] else entry) + (cfg.get("Cmd") or [])
    svc_user = cfg.get("User") or "svc"
    if svc_user in ("0", "root"):
        svc_user = "svc"
    name = box_name(config, team, service)
    address = network.box_address(config, team, service)
    net = network.network_name(config)
    ports: dict[str, tuple[str, int]] = {f"{p}/tcp": (team.address, p) for p in service.ports}
    if config.deploy.ssh:
        ports["22/tcp"] = (team.address, access.ssh_port(service))
    dep = config.deploy
    create = {
        "image": image,
        "name": name,
        "hostname": re.sub(r"[^a-z0-9-]+", "-", f"{service.name}-t{team.id}".lower())[:63],
        "entrypoint": [images.BOX_ENTRYPOINT],
        "command": command or ["/srv/run.sh"],
        "user": "0",
        "environment": {
            "ADRANGE_SVC_USER": svc_user,
            "ADRANGE_SSH": "1" if dep.ssh else "0",
            "ADRANGE_TEAM_PASSWORD": access.team_password(config, team) if dep.ssh else "",
        },
        "init": True,
        "detach": True,
        "ports": ports,
        "network": net,
        "nano_cpus": int(dep.cpus * 1e9),
        "mem_limit": dep.memory,
        "memswap_limit": dep.memory,
        "pids_limit": dep.pids,
        "cap_drop": ["ALL"],
        "cap_add": BOX_CAPS,
        "security_opt": ["no-new-privileges:true"],
        "restart_policy": {"Name": "unless-stopped"},
        "labels": {
            LABEL_GAME: config.game.name, LABEL_TEAM: str(team.id), LABEL_SERVICE: str(service.id),
            LABEL_ROLE: "box", "adrange.team_name": team.name, "adrange.service_name": service.name,
        },
    }
    spec_source = json.dumps({**create, "image_id": image_attrs["Id"], "address": address}, sort_keys=True)
    create["labels"][LABEL_SPEC] = hashlib.sha256(spec_source.encode()).hexdigest()[:16]
    create["networking_config"] = {net: client.api.create_endpoint_config(ipv4_address=address)}
    return Box(team, service, url, name, address, create)


def existing_boxes(config: GameConfig) -> dict[tuple[str, str], docker.models.containers.Container]:
    """The game's containers on every engine, by (engine url, container name)."""
    found = {}
    for url in dict.fromkeys(config.deploy.engines):
        for container in connect(url).containers.list(all=True, filters={"label": f"{LABEL_GAME}={config.game.name}"}):
            found[(url, container.name)] = container
    return found


# -- converge ----------------------------------------------------------------------
def up(config: GameConfig, console: Console | None = None, build: bool = True) -> Counter:
    """Converge the running boxes to the game file; count created/recreated/started/unchanged/removed."""
    require_hosted(config)
    console = console or Console(stderr=True)
    clients = all_engines(config)
    images.build_base(clients, config.deploy.base_image, console=console)
    if build:
        images.build_challenges(config, console=console)
    for client in clients:
        network.ensure_network(client, config, config.deploy.base_image)
    wanted = wanted_boxes(config)
    existing = existing_boxes(config)
    counts: Counter = Counter()
    jobs: list[tuple[str, Callable[[], None]]] = []
    for box in wanted:
        container = existing.pop((box.engine, box.name), None)
        if container is None:
            jobs.append(("created", lambda b=box: _create(b)))
        elif container.labels.get(LABEL_SPEC) != box.spec:
            jobs.append(("recreated", lambda b=box, c=container: (_remove(c), _create(b))))
        elif container.status != "running":
            jobs.append(("started", container.start))
        else:
            counts["unchanged"] += 1
    jobs += [("removed", lambda c=c: _remove(c)) for c in existing.values()]
    _run_jobs(jobs, counts, console, "deploy up")
    return counts


def _create(box: Box) -> None:
    client = connect(box.engine)
    try:
        client.containers.run(**box.create)
    except APIError as exc:
        raise DeployError(f"box {box.name} on {box.engine}: {exc.explanation or exc}") from None


def _remove(container) -> None:
    try:
        container.remove(force=True, v=True)
    except NotFound:
        pass


def _run_jobs(jobs: list[tuple[str, Callable[[], object]]], counts: Counter, console: Console, title: str) -> None:
    if not jobs:
        return
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                        TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=console)
    with progress, ThreadPoolExecutor(WORKERS) as pool:
        task = progress.add_task(title, total=len(jobs))
        futures = [(kind, pool.submit(job)) for kind, job in jobs]
        errors = []
        for kind, future in futures:
            try:
                future.result()
                counts[kind] += 1
            except DeployError as exc:
                errors.append(str(exc))
            progress.advance(task)
    if errors:
        raise DeployError("\n".join(errors))


def down(config: GameConfig, console: Console | None = None) -> Counter:
    """Remove every box and the game network on every engine (works in any mode)."""
    console = console or Console(stderr=True)
    counts: Counter = Counter()
    _run_jobs([("removed", lambda c=c: _remove(c)) for c in existing_boxes(config).values()], counts, console,
              "deploy down")
    for client in all_engines(config):
        if network.remove_network(client, config, config.deploy.base_image):
            counts["networks"] += 1
    return counts


# -- single boxes --------------------------------------------------------------------
def find_box(config: GameConfig, team_id: TeamID, service_id: ServiceID):
    """The container of one box (DeployError if it is not deployed)."""
    team, service = config.team(team_id), config.service(service_id)
    url = engine_url(config, team)
    try:
        return connect(url).containers.get(box_name(config, team, service))
    except NotFound:
        raise DeployError(f"no box for team {team.name!r} service {service.name!r} on {url}: "
                          "run `adrange deploy up`") from None


def restart(config: GameConfig, team_id: TeamID, service_id: ServiceID) -> None:
    """Restart one box's container (its files stay as the team left them)."""
    require_hosted(config)
    find_box(config, team_id, service_id).restart(timeout=3)


def reset(config: GameConfig, team_id: TeamID, service_id: ServiceID) -> None:
    """Recreate one box from its image: the team's changes inside it are gone."""
    require_hosted(config)
    team, service = config.team(team_id), config.service(service_id)
    url = engine_url(config, team)
    box = _box(config, team, service, url, images.image_name(config, service, connect(url)), connect(url))
    try:
        _remove(connect(url).containers.get(box.name))
    except NotFound:
        pass
    _create(box)


def resolve_ids(config: GameConfig, team: str, service: str) -> tuple[TeamID, ServiceID]:
    """Team and service ids from CLI words: an id or a name."""
    def pick(items: Iterable, word: str, what: str) -> int:
        for item in items:
            if word == str(item.id) or word == item.name:
                return item.id
        raise DeployError(f"no {what} {word!r} (give its id or name)")
    return pick(config.teams, team, "team"), pick(config.services, service, "service")


# -- status ----------------------------------------------------------------------------
def status(config: GameConfig, probe_timeout: float = 0.5) -> list[BoxStatus]:
    """One row per wanted box: container state, addresses, and whether its ports answer."""
    require_hosted(config)
    existing = existing_boxes(config)
    rows = []
    for team in config.teams:
        url = engine_url(config, team)
        for service in images.hosted_services(config):
            name = box_name(config, team, service)
            container = existing.get((url, name))
            published = ", ".join(f"{team.address}:{p}" for p in service.ports)
            state = container.status if container else "missing"
            health = "-"
            if state == "running" and service.ports:
                up_ports = [p for p in service.ports if _answers(team.address, p, probe_timeout)]
                health = "ok" if len(up_ports) == len(service.ports) else "down"
            rows.append(BoxStatus(team.name, service.name, name, state,
                                  network.box_address(config, team, service), published, health))
    return rows


def _answers(host: str, port: int, timeout: float) -> bool:
    """True if the port takes a connection and keeps it (Docker's port proxy accepts every
    connection and closes it at once when nothing listens in the box)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            try:
                return conn.recv(1) != b""
            except TimeoutError:
                return True
    except OSError:
        return False
