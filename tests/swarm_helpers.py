"""A simulated multi-host Swarm: Docker engines in containers (deploy/dind), one Swarm.

`Cluster` builds the node image from the project's base image (deploy/dind/Dockerfile,
Debian's docker.io from apt inside the build), starts N privileged node containers on a
bridge network of its own (internal: no node reaches beyond it), each with its engine's
data on a volume of its own, makes node 1 the manager and joins the others. `close`
removes everything it made (containers, their volumes, the network, the node image) and
leaves the host engine as it found it: the host engine never joins the Swarm.

Also used by tests/bench/bench_deploy.py.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker
from docker.errors import APIError, DockerException, NotFound

from deploy import images

ROOT = Path(__file__).resolve().parent.parent
DIND = ROOT / "deploy" / "dind"
LABEL = "adrange.swarm-test"
ENGINE_PORT = 2375
# `--privileged` asks for every capability, and fails where the host engine itself lacks one
# (here: SYS_RESOURCE); this is privileged less that one: every other capability, no
# seccomp/AppArmor profile, /proc and /sys unmasked (the node remounts /sys and its
# cgroups read-write, deploy/dind/adrange-node), every device allowed.
NODE_PRIVILEGES = {
    "cap_add": ["ALL"], "cap_drop": ["SYS_RESOURCE"], "device_cgroup_rules": ["a *:* rwm"],
    "security_opt": ["seccomp=unconfined", "apparmor=unconfined", "label=disable"],
}


def node_image_tag() -> str:
    """``adrange-swarm-node:<hash of deploy/dind>`` (not under adrange/: `images save` skips it)."""
    digest = hashlib.sha256()
    for path in sorted(DIND.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    return f"adrange-swarm-node:{digest.hexdigest()[:12]}"


def wait_until(what: str, probe, deadline: float = 120, every: float = 0.5):
    """Poll `probe` until it returns something true; AssertionError naming `what` after `deadline` s."""
    end = time.monotonic() + deadline
    while True:
        try:
            value = probe()
        except (DockerException, OSError):
            value = None
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not within {deadline:g}s")
        time.sleep(every)


@dataclass
class Node:
    """One node container: its name, its address on the cluster network, its engine URL."""

    name: str
    address: str
    container_id: str

    @property
    def engine(self) -> str:
        return f"tcp://{self.address}:{ENGINE_PORT}"


@dataclass
class Cluster:
    """N Docker engines in containers, joined into one Swarm (node 1 the manager)."""

    tag: str
    size: int = 3
    subnet_index: int = 231  # the cluster network is 10.<index>.0.0/24, the nodes' own pools above it
    host: docker.DockerClient = field(default_factory=lambda: docker.from_env(timeout=300))
    nodes: list[Node] = field(default_factory=list)
    made_image: bool = False

    @property
    def network(self) -> str:
        return f"adrange-swarm-{self.tag}"

    @property
    def engines(self) -> list[str]:
        return [node.engine for node in self.nodes]

    def start(self) -> Cluster:
        """Build the node image (if missing), start the nodes, form the Swarm."""
        try:
            self._image()
            self.host.networks.create(
                self.network, driver="bridge", internal=True, labels={LABEL: self.tag},
                ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
                    subnet=f"10.{self.subnet_index}.0.0/24", gateway=f"10.{self.subnet_index}.0.1")]))
            for index in range(1, self.size + 1):
                self._start_node(index)
            for node in self.nodes:
                wait_until(f"engine of {node.name}", lambda node=node: docker.DockerClient(
                    base_url=node.engine, timeout=10).ping(), deadline=90)
            self._form_swarm()
        except BaseException:
            self.close()
            raise
        return self

    def _image(self) -> None:
        tag = node_image_tag()
        if images.has_image(self.host, tag):
            return
        images.build_base([self.host])
        self.host.images.build(path=str(DIND), tag=tag, buildargs={"BASE": images.BASE_IMAGE}, rm=True,
                               forcerm=True, labels={LABEL: self.tag})
        self.made_image = True

    def _start_node(self, index: int) -> None:
        name = f"{self.network}-n{index}"
        address = f"10.{self.subnet_index}.0.{10 + index}"
        pool = f"10.{self.subnet_index + 1}.{index * 16}.0/20"  # the node's bridges and docker_gwbridge
        volume = self.host.volumes.create(f"{name}-data", labels={LABEL: self.tag})
        api = self.host.api
        host_config = api.create_host_config(binds={volume.name: {"bind": "/var/lib/docker", "mode": "rw"}},
                                             **NODE_PRIVILEGES)
        host_config.update(MaskedPaths=[], ReadonlyPaths=[])  # the API's `--security-opt systempaths=unconfined`
        created = api.create_container(
            node_image_tag(), name=name, hostname=f"node{index}", detach=True, labels={LABEL: self.tag},
            environment={"ADRANGE_NODE_BIP": f"10.{self.subnet_index + 2}.{index}.1/24",
                         "ADRANGE_NODE_POOL": pool},
            host_config=host_config,
            networking_config=api.create_networking_config(
                {self.network: api.create_endpoint_config(ipv4_address=address)}))
        api.start(created["Id"])
        self.nodes.append(Node(name, address, created["Id"]))

    def _form_swarm(self) -> None:
        manager = self.client(0)
        first = self.nodes[0].address
        manager.swarm.init(advertise_addr=first, listen_addr=f"{first}:2377")
        token = manager.swarm.attrs["JoinTokens"]["Worker"]
        for index, node in enumerate(self.nodes[1:], start=1):
            self.client(index).swarm.join(remote_addrs=[f"{first}:2377"], join_token=token,
                                          advertise_addr=node.address, listen_addr=f"{node.address}:2377")
        wait_until("every node ready in the swarm", lambda: len(
            [n for n in manager.nodes.list() if n.attrs["Status"]["State"] == "ready"]) == self.size)

    def client(self, index: int) -> docker.DockerClient:
        """A client for node `index` (0-based)."""
        return docker.DockerClient(base_url=self.nodes[index].engine, timeout=120)

    def label(self, index: int, **labels: str) -> None:
        """Set node labels on node `index` (through the manager)."""
        manager = self.client(0)
        node_id = self.client(index).info()["Swarm"]["NodeID"]
        node = manager.nodes.get(node_id)
        spec = node.attrs["Spec"]
        spec["Labels"] = {**spec.get("Labels", {}), **labels}
        node.update(spec)

    def close(self) -> None:
        """Remove the nodes, their volumes, the network and the node image if this cluster built it."""
        for container in self.host.containers.list(all=True, filters={"label": f"{LABEL}={self.tag}"}):
            try:
                container.remove(force=True, v=True)
            except NotFound:
                pass
        for volume in self.host.volumes.list(filters={"label": f"{LABEL}={self.tag}"}):
            try:
                volume.remove(force=True)
            except NotFound:
                pass
        for network in self.host.networks.list(names=[self.network]):
            network.remove()
        if self.made_image:
            try:
                self.host.images.remove(node_image_tag(), force=True)
            except (NotFound, APIError):
                pass
        self.nodes = []
