"""Game boxes on Docker Swarm (``deploy.mode: swarm``): one service per box, placed by Swarm.

Each box is a replicated service with one replica (name as in hosted mode), restarted on
any exit, on the game's attachable overlay (deploy/swarm_cluster.py) with endpoint mode
``dnsrr`` (no virtual IP: no IPVS needed), its ports and sshd published in host mode on
the node it runs on. Placement: the constraints of ``deploy.swarm`` (all boxes, the
team's, the service's), spread over the nodes (and over ``deploy.swarm.spread`` labels);
Swarm also never puts two boxes that publish the same port on one node.

The hardening of hosted boxes (deploy/boxes.py), in Swarm's terms: the same supervisor,
user, environment and capabilities (every one dropped but the supervisor's few), CPU,
memory and pids limits, the tmpfs scratch mounts (``/dev/shm`` one of them), the rotated
log, DNS forwarding to an address where nothing answers. Swarm cannot say
no-new-privileges: the entrypoint runs the supervisor under ``setpriv --no-new-privs``,
so every process of the box but tini has it. ``/srv`` is a named volume on the node (Docker
copies the image's /srv in; kept across restarts on that node, new with a new image), not
capped: a loop-device disk cannot be made for a node only Swarm picks (README "Swarm" lists
what Swarm cannot express and what is done instead).

`up` compares each service's ``adrange.spec`` label with what the game file asks for:
equal ones are left alone, different ones updated in place, unwanted ones removed; then
it waits until every box's task runs (or says why Swarm cannot place it).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import docker
import requests
from docker.errors import APIError, DockerException, NotFound
from rich.console import Console

from scoreboard import access
from scoreboard.config import GameConfig, Service, Team
from scoreboard.types import ServiceID, TeamID

from . import boxes, disks, images, network, swarm_cluster
from .engine import EngineError, connect
from .swarm_cluster import Node, SwarmError

NNP_WRAPPER = ["/usr/bin/setpriv", "--no-new-privs", "--"]
RUNNING_DEADLINE = 120.0  # seconds for every box's task to run after `up`, plus 5 per box
GONE_DEADLINE = 60.0


@dataclass
class Placed:
    """Where a box's task runs now: node, container id, overlay address (None: not running)."""

    node: Node | None
    container_id: str | None
    address: str | None
    state: str
    error: str


def service_name(config: GameConfig, team: Team, service: Service) -> str:
    return boxes.box_name(config, team, service)


def volume_name(box: str, image_id: str) -> str:
    """The box's /srv volume: a new image gives a new volume (a fresh copy of its /srv)."""
    return f"{box}-srv-{image_id.split(':')[-1][:12]}"


def constraints(config: GameConfig, team: Team, service: Service) -> list[str]:
    """The box's placement constraints: every box's, then its team's, then its service's."""
    placement = config.deploy.swarm
    own = placement.teams.get(team.name, []) + placement.teams.get(str(team.id), [])
    return [*placement.constraints, *own, *placement.services.get(service.name, [])]


def spec(config: GameConfig, team: Team, service: Service, image_id: str,
         image_config: dict) -> tuple[dict, dict, dict]:
    """The box's (task template, endpoint spec, labels) for the Swarm API."""
    dep = config.deploy
    name = service_name(config, team, service)
    entry = image_config.get("Entrypoint") or []
    command = ([] if entry == [images.BOX_ENTRYPOINT] else entry) + (image_config.get("Cmd") or [])
    svc_user = image_config.get("User") or "svc"
    if svc_user in ("0", "root"):
        svc_user = "svc"
    scratch = disks.size_bytes(dep.tmpfs)
    gateway = network.gateway(config)
    env = {
        "ADRANGE_SVC_USER": svc_user, "ADRANGE_SSH": "1" if dep.ssh else "0",
        "ADRANGE_TEAM_PASSWORD": access.team_password(config, team) if dep.ssh else "",
        "ADRANGE_WRITABLE": " ".join(service.writable), "ADRANGE_GAME_NET": dep.box_subnet,
        "ADRANGE_GATEWAY": gateway,
    }
    labels = {
        boxes.LABEL_GAME: config.game.name, boxes.LABEL_TEAM: str(team.id), boxes.LABEL_SERVICE: str(service.id),
        boxes.LABEL_ROLE: "box", "adrange.team_name": team.name, "adrange.service_name": service.name,
    }
    mounts = [{"Type": "tmpfs", "Target": path, "TmpfsOptions": {"SizeBytes": scratch, "Mode": int(mode, 8)}}
              for path, mode in {**boxes.SCRATCH, "/dev/shm": "1777"}.items()]
    mounts.append({"Type": "volume", "Source": volume_name(name, image_id), "Target": "/srv",
                   "VolumeOptions": {"Labels": {**labels, disks.LABEL_BOX: name}}})
    placement: dict = {"Constraints": constraints(config, team, service)}
    if dep.swarm.spread:
        placement["Preferences"] = [{"Spread": {"SpreadDescriptor": label}} for label in dep.swarm.spread]
    task = {
        "ContainerSpec": {
            "Image": image_id, "Labels": labels, "Hostname": re.sub(r"[^a-z0-9-]+", "-",
                                                                  f"{service.name}-t{team.id}".lower())[:63],
            "Command": [*NNP_WRAPPER, images.BOX_ENTRYPOINT], "Args": command or ["/srv/run.sh"],
            "User": "0", "Init": True, "Env": [f"{k}={v}" for k, v in env.items()], "Mounts": mounts,
            # Docker's embedded resolver answers the game's names; anything else goes to the
            # overlay's gateway, where nothing answers.
            "DNSConfig": {"Nameservers": [gateway], "Options": ["timeout:1", "attempts:1"]},
            "CapabilityDrop": ["ALL"], "CapabilityAdd": list(boxes.BOX_CAPS), "StopGracePeriod": 3_000_000_000,
        },
        "Resources": {"Limits": {"NanoCPUs": int(dep.cpus * 1e9), "MemoryBytes": disks.size_bytes(dep.memory),
                                 "Pids": dep.pids}},
        "RestartPolicy": {"Condition": "any", "Delay": 1_000_000_000, "MaxAttempts": 0},
        "Placement": placement,
        "LogDriver": {"Name": boxes.LOG_CONFIG["type"], "Options": boxes.LOG_CONFIG["config"]},
        "Networks": [{"Target": network.network_name(config), "Aliases": [name]}],
    }
    ports = [{"Protocol": "tcp", "TargetPort": p, "PublishedPort": p, "PublishMode": "host"} for p in service.ports]
    if dep.ssh:
        ports.append({"Protocol": "tcp", "TargetPort": 22, "PublishedPort": access.ssh_port(service),
                      "PublishMode": "host"})
    endpoint = {"Mode": "dnsrr", "Ports": ports}
    digest = hashlib.sha256(json.dumps([task, endpoint], sort_keys=True).encode()).hexdigest()[:16]
    return task, endpoint, {**labels, boxes.LABEL_SPEC: digest}


# -- what is wanted and what is there -------------------------------------------------
@dataclass
class Wanted:
    team: Team
    service: Service
    name: str
    task: dict
    endpoint: dict
    labels: dict


def wanted(config: GameConfig, image_ids: dict[str, str]) -> list[Wanted]:
    """Every box the game file asks for (NOP team included)."""
    return [_one(config, team, service, image_ids[service.name])
            for service in images.hosted_services(config) for team in config.teams]


def existing(config: GameConfig) -> dict[str, docker.models.services.Service]:
    """The game's box services by name."""
    client = swarm_cluster.manager(config)
    return {s.name: s for s in client.services.list(filters={"label": f"{boxes.LABEL_GAME}={config.game.name}"})}


# -- converge --------------------------------------------------------------------------
def up(config: GameConfig, console: Console | None = None, build: bool = True) -> Counter:
    """Converge the box services to the game file; count created/recreated/unchanged/removed."""
    console = console or Console(stderr=True)
    image_ids = swarm_cluster.build_images(config, console, build=build)
    swarm_cluster.ensure_network(config)
    api = swarm_cluster.manager(config).api
    there = existing(config)
    counts: Counter = Counter()
    jobs: list[tuple[str, Callable[[], object]]] = []
    boxes_wanted = wanted(config, image_ids)
    for box in boxes_wanted:
        current = there.pop(box.name, None)
        if current is None:
            jobs.append(("created", lambda b=box: _create(api, b)))
        elif (current.attrs["Spec"].get("Labels") or {}).get(boxes.LABEL_SPEC) != box.labels[boxes.LABEL_SPEC]:
            jobs.append(("recreated", lambda b=box, s=current: _update(api, b, s)))
        else:
            counts["unchanged"] += 1
    jobs += [("removed", lambda s=s: _remove(s)) for s in there.values()]
    boxes._run_jobs(jobs, counts, console, "deploy up (swarm)")
    wait_running(config, [b.name for b in boxes_wanted], console)
    if counts["removed"] or counts["recreated"]:
        prune_volumes(config, keep={m["Source"] for b in boxes_wanted for m in b.task["ContainerSpec"]["Mounts"]
                                    if m["Type"] == "volume"})
    return counts


def _create(api: docker.APIClient, box: Wanted) -> None:
    try:
        api.create_service(box.task, name=box.name, labels=box.labels, mode={"Replicated": {"Replicas": 1}},
                           endpoint_spec=box.endpoint)
    except APIError as exc:
        raise boxes.DeployError(f"box {box.name} (swarm service): {exc.explanation or exc}") from None


def _update(api: docker.APIClient, box: Wanted, current) -> None:
    try:
        api.update_service(current.id, current.version, task_template=box.task, name=box.name, labels=box.labels,
                           mode={"Replicated": {"Replicas": 1}}, endpoint_spec=box.endpoint)
    except APIError as exc:
        raise boxes.DeployError(f"box {box.name} (swarm service update): {exc.explanation or exc}") from None


def _remove(service) -> None:
    try:
        service.remove()
    except NotFound:
        pass
    except APIError as exc:
        raise boxes.DeployError(f"box {service.name} (swarm service removal): {exc.explanation or exc}") from None


def placements(config: GameConfig, names: list[str], known: dict[str, Node] | None = None) -> dict[str, Placed]:
    """Where each named box's current task runs (its service's newest task meant to run)."""
    client = swarm_cluster.manager(config)
    known = known if known is not None else swarm_cluster.nodes(config)
    ids = {s.id: s.name for s in client.services.list(filters={"label": f"{boxes.LABEL_GAME}={config.game.name}"})}
    by_name: dict[str, list[dict]] = {}
    for task in client.api.tasks(filters={"label": f"{boxes.LABEL_GAME}={config.game.name}"}) if ids else []:
        if task.get("ServiceID") in ids:
            by_name.setdefault(ids[task["ServiceID"]], []).append(task)
    return {name: _placed(config, by_name.get(name, []), known) for name in names}


def placement(config: GameConfig, name: str, known: dict[str, Node] | None = None) -> Placed:
    """Where one box's current task runs."""
    return placements(config, [name], known)[name]


def _placed(config: GameConfig, tasks: list[dict], known: dict[str, Node]) -> Placed:
    if not tasks:
        return Placed(None, None, None, "missing", "no task")
    current = [t for t in tasks if t.get("DesiredState") == "running"] or tasks
    task = max(current, key=lambda t: t.get("CreatedAt", ""))
    status = task.get("Status") or {}
    address = None
    for attachment in task.get("NetworksAttachments") or []:
        if attachment["Network"]["Spec"]["Name"] == network.network_name(config):
            address = (attachment.get("Addresses") or [""])[0].split("/")[0] or None
    container = (status.get("ContainerStatus") or {}).get("ContainerID")
    return Placed(known.get(task.get("NodeID", "")), container, address, status.get("State", "unknown"),
                  status.get("Err") or status.get("Message") or "")


def wait_running(config: GameConfig, names: list[str], console: Console,
                 deadline: float | None = None) -> dict[str, Placed]:
    """Wait until every named box's task runs; DeployError naming the boxes Swarm did not run."""
    deadline = deadline or RUNNING_DEADLINE + 5 * len(names)
    known = swarm_cluster.nodes(config)
    end = time.monotonic() + deadline
    with console.status(f"waiting for {len(names)} box(es) to run"):
        while True:
            placed = placements(config, names, known)
            late = {name: p for name, p in placed.items() if p.state != "running"}
            if not late:
                return placed
            if time.monotonic() > end:
                raise boxes.DeployError("\n".join(
                    f"box {name}: task {p.state} after {deadline:g}s: {p.error} (no node fits? two boxes that publish "
                    "one port need two nodes: see `adrange deploy status` and deploy.swarm)"
                    for name, p in sorted(late.items())))
            time.sleep(1)


def _containers_gone(config: GameConfig, names: set[str] | None) -> None:
    """Wait until no container of the game's boxes (or of the `names` boxes) is left on any node."""
    end = time.monotonic() + GONE_DEADLINE
    for client in swarm_cluster.node_clients(config):
        while True:
            left = [c for c in client.containers.list(all=True, filters={"label": f"{boxes.LABEL_GAME}="
                                                                          f"{config.game.name}"})
                    if c.labels.get(boxes.LABEL_ROLE) == "box"
                    and (names is None or c.labels.get("com.docker.swarm.service.name") in names)]
            if not left:
                break
            if time.monotonic() > end:
                raise boxes.DeployError(f"containers {[c.name for c in left]} still there {GONE_DEADLINE:g}s after "
                                        "their services were removed")
            time.sleep(0.5)


def prune_volumes(config: GameConfig, keep: set[str] | None = None, boxes_only: set[str] | None = None) -> int:
    """Remove the game's /srv volumes on every node but those in `keep` (of the `boxes_only`
    boxes, when given); return how many. In-use volumes are left for the next run."""
    removed = 0
    for client in swarm_cluster.node_clients(config):
        for volume in client.volumes.list(filters={"label": f"{boxes.LABEL_GAME}={config.game.name}"}):
            box = (volume.attrs.get("Labels") or {}).get(disks.LABEL_BOX)
            if (keep and volume.name in keep) or (boxes_only is not None and box not in boxes_only):
                continue
            try:
                volume.remove(force=True)
                removed += 1
            except APIError:
                pass  # still mounted by a stopping container: the next up or down takes it
    return removed


def down(config: GameConfig, console: Console | None = None) -> Counter:
    """Remove every box service, its containers and volumes on every node, the overlay and the rules."""
    console = console or Console(stderr=True)
    counts: Counter = Counter()
    boxes._run_jobs([("removed", lambda s=s: _remove(s)) for s in existing(config).values()], counts, console,
                    "deploy down (swarm)")
    with console.status("waiting for the boxes' containers to go"):
        _containers_gone(config, None)
    prune_volumes(config)
    end = time.monotonic() + GONE_DEADLINE
    while True:  # the overlay stays busy on the manager for a moment after its last task
        try:
            if swarm_cluster.remove_network(config):
                counts["networks"] += 1
            break
        except APIError:
            if time.monotonic() > end:
                raise
            time.sleep(1)
    return counts


# -- single boxes --------------------------------------------------------------------
def _service(config: GameConfig, team_id: TeamID, service_id: ServiceID):
    team, service = config.team(team_id), config.service(service_id)
    name = service_name(config, team, service)
    try:
        return swarm_cluster.manager(config).services.get(name)
    except NotFound:
        raise boxes.DeployError(f"no box for team {team.name!r} service {service.name!r} in the swarm: "
                                "run `adrange deploy up`") from None


def find_box(config: GameConfig, team_id: TeamID, service_id: ServiceID):
    """The running container of one box, from its node's engine (DeployError if none runs)."""
    return _running(config, team_id, service_id)[1]


def _running(config: GameConfig, team_id: TeamID, service_id: ServiceID):
    """(node, running container) of one box, looked up through the manager."""
    service = _service(config, team_id, service_id)
    placed = placement(config, service.name)
    if placed.state != "running" or placed.node is None or not placed.container_id:
        raise boxes.DeployError(f"box {service.name}: task {placed.state} ({placed.error}): "
                                "see `adrange deploy status`")
    try:
        return placed.node, placed.node.client.containers.get(placed.container_id)
    except NotFound:
        raise boxes.DeployError(f"box {service.name}: its container left {placed.node.hostname} just now; "
                                "try again") from None


def restart(config: GameConfig, team_id: TeamID, service_id: ServiceID, console: Console | None = None) -> None:
    """A new task for the box (Swarm's forced update): /srv stays when it lands on the same node."""
    service = _service(config, team_id, service_id)
    before = placement(config, service.name).container_id
    spec_ = service.attrs["Spec"]
    task = dict(spec_["TaskTemplate"], ForceUpdate=spec_["TaskTemplate"].get("ForceUpdate", 0) + 1)
    swarm_cluster.manager(config).api.update_service(
        service.id, service.version, task_template=task, name=service.name, labels=spec_.get("Labels"),
        mode=spec_.get("Mode"), endpoint_spec=spec_.get("EndpointSpec"))
    _wait_new_task(config, service.name, before, console or Console(stderr=True))


def _wait_new_task(config: GameConfig, name: str, before: str | None, console: Console) -> None:
    end = time.monotonic() + RUNNING_DEADLINE
    while True:
        placed = wait_running(config, [name], console)[name]
        if placed.container_id and placed.container_id != before:
            return
        if time.monotonic() > end:
            raise boxes.DeployError(f"box {name}: no new task within {RUNNING_DEADLINE:g}s")
        time.sleep(0.5)


def reset(config: GameConfig, team_id: TeamID, service_id: ServiceID, console: Console | None = None) -> None:
    """Recreate one box from its image: service, container and /srv volume go, a new one starts."""
    console = console or Console(stderr=True)
    service = _service(config, team_id, service_id)
    name = service.name
    _remove(service)
    _containers_gone(config, {name})
    prune_volumes(config, boxes_only={name})
    team, svc = config.team(team_id), config.service(service_id)
    image_ids = swarm_cluster.build_images(config, console, build=False)
    _create(swarm_cluster.manager(config).api, _one(config, team, svc, image_ids[svc.name]))
    wait_running(config, [name], console)


def _one(config: GameConfig, team: Team, service: Service, image_id: str) -> Wanted:
    image_config = connect(config.deploy.swarm.build_engine).images.get(image_id).attrs["Config"]
    task, endpoint, labels = spec(config, team, service, image_id, image_config)
    return Wanted(team, service, service_name(config, team, service), task, endpoint, labels)


# -- status ----------------------------------------------------------------------------
def endpoint(config: GameConfig, team_id: TeamID, service_id: ServiceID) -> str:
    """The address a box's published ports answer on: its node's (DeployError if it does not run)."""
    team, service = config.team(team_id), config.service(service_id)
    placed = placement(config, service_name(config, team, service))
    if placed.state != "running" or placed.node is None:
        raise boxes.DeployError(f"box {service_name(config, team, service)}: task {placed.state} ({placed.error})")
    return placed.node.address


def status(config: GameConfig, probe_timeout: float = 0.5) -> list[boxes.BoxStatus]:
    """One row per wanted box: task state, overlay address, node:port published, health."""
    known = swarm_cluster.nodes(config)
    names = [service_name(config, t, s) for t in config.teams for s in images.hosted_services(config)]
    placed_all = placements(config, names, known)
    rows = []
    for team in config.teams:
        for service in images.hosted_services(config):
            name = service_name(config, team, service)
            placed = placed_all[name]
            host = placed.node.address if placed.node else "?"
            health = "-"
            if placed.state == "running" and service.ports:
                up_ports = [p for p in service.ports if boxes._answers(host, p, probe_timeout)]
                health = "ok" if len(up_ports) == len(service.ports) else "down"
            published = ", ".join(f"{host}:{p}" for p in service.ports)
            where = f" on {placed.node.hostname}" if placed.node else ""
            rows.append(boxes.BoxStatus(team.name, service.name, name, placed.state + where,
                                        placed.address or "-", published, health))
    return rows


# Where each box's container was last found running, by box name: (node's engine, container
# id). A flag write tries it first (two calls to that node's engine) and looks the box up
# through the manager (about 2 + nodes calls more) only when that container is gone or no
# longer running: Swarm never restarts a container in place, a restarted, moved or reset
# box is a new container.
_last_seen: dict[str, tuple[str, str]] = {}


def write_flag(config: GameConfig, team_id: TeamID, service_id: ServiceID, directory: str, tarball: bytes) -> bool:
    """Put a flag file's tarball into the box's running container, through its node's engine."""
    name = service_name(config, config.team(team_id), config.service(service_id))
    if (seen := _last_seen.get(name)) is not None:
        try:
            api = connect(seen[0]).api
            running = api.inspect_container(seen[1])["State"]["Running"]
        except (EngineError, DockerException, requests.RequestException):  # gone, or its engine is mute
            running = False  # look the box up again
        if running:
            return api.put_archive(seen[1], directory, tarball)
        del _last_seen[name]
    node, container = _running(config, team_id, service_id)
    _last_seen[name] = (node.engine, container.id)
    return container.put_archive(directory, tarball)


__all__ = ["SwarmError", "down", "endpoint", "find_box", "reset", "restart", "status", "up", "write_flag"]
