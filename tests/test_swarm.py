"""deploy.mode swarm on a real multi-host Swarm: three Docker engines in containers.

The module starts the cluster (tests/swarm_helpers.py: node engines from deploy/dind on a
network of their own, joined into one Swarm; the host engine never joins) and deploys
3 teams x the four sample challenges across it. Checkers run on the host and reach each
box at its node's address (host-mode published ports); a box on node 1 attacks a box on
node 3 over the overlay with the challenge's reference exploit. Teardown removes every
node, volume, network and image the module made.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from collections import Counter
from pathlib import Path

import certifi
import idna
import pytest
import requests
import urllib3
import yaml
from click.testing import CliRunner

from checker.lib.outcome import perform
from deploy import boxes, images, network, swarm, swarm_cluster
from deploy.cli import main
from deploy.engine import connect
from deploy.flagfile import write_flag
from deploy.redis_server import free_port
from scoreboard import access
from scoreboard.config import ConfigError, parse_config
from scoreboard.types import Status
from tests.challenge_helpers import CHALLENGES, challenge, new_flag
from tests.ssh_helpers import ssh
from tests.swarm_helpers import Cluster, wait_until

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parent.parent
SUBNET = "10.235.0.0/16"  # the game overlay; the cluster uses 10.231-10.234 (tests/swarm_helpers.py)


def swarm_game(name: str, engines: list[str], teams: int = 3, challenges=CHALLENGES, **deploy):
    data = {
        "game": {"name": name, "secret": "swarm-tests-secret-0123456789"},
        "teams": [{"name": f"team{i}", "id": i} for i in range(1, teams + 1)],
        "services": [{"challenge": str(ROOT / "challenges" / c)} if c in CHALLENGES else c for c in challenges],
        "deploy": {"mode": "swarm", "engines": engines, "box_subnet": SUBNET, "memory": "128m", **deploy},
    }
    return parse_config(data, f"<{name}>", ROOT)


@pytest.fixture(scope="module")
def cluster(docker_engine, base_image, session_tag):
    before = {image.id for image in docker_engine.images.list()}
    made = Cluster(session_tag).start()
    yield made
    made.close()
    for image in docker_engine.images.list():  # challenge images this module built (none when cached)
        if image.id not in before and any(t.startswith("adrange/") for t in image.tags):
            try:
                docker_engine.images.remove(image.id, force=False)
            except Exception:  # in use by another test's box: it is theirs now
                pass


@pytest.fixture(scope="module")
def game(cluster, session_tag):
    config = swarm_game(f"{session_tag}s", cluster.engines)
    boxes.up(config)
    yield config
    boxes.down(config)


def node_index(cluster: Cluster, node) -> int:
    return [n.engine for n in cluster.nodes].index(node.engine)


def where(config) -> dict[tuple[int, int], swarm.Placed]:
    names = {(t.id, s.id): swarm.service_name(config, t, s) for t in config.teams for s in config.services}
    placed = swarm.placements(config, list(names.values()))
    return {key: placed[name] for key, name in names.items()}


def run_in(container, command: list[str], user: str = "root", env: dict | None = None) -> tuple[int, str]:
    code, output = container.exec_run(command, user=user, environment=env or {})
    return code, output.decode(errors="replace")


def connects_from(container, host: str, port: int) -> bool:
    script = f"import socket; socket.create_connection(('{host}', {port}), timeout=2).close(); print('open')"
    code, output = run_in(container, ["python3", "-c", script])
    return code == 0 and "open" in output


def ok(ch, action: str, host: str, *args):
    """The native checker's outcome of `action` when it is OK, else None (for polling)."""
    outcome = perform(ch.checker_class(), action, host, *args)
    return outcome if outcome.status == Status.OK else None


def library_tarball() -> bytes:
    """The exploits' one dependency outside the standard library (requests and its own), for a box."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for module in (requests, urllib3, idna, certifi):
            folder = Path(module.__file__).parent
            tar.add(folder, arcname=f"lib/{folder.name}", filter=lambda info: None
                    if "__pycache__" in info.name else info)
        for name in CHALLENGES:
            tar.add(ROOT / "challenges" / name / "exploit.py", arcname=f"exploits/{name}.py")
    return buffer.getvalue()


# -- behaviour -----------------------------------------------------------------------
def test_boxes_are_spread_over_every_node_and_images_were_copied_there(cluster, game):
    placed = where(game)
    assert all(p.state == "running" for p in placed.values()), placed
    per_node = Counter(node_index(cluster, p.node) for p in placed.values())
    assert sorted(per_node) == [0, 1, 2] and sum(per_node.values()) == 12
    for service in game.services:  # one copy of a service per node: they publish the same port
        assert len({placed[(t.id, service.id)].node.id for t in game.teams}) == 3
    builder = swarm_cluster.connect(game.deploy.swarm.build_engine)
    wanted = {images.image_name(game, s, builder) for s in game.services} | {images.BASE_IMAGE}
    for index in range(3):  # copied by save/load: the nodes have no registry to pull from
        assert wanted <= set(images.adrange_images(cluster.client(index)))


def test_second_up_changes_nothing(game):
    assert boxes.up(game) == Counter(unchanged=12)


def test_boxes_are_hardened_like_hosted_ones(game):
    container = boxes.find_box(game, 1, 1)
    host_config = container.attrs["HostConfig"]
    assert host_config["CapDrop"] == ["ALL"] and sorted(host_config["CapAdd"]) == sorted(boxes.BOX_CAPS)
    assert host_config["PidsLimit"] == game.deploy.pids and host_config["Memory"] == 128 << 20
    assert host_config["NanoCpus"] == int(game.deploy.cpus * 1e9) and host_config["Init"] is True
    assert {m["Target"] for m in host_config["Mounts"]} >= {"/srv", "/tmp", "/dev/shm", "/home/team"}
    code, out = run_in(container, ["sh", "-c", "for p in $(pgrep -u svc); do grep -E '^(CapEff|NoNewPrivs)' "
                                               "/proc/$p/status; done"])
    assert code == 0 and "CapEff:\t0000000000000000" in out and "NoNewPrivs:\t1" in out
    assert "NoNewPrivs:\t0" not in out


def test_a_box_reaches_neither_its_node_nor_the_outside(cluster, game):
    container = boxes.find_box(game, 2, 1)
    other = boxes.find_box(game, 3, 2)
    placed = where(game)[(3, 2)]
    assert connects_from(container, swarm.service_name(game, game.team(3), game.service(2)), 8002)
    assert placed.address and connects_from(container, placed.address, 8002)  # the overlay itself
    for node in cluster.nodes:  # not a node's engine API, not the host behind the cluster network
        assert not connects_from(container, node.address, 2375)
    assert not connects_from(container, f"{cluster.nodes[0].address.rsplit('.', 1)[0]}.1", 22)
    code, _ = run_in(other, ["getent", "hosts", "example.com"])
    assert code != 0


def test_checkers_on_the_host_reach_every_box_at_its_node(game):
    for (team_id, service_id), placed in where(game).items():
        service = game.service(service_id)
        ch = challenge(service.name)
        host = swarm.endpoint(game, team_id, service_id)
        assert host == placed.node.address
        flag = new_flag()
        if ch.file_mode:
            write_flag(game, team_id, service_id, flag)
        wait_until(f"{service.name} of team {team_id} at {host}", lambda ch=ch, host=host: ok(ch, "check", host),
                   deadline=60)
        put = perform(ch.checker_class(), "put", host, "", flag, 1)
        assert put.status == Status.OK, put
        assert perform(ch.checker_class(), "get", host, put.flag_id or "", flag, 1).status == Status.OK


def test_a_box_on_node_1_exploits_a_box_on_node_3_over_the_overlay(cluster, game):
    placed = where(game)
    stolen = {}
    for service in game.services:
        ch = challenge(service.name)
        attacker = next(t for t in game.teams if node_index(cluster, placed[(t.id, service.id)].node) == 0)
        victim = next(t for t in game.teams if node_index(cluster, placed[(t.id, service.id)].node) == 2)
        flag = new_flag()
        if ch.file_mode:
            write_flag(game, victim.id, service.id, flag)
        host = swarm.endpoint(game, victim.id, service.id)
        put = wait_until(f"put into {service.name} of team {victim.id}",
                         lambda ch=ch, host=host, flag=flag: ok(ch, "put", host, "", flag, 1), deadline=60)
        box = boxes.find_box(game, attacker.id, service.id)
        assert box.put_archive("/opt", library_tarball())  # not /tmp: the archive API cannot write into a tmpfs
        target = swarm.service_name(game, victim, service)  # the victim's name on the overlay
        attack = json.dumps([put.public_flag_id] if put.public_flag_id is not None else [])
        code, out = run_in(box, ["python3", f"/opt/exploits/{service.name}.py", target, "--attack-data", attack],
                           user="team", env={"PYTHONPATH": "/opt/lib"})
        assert code == 0, out
        stolen[service.name] = flag in out.split()
    assert stolen == dict.fromkeys(CHALLENGES, True)


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the ssh client (openssh-client)")
def test_team_logs_in_by_ssh_at_its_boxs_node(game, tmp_path):
    service = game.service(1)
    host = swarm.endpoint(game, 2, 1)
    password = access.team_password(game, game.team(2))
    result = wait_until("sshd of team 2", lambda: (lambda r: r if r.returncode == 0 else None)(
        ssh(host, access.ssh_port(service), password, "id -un; ls /srv", tmp_path)), deadline=60)
    assert result.stdout.startswith("team\n") and service.name in result.stdout
    wrong = ssh(host, access.ssh_port(service), access.team_password(game, game.team(1)), "id", tmp_path)
    assert wrong.returncode == 255


def test_restart_keeps_srv_and_reset_recreates_the_box_from_its_image(game):
    box = boxes.find_box(game, 3, 1)
    assert run_in(box, ["sh", "-c", "echo patched > /srv/marker"], user="team")[0] == 0
    boxes.restart(game, 3, 1)
    restarted = boxes.find_box(game, 3, 1)
    assert restarted.id != box.id
    same_node = restarted.client.api.base_url == box.client.api.base_url
    if same_node:  # /srv is the node's volume: it stays where the box stays
        assert run_in(restarted, ["cat", "/srv/marker"]) == (0, "patched\n")
    boxes.reset(game, 3, 1)
    fresh = boxes.find_box(game, 3, 1)
    assert fresh.id != restarted.id
    assert run_in(fresh, ["test", "-e", "/srv/marker"])[0] != 0
    assert boxes.up(game) == Counter(unchanged=12)


def test_a_flag_write_reuses_the_boxs_last_container_and_follows_a_restart(game):
    """Once a box was found, a flag write costs two calls to its node's engine (is the
    container running, put the file), not a lookup through the manager and every node;
    after a restart, or when the node it was on does not answer, the next write finds the
    box anew, and the flag is in it."""
    service = next(s for s in game.services if challenge(s.name).file_mode)
    write_flag(game, 2, service.id, new_flag())
    calls: list[str] = []

    def seen(response, *args, **kwargs):
        calls.append(f"{response.request.method} {response.request.path_url}")

    engines = [connect(url).api for url in dict.fromkeys(game.deploy.engines)]
    for api in engines:
        api.hooks["response"].append(seen)
    try:
        flag = new_flag()
        write_flag(game, 2, service.id, flag)
    finally:
        for api in engines:
            api.hooks["response"].remove(seen)
    assert len(calls) == 2, calls
    assert run_in(boxes.find_box(game, 2, service.id), ["cat", service.flag_file]) == (0, flag + "\n")
    boxes.restart(game, 2, service.id)
    flag = new_flag()
    write_flag(game, 2, service.id, flag)
    assert run_in(boxes.find_box(game, 2, service.id), ["cat", service.flag_file]) == (0, flag + "\n")
    name = swarm.service_name(game, game.team(2), service)  # as if its node's engine went mute
    swarm._last_seen[name] = (f"tcp://127.0.0.1:{free_port()}", swarm._last_seen[name][1])
    flag = new_flag()
    write_flag(game, 2, service.id, flag)
    assert run_in(boxes.find_box(game, 2, service.id), ["cat", service.flag_file]) == (0, flag + "\n")


def test_status_names_each_boxs_node_and_health(game):
    rows = boxes.status(game)
    assert len(rows) == 12
    assert all(r.state.startswith("running on node") for r in rows), rows
    wait_until("every box healthy", lambda: all(r.health == "ok" for r in boxes.status(game)), deadline=60)


def test_deploy_commands_work_in_swarm_mode(game, tmp_path):
    game_file = tmp_path / "game.yml"
    data = game.model_dump(mode="json", by_alias=True, exclude_defaults=True, exclude={"base_dir"})
    game_file.write_text(yaml.safe_dump(data))
    runner = CliRunner()
    status = runner.invoke(main, ["deploy", "status", "-c", str(game_file)], terminal_width=200)
    assert status.exit_code == 0, status.output
    assert status.output.count("running on node") == 12
    valid = runner.invoke(main, ["validate", str(game_file)])
    assert valid.exit_code == 0 and "3 teams" in valid.output, valid.output
    built = runner.invoke(main, ["images", "build", "-c", str(game_file)])
    assert built.exit_code == 0 and "4 challenge image(s) on every swarm node" in built.output, built.output


def test_constraints_by_node_label_place_the_boxes(cluster, session_tag):
    cluster.label(2, **{"adrange.rack": "c"})
    pong = {"name": "pong", "checker": {"protocol": "cli", "path": "checker.py"}, "ports": [8000],
            "challenge": str(ROOT / "tests" / "deploy_challenge"), "flag_mode": "file"}
    config = swarm_game(f"{session_tag}l", cluster.engines, teams=2, challenges=[pong], ssh=False,
                        box_subnet="10.236.0.0/16",
                        swarm={"teams": {"team1": ["node.labels.adrange.rack==c"], "2": ["node.hostname!=node3"]},
                               "services": {"pong": ["node.role==worker"]}})  # node 1 is the manager
    try:
        assert boxes.up(config) == Counter(created=2)
        placed = where(config)
        assert node_index(cluster, placed[(1, 1)].node) == 2 and node_index(cluster, placed[(2, 1)].node) == 1
    finally:
        assert boxes.down(config) == Counter(removed=2, networks=1)


def test_bad_placement_keys_are_refused_with_their_key():
    with pytest.raises(ConfigError, match=r"deploy.swarm.constraints: 'rack=a' is not a Swarm constraint"):
        swarm_game("bad", ["tcp://127.0.0.1:1"], swarm={"constraints": ["rack=a"]})
    with pytest.raises(ConfigError, match=r"deploy.swarm.teams: 'nobody' is no team of the game"):
        swarm_game("bad", ["tcp://127.0.0.1:1"], swarm={"teams": {"nobody": ["node.role==worker"]}})


def test_down_leaves_nothing_on_any_node(cluster, game):
    assert boxes.down(game) == Counter(removed=12, networks=1)
    assert swarm_cluster.manager(game).services.list() == []
    label = f"adrange.game={game.game.name}"
    for index, node in enumerate(cluster.nodes):
        client = cluster.client(index)
        assert client.containers.list(all=True, filters={"label": label}) == []
        assert client.volumes.list(filters={"label": label}) == []
        assert client.networks.list(names=[network.network_name(game)]) == []
        rules = subprocess.run(["docker", "exec", node.name, "iptables", "-S"], capture_output=True, text=True)
        assert rules.returncode == 0 and f"adrange-{game.game.name}" not in rules.stdout
    assert boxes.down(game) == Counter()  # the module's teardown downs again: nothing to do
