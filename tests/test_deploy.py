"""Hosted targets against a real Docker engine: 2 teams x the test challenge (tests/deploy_challenge).

The module brings one game up; tests that change its boxes put them back as they were.
Traffic goes only to loopback team addresses and the game's own bridge network.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from deploy import boxes, images, network
from deploy.engine import connect
from deploy.flagfile import write_flag
from scoreboard import access
from tests.ssh_helpers import ssh

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CHALLENGES = sorted(p.parent.parent for p in ROOT.glob("challenges/*/service/Dockerfile"))


# -- helpers -------------------------------------------------------------------------
def first_line(host: str, port: int, deadline: float = 20) -> bytes:
    """The first line a TCP service sends, retrying while the box starts."""
    end = time.monotonic() + deadline
    while True:
        try:
            with socket.create_connection((host, port), timeout=2) as conn:
                line = conn.makefile("rb").readline()
                if line:
                    return line
        except OSError:
            pass
        if time.monotonic() > end:
            raise AssertionError(f"{host}:{port} sent nothing within {deadline}s")
        time.sleep(0.2)


def box_run(config, team_id: int, command: str, user: str = "svc") -> tuple[int, str]:
    """Run a shell command inside a team's box (service 1) and return (exit code, output)."""
    container = boxes.find_box(config, team_id, 1)
    code, output = container.exec_run(["/bin/sh", "-c", command], user=user)
    return code, output.decode()


def can_connect_from_box(config, team_id: int, host: str, port: int) -> bool:
    script = (f"import socket; socket.create_connection(('{host}', {port}), timeout=2).close(); "
              "print('open')")
    code, output = box_run(config, team_id, f'python3 -c "{script}"')
    return code == 0 and "open" in output


class Listener:
    """A host TCP port that accepts and closes connections, standing in for Redis or the web app."""

    def __init__(self, host: str) -> None:
        self.sock = socket.create_server((host, 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                self.sock.accept()[0].close()
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()


# -- fixtures --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def game(make_hosted_game, base_image, session_tag):
    config = make_hosted_game(f"{session_tag}m")
    boxes.up(config)
    yield config
    boxes.down(config)


@pytest.fixture(scope="module")
def team_a(game):
    return game.teams[0]


@pytest.fixture(scope="module")
def team_b(game):
    return game.teams[1]


# -- behaviour ---------------------------------------------------------------------------
def test_service_answers_on_each_team_address(game):
    for team in game.teams:
        assert team.address == f"127.0.{team.id}.1"
        assert first_line(team.address, 8000) == b"pong v1\n"


def test_status_shows_every_box_running_and_healthy(game):
    rows = boxes.status(game)
    assert [(r.state, r.health) for r in rows] == [("running", "ok")] * 2
    assert [r.address for r in rows] == ["10.213.201.1", "10.213.202.1"]


def test_second_up_changes_nothing(game):
    ids = {c.name: c.id for c in boxes.existing_boxes(game).values()}
    assert boxes.up(game) == Counter(unchanged=2)
    assert {c.name: c.id for c in boxes.existing_boxes(game).values()} == ids


def test_up_recreates_boxes_whose_settings_changed(game, make_hosted_game):
    changed = make_hosted_game(game.game.name, pids=100)
    assert boxes.up(changed) == Counter(recreated=2)
    assert boxes.find_box(game, 201, 1).attrs["HostConfig"]["PidsLimit"] == 100
    assert boxes.up(game) == Counter(recreated=2)
    assert first_line("127.0.201.1", 8000) == b"pong v1\n"


def test_box_runs_with_limits_no_capabilities_for_the_service_and_no_new_privileges(game):
    host_config = boxes.find_box(game, 201, 1).attrs["HostConfig"]
    assert host_config["NanoCpus"] == int(game.deploy.cpus * 1e9)
    assert host_config["Memory"] == 256 * 1024 * 1024 and host_config["PidsLimit"] == game.deploy.pids
    assert host_config["CapDrop"] == ["ALL"] and "no-new-privileges:true" in host_config["SecurityOpt"]
    code, status = box_run(game, 201, "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status")
    assert code == 0 and "CapEff:\t0000000000000000" in status and "NoNewPrivs:\t1" in status


def test_box_has_no_docker_socket(game):
    code, _ = box_run(game, 201, "ls /var/run/docker.sock /run/docker.sock", user="root")
    assert code != 0


def test_box_cannot_reach_host_ports_through_the_gateway(game):
    loopback_only, all_interfaces = Listener("127.0.0.1"), Listener("0.0.0.0")
    try:
        gw = network.gateway(game)
        socket.create_connection((gw, all_interfaces.port), timeout=2).close()  # the host itself can
        assert not can_connect_from_box(game, 201, gw, loopback_only.port)
        assert not can_connect_from_box(game, 201, gw, all_interfaces.port)
        assert not can_connect_from_box(game, 201, "127.0.0.1", loopback_only.port)
    finally:
        loopback_only.close()
        all_interfaces.close()


def test_teams_boxes_reach_each_other_on_the_game_network(game, team_b):
    other = network.box_address(game, team_b, game.service(1))
    assert can_connect_from_box(game, 201, other, 8000)


def test_file_flag_is_readable_by_the_service_user_and_not_replaceable(game):
    write_flag(game, 201, 1, "FLAGTESTONE=")
    write_flag(game, 201, 1, "FLAGTESTTWO=")
    assert box_run(game, 201, "cat /flag") == (0, "FLAGTESTTWO=\n")
    assert box_run(game, 201, "echo stolen > /flag")[0] != 0
    assert box_run(game, 202, "cat /flag")[0] != 0  # the other box got no flag


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the ssh client (openssh-client)")
def test_team_logs_in_by_ssh_edits_the_code_and_restarts_the_service(game, team_a, tmp_path):
    (login,) = access.team_access(game, team_a.id)
    assert first_line(login["host"], login["port"]).startswith(b"SSH-2.0-")
    result = ssh(login["host"], login["port"], login["password"],
                 "id -un; echo v2 > /srv/pong/version.txt && restart-service", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("team\n")
    deadline = time.monotonic() + 15
    while first_line(team_a.address, 8000) != b"pong v2\n":
        assert time.monotonic() < deadline, "the service did not come back with the edited code"
        time.sleep(0.3)


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the ssh client (openssh-client)")
def test_a_team_cannot_log_into_another_teams_box(game, team_a, team_b, tmp_path):
    (theirs,) = access.team_access(game, team_b.id)
    mine = access.team_password(game, team_a)
    result = ssh(theirs["host"], theirs["port"], mine, "id", tmp_path)
    assert result.returncode == 255 and "Permission denied" in result.stderr


def test_reset_recreates_the_box_from_its_image(game):
    before = boxes.find_box(game, 202, 1).id
    assert box_run(game, 202, "echo backdoor > /srv/pong/extra && echo hacked > /srv/pong/version.txt",
                   user="team")[0] == 0  # the team owns its code (the service user may not write it)
    boxes.reset(game, 202, 1)
    assert boxes.find_box(game, 202, 1).id != before
    assert first_line("127.0.202.1", 8000) == b"pong v1\n"
    assert box_run(game, 202, "test -e /srv/pong/extra")[0] != 0
    assert boxes.up(game) == Counter(unchanged=2)


def test_challenge_images_are_rebuilt_only_when_their_folder_changes(game, make_hosted_game, tmp_path):
    client = connect(game.deploy.engines[0])
    assert images.build_challenges(game) == {"built": 0, "cached": 1}
    copy = tmp_path / "pong"
    shutil.copytree(ROOT / "tests" / "deploy_challenge", copy)
    same = make_hosted_game("copy", challenge=copy)
    service = same.service(1)
    assert images.image_name(same, service, client).split(":")[1] == \
        images.image_name(game, game.service(1), client).split(":")[1]
    (copy / "service" / "version.txt").write_text("v3\n")
    assert images.image_name(same, service, client) != images.image_name(game, game.service(1), client)


def test_down_leaves_no_container_network_or_rule_behind(make_hosted_game, base_image, session_tag):
    config = make_hosted_game(f"{session_tag}d", first_team=211, subnet="10.214.0.0/16")
    assert boxes.up(config) == Counter(created=2)
    assert boxes.down(config) == Counter(removed=2, networks=1)
    client = connect(config.deploy.engines[0])
    assert client.containers.list(all=True, filters={"label": f"adrange.game={config.game.name}"}) == []
    assert client.networks.list(names=[network.network_name(config)]) == []
    if shutil.which("iptables"):
        rules = subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout
        assert network.bridge_name(config) not in rules
    assert boxes.down(config) == Counter()


@pytest.mark.parametrize("challenge", SAMPLE_CHALLENGES or [None], ids=lambda p: p.name if p else "none")
def test_sample_challenge_deploys_and_answers(challenge, make_hosted_game, base_image, session_tag):
    if challenge is None:
        pytest.skip("no challenges/*/service/Dockerfile yet")
    probe = make_hosted_game(f"{session_tag}c", teams=1, first_team=221, subnet="10.215.0.0/16",
                             challenge=challenge)
    images.build_challenges(probe)
    client = connect(probe.deploy.engines[0])
    exposed = client.images.get(images.image_name(probe, probe.service(1), client)).attrs["Config"]
    ports = sorted(int(p.split("/")[0]) for p in exposed.get("ExposedPorts") or {} if p.endswith("/tcp"))
    assert ports, f"{challenge.name}: the Dockerfile EXPOSEs no TCP port"
    config = probe.model_copy(deep=True)
    config.services[0].ports = ports
    try:
        boxes.up(config)
        deadline = time.monotonic() + 30
        while not all(boxes._answers("127.0.221.1", p, 1) for p in ports):
            assert time.monotonic() < deadline, f"{challenge.name}: ports {ports} do not answer"
            time.sleep(0.5)
    finally:
        boxes.down(config)


def test_a_failing_build_names_the_image_and_shows_the_log(make_hosted_game, base_image, tmp_path):
    broken = tmp_path / "broken" / "service"
    broken.mkdir(parents=True)
    (broken / "Dockerfile").write_text("ARG BASE\nFROM ${BASE}\nRUN echo about to fail && false\n")
    config = make_hosted_game("broken", teams=1, challenge=broken.parent)
    with pytest.raises(images.ImageError, match=r"building adrange/broken:\w+ .* failed") as failure:
        images.build_challenges(config)
    assert "about to fail" in str(failure.value)


def test_images_save_and_load_move_every_adrange_image(game, tmp_path):
    client = connect(game.deploy.engines[0])
    tarball = tmp_path / "images.tar"
    tags = images.save_images(client, tarball)
    assert images.BASE_IMAGE in tags and images.image_name(game, game.service(1), client) in tags
    assert images.load_images([client], tarball) == 1


def test_up_with_a_port_taken_meanwhile_names_the_box_and_what_to_do(make_hosted_game, base_image, session_tag):
    config = make_hosted_game(f"{session_tag}p", teams=1, first_team=231, subnet="10.216.0.0/16")
    boxes.up(config)
    try:
        (container,) = boxes.existing_boxes(config).values()
        container.stop(timeout=1)
        taken = socket.create_server(("127.0.231.1", 8000))  # a host program took the box's port
        with taken, pytest.raises(boxes.DeployError, match=r"box \S+ on .*8000.*ss -ltnp"):
            boxes.up(config)
        assert boxes.up(config) == Counter(started=1)
    finally:
        boxes.down(config)
