"""Game boxes: one container per (team, service), converged to the game file.

A box runs the service's challenge image under the base image's supervisor
(``adrange-box``: sshd for the team, the service command as user ``svc``, restarted when
it exits). It sits on the game network at its fixed address, publishes the service's
ports and its sshd at the team's address, runs with CPU/memory/pids limits, every
capability dropped but the few the supervisor needs, and no-new-privileges.

Against the players inside it: the code under /srv belongs to the team user, the service
user writes only the service's ``writable`` paths; /srv is the box's own size-capped disk
(deploy/disks.py) and every other place a user can write is a capped tmpfs (/tmp,
/var/tmp, /run, /var/log, /home/team, /dev/shm), so nothing a player does fills the
host's disk (the container log is rotated too); the embedded DNS resolver forwards only
to the box's own address, so names outside the game never leave the box.

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

from . import disks, images, network
from .engine import all_engines, connect, engine_url

LABEL_GAME = network.LABEL_GAME
LABEL_TEAM = "adrange.team"
LABEL_SERVICE = "adrange.service"
LABEL_ROLE = "adrange.role"
LABEL_SPEC = "adrange.spec"
# What the supervisor needs as root in the box: drop to the service user (SETUID, SETGID),
# give /srv to the team and the writable paths to the service user (CHOWN, FOWNER,
# DAC_OVERRIDE), kill the service on restart (KILL), and sshd's privilege separation
# (SYS_CHROOT).
BOX_CAPS = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID", "SYS_CHROOT"]
# The in-memory scratch mounts, each deploy.tmpfs large (/dev/shm too, as shm_size).
SCRATCH = {"/tmp": "1777", "/var/tmp": "1777", "/run": "0755", "/var/log": "0755", "/home/team": "0700"}
LOG_CONFIG = {"type": "json-file", "config": {"max-size": "10m", "max-file": "2"}}
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
    image_id: str
    create: dict = field(repr=False)
    disk: str | None = None  # the disk's id (deploy/disks.py), None without a disk
    device: str | None = None  # its loop device, once attached

    @property
    def spec(self) -> str:
        """The hash stored in the box's label (of everything it is created with, image id and
        disk device included); a different hash means recreate."""
        source = {k: v for k, v in self.create.items() if k != "networking_config"}
        source.update(image_id=self.image_id, address=self.address, device=self.device)
        return hashlib.sha256(json.dumps(source, sort_keys=True).encode()).hexdigest()[:16]

    def attach(self, device: str) -> None:
        """Mount the disk, attached on `device`, as /srv."""
        self.device = device
        self.create["volumes"] = {disks.volume_name(self.name): {"bind": "/srv", "mode": "rw"}}


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
    """Raise DeployError unless the game deploys its own targets (hosted or swarm mode)."""
    if not config.deploy.hosts_boxes:
        raise DeployError("deploy.mode is external: teams bring their own vulnbox, adrange deploys nothing")


# -- what is wanted ----------------------------------------------------------------
def wanted_boxes(config: GameConfig, running: Iterable[tuple[str, str]] = ()) -> list[Box]:
    """Every box the game file asks for (NOP team included), with its create arguments and
    its disk made and attached; `running` names the (engine, box) containers that run."""
    boxes = []
    for team in config.teams:
        url = engine_url(config, team)
        client = connect(url)
        for service in images.hosted_services(config):
            image = images.image_name(config, service, client)
            boxes.append(_box(config, team, service, url, image, client))
    _attach_disks(config, boxes, set(running))
    return boxes


def _attach_disks(config: GameConfig, boxes: list[Box], running: set[tuple[str, str]] | None = None) -> None:
    """Attach every box's disk, one helper run per engine. A running box whose volume holds
    the same disk needs none: its mount keeps the loop device bound to that disk's file."""
    for url in dict.fromkeys(b.engine for b in boxes if b.disk):
        volumes = disks.game_volumes(connect(url), config.game.name) if running else {}
        todo = []
        for box in (b for b in boxes if b.engine == url and b.disk):
            volume = volumes.get(box.name)
            labels = (volume.attrs.get("Labels") or {}) if volume else {}
            if (url, box.name) in (running or ()) and labels.get(disks.LABEL_DISK) == box.disk:
                box.attach(labels[disks.LABEL_DEVICE])
            else:
                todo.append(box)
        try:
            devices = disks.attach(connect(url), config.deploy.base_image, config.game.name,
                                   [(b.name, b.disk, config.deploy.disk) for b in todo])
        except disks.DiskError as exc:
            raise DeployError(str(exc)) from None
        for box in todo:
            box.attach(devices[box.name])


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
    scratch = disks.size_bytes(dep.tmpfs)
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
            "ADRANGE_WRITABLE": " ".join(service.writable),
            "ADRANGE_GAME_NET": dep.box_subnet,
            "ADRANGE_GATEWAY": network.gateway(config),
        },
        "init": True,
        "detach": True,
        "ports": ports,
        "network": net,
        "nano_cpus": int(dep.cpus * 1e9),
        "mem_limit": dep.memory,
        "memswap_limit": dep.memory,
        "pids_limit": dep.pids,
        "tmpfs": {path: f"rw,nosuid,nodev,exec,size={scratch},mode={mode}" for path, mode in SCRATCH.items()},
        "shm_size": scratch,
        # The embedded resolver answers the game's own names; anything else it forwards to
        # the box's own address, where nothing listens: no query reaches a real resolver.
        "dns": [address],
        "dns_opt": ["timeout:1", "attempts:1"],
        "log_config": LOG_CONFIG,
        "cap_drop": ["ALL"],
        "cap_add": BOX_CAPS,
        "security_opt": ["no-new-privileges:true"],
        "restart_policy": {"Name": "unless-stopped"},
        "labels": {
            LABEL_GAME: config.game.name, LABEL_TEAM: str(team.id), LABEL_SERVICE: str(service.id),
            LABEL_ROLE: "box", "adrange.team_name": team.name, "adrange.service_name": service.name,
        },
    }
    create["networking_config"] = {net: client.api.create_endpoint_config(ipv4_address=address)}
    disk = disks.disk_id(image_attrs["Id"], dep.disk) if dep.disk else None
    return Box(team, service, url, name, address, image_attrs["Id"], create, disk)


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
    if config.deploy.mode == "swarm":
        from . import swarm

        return swarm.up(config, console, build)
    console = console or Console(stderr=True)
    clients = all_engines(config)
    images.build_base(clients, config.deploy.base_image, console=console)
    if build:
        images.build_challenges(config, console=console)
    for client in clients:
        network.ensure_network(client, config, config.deploy.base_image)
    existing = existing_boxes(config)
    wanted = wanted_boxes(config, [key for key, c in existing.items() if c.status == "running"])
    counts: Counter = Counter()
    jobs: list[tuple[str, Callable[[], None]]] = []
    for box in wanted:
        container = existing.pop((box.engine, box.name), None)
        if container is None:
            jobs.append(("created", lambda b=box: _create(b)))
        elif container.labels.get(LABEL_SPEC) != box.spec:
            jobs.append(("recreated", lambda b=box, c=container: (_remove(c), _create(b))))
        elif container.status != "running":
            jobs.append(("started", lambda b=box, c=container: _start(b, c)))
        else:
            counts["unchanged"] += 1
    jobs += [("removed", lambda c=c: _remove(c)) for c in existing.values()]
    _run_jobs(jobs, counts, console, "deploy up")
    _prune_disks(config, {(b.engine, b.name) for b in wanted if b.disk})
    return counts


def _engine_failure(name: str, engine: str, exc: Exception) -> DeployError:
    """An engine's refusal for one box, with what to do about a port another holds."""
    text = str(getattr(exc, "explanation", None) or exc)
    if "port is already allocated" in text or "address already in use" in text:
        text += (" (another game's box or a host program holds that address and port: see `adrange deploy "
                 "status` of the other game, or `ss -ltnp`)")
    return DeployError(f"box {name} on {engine}: {text}")


def _create(box: Box) -> None:
    client = connect(box.engine)
    try:
        if box.device:
            disks.ensure_volume(client, box.name, box.device, box.disk or "", box.create["labels"][LABEL_GAME])
        client.containers.run(**{**box.create, "labels": {**box.create["labels"], LABEL_SPEC: box.spec}})
    except (APIError, disks.DiskError) as exc:
        raise _engine_failure(box.name, box.engine, exc) from None


def _start(box: Box, container) -> None:
    try:
        container.start()
    except APIError as exc:
        raise _engine_failure(box.name, box.engine, exc) from None


def _prune_disks(config: GameConfig, keep: set[tuple[str, str]] | None = None) -> None:
    """Drop the disks (volume, loop device, image file) of the game's boxes not in `keep`
    ((engine, box name) pairs); None drops every disk of the game."""
    errors = []
    for url in dict.fromkeys(config.deploy.engines):
        client = connect(url)
        volumes = disks.game_volumes(client, config.game.name)
        gone = [box for box in volumes if keep is None or (url, box) not in keep]
        for box in gone:
            volumes[box].remove(force=True)
        if keep is not None and not gone:
            continue
        if keep is None and not volumes and not (config.deploy.mode == "hosted" and config.deploy.disk
                                                 and images.has_image(client, config.deploy.base_image)):
            continue  # no disk was ever made here
        try:
            disks.release(client, config.deploy.base_image, config.game.name, None if keep is None else gone)
        except disks.DiskError as exc:
            errors.append(str(exc))
    if errors:
        raise DeployError("\n".join(errors))


def _remove(container) -> None:
    try:
        container.remove(force=True, v=True)
    except NotFound:
        pass
    except APIError as exc:
        raise _engine_failure(container.name, "its engine", exc) from None


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
    if config.deploy.mode == "swarm":
        from . import swarm

        return swarm.down(config, console)
    console = console or Console(stderr=True)
    counts: Counter = Counter()
    _run_jobs([("removed", lambda c=c: _remove(c)) for c in existing_boxes(config).values()], counts, console,
              "deploy down")
    for client in all_engines(config):
        if network.remove_network(client, config, config.deploy.base_image):
            counts["networks"] += 1
    _prune_disks(config)
    return counts


# -- single boxes --------------------------------------------------------------------
def find_box(config: GameConfig, team_id: TeamID, service_id: ServiceID):
    """The container of one box (DeployError if it is not deployed)."""
    if config.deploy.mode == "swarm":
        from . import swarm

        return swarm.find_box(config, team_id, service_id)
    team, service = config.team(team_id), config.service(service_id)
    url = engine_url(config, team)
    try:
        return connect(url).containers.get(box_name(config, team, service))
    except NotFound:
        raise DeployError(f"no box for team {team.name!r} service {service.name!r} on {url}: "
                          "run `adrange deploy up`") from None


def restart(config: GameConfig, team_id: TeamID, service_id: ServiceID) -> None:
    """Restart one box's container: /srv (the team's code, the service's data) stays as it
    was, the scratch mounts (/tmp, /home/team ...) start empty."""
    require_hosted(config)
    if config.deploy.mode == "swarm":
        from . import swarm

        return swarm.restart(config, team_id, service_id)
    container = find_box(config, team_id, service_id)
    box = _one_box(config, team_id, service_id)
    if box.device:
        _attach_disks(config, [box])
        try:
            mounted = connect(box.engine).volumes.get(disks.volume_name(box.name)).attrs["Options"]["device"]
        except (NotFound, KeyError, TypeError):
            mounted = None
        if mounted != box.device:  # a host reboot detached every disk: the old device may be another's
            raise DeployError(f"box {box.name}: its disk is now on {box.device}, not {mounted}: "
                              "run `adrange deploy up`")
    container.restart(timeout=3)


def reset(config: GameConfig, team_id: TeamID, service_id: ServiceID) -> None:
    """Recreate one box from its image on a fresh disk: the team's changes inside it are gone."""
    require_hosted(config)
    if config.deploy.mode == "swarm":
        from . import swarm

        return swarm.reset(config, team_id, service_id)
    box = _one_box(config, team_id, service_id)
    client = connect(box.engine)
    try:
        _remove(client.containers.get(box.name))
    except NotFound:
        pass
    if box.disk:
        disks.remove_volume(client, box.name)
        try:
            disks.release(client, config.deploy.base_image, config.game.name, [box.name])
        except disks.DiskError as exc:
            raise DeployError(str(exc)) from None
        _attach_disks(config, [box])
    _create(box)


def _one_box(config: GameConfig, team_id: TeamID, service_id: ServiceID) -> Box:
    """The wanted box of one (team, service), its disk not attached yet."""
    team, service = config.team(team_id), config.service(service_id)
    url = engine_url(config, team)
    client = connect(url)
    return _box(config, team, service, url, images.image_name(config, service, client), client)


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
    if config.deploy.mode == "swarm":
        from . import swarm

        return swarm.status(config, probe_timeout)
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
