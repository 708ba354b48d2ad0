"""Deploy logic without Docker: address scheme, engine spread, credentials, flag tarball, CLI."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from deploy import commands, flagfile, network
from deploy.boxes import box_name, resolve_ids
from deploy.engine import engine_url
from scoreboard import access
from scoreboard.config import parse_config

ROOT = Path(__file__).resolve().parent.parent


def game(**deploy):
    return parse_config({
        "game": {"name": "unit", "secret": "unit-secret-0123456789"},
        "teams": [{"name": "NOP", "nop": True}, {"name": "Alpha"}, {"name": "Beta"}],
        "services": [
            {"name": "notes", "checker": {"protocol": "cli", "path": "c.py"}, "ports": [8000], "challenge": "x"},
            {"name": "shop", "checker": {"protocol": "cli", "path": "c.py"}, "ports": [9000], "challenge": "y"},
        ],
        "deploy": {"mode": "hosted", **deploy},
    })


def test_box_addresses_follow_team_and_service_ids():
    config = game()
    alpha, shop = config.team(2), config.service(2)
    assert network.box_address(config, alpha, shop) == "10.77.2.2"
    assert network.gateway(config) == "10.77.0.1"


def test_box_address_outside_a_small_subnet_is_a_clear_error():
    config = game(box_subnet="10.77.0.0/24")
    with pytest.raises(network.NetworkError, match="larger subnet"):
        network.box_address(config, config.team(2), config.service(1))


def test_bridge_name_fits_a_linux_interface_name():
    assert len(network.bridge_name(game())) <= 15


def test_teams_spread_round_robin_over_engines():
    config = game(engines=["tcp://e0:2375", "tcp://e1:2375"])
    assert [engine_url(config, t) for t in config.teams] == ["tcp://e0:2375", "tcp://e1:2375", "tcp://e0:2375"]


def test_team_access_lists_one_ssh_login_per_service_on_the_team_address():
    config = game()
    rows = access.team_access(config, 2)
    assert [(r["service"], r["host"], r["port"], r["user"]) for r in rows] == [
        ("notes", "127.0.2.1", 2201, "team"), ("shop", "127.0.2.1", 2202, "team")]
    assert rows[0]["password"] == access.team_password(config, config.team(2))


def test_ssh_passwords_are_stable_and_differ_between_teams():
    config = game()
    one, two = access.team_password(config, config.team(2)), access.team_password(config, config.team(3))
    assert one != two and len(one) == 20
    assert one == access.team_password(game(), game().team(2))


def test_external_mode_has_no_team_access():
    config = game(mode="external")
    assert access.team_access(config, 2) == []


def test_flag_tarball_holds_one_read_only_root_file():
    with tarfile.open(fileobj=io.BytesIO(flagfile.flag_tarball("/srv/notes/flag.txt", "FLAG1="))) as tar:
        (member,) = tar.getmembers()
        assert (member.name, member.mode, member.uid) == ("flag.txt", 0o444, 0)
        assert tar.extractfile(member).read() == b"FLAG1=\n"


def test_box_names_and_cli_words():
    config = game()
    assert box_name(config, config.team(2), config.service(1)) == "adrange-unit-t2-notes"
    assert resolve_ids(config, "Alpha", "2") == (2, 2)


def test_deploy_up_in_external_mode_says_nothing_is_deployed(tmp_path):
    path = tmp_path / "game.yml"
    path.write_text("game: {name: ext, secret: ext-secret-0123456789}\nteams: [{name: A}]\n"
                    "services: [{name: s, checker: {protocol: cli, path: c}}]\n")
    result = CliRunner().invoke(commands.deploy_group, ["up", "-c", str(path)])
    assert result.exit_code == 0 and "external" in result.output


def test_unknown_engine_is_a_clear_cli_error(tmp_path):
    result = CliRunner().invoke(commands.images_group, ["save", str(tmp_path / "x.tar"),
                                                         "--engine", "unix:///nonexistent/docker.sock"])
    assert result.exit_code == 1 and "does not answer" in result.output


def test_ensure_docker_clears_pid_files_whose_pid_is_dead_or_another_program(tmp_path):
    """A killed dockerd's containerd.pid naming a pid that now belongs to another program kept
    dockerd from starting (it took the dead containerd for running)."""
    script = (ROOT / "deploy" / "ensure_docker.sh").read_text()
    function = script[script.index("clear_stale_pid() {"):]
    function = function[:function.index("\n}\n") + 3]
    other = subprocess.Popen(["sleep", "60"])
    try:
        files = {name: tmp_path / f"{name}.pid" for name in ("own", "other", "dead", "empty")}
        files["own"].write_text(f"{other.pid}\n")  # the pid of a live program of that name: kept
        files["other"].write_text(f"{os.getpid()}\n")  # a live program of another name: stale
        files["dead"].write_text("4194304\n")  # above pid_max: no such process
        files["empty"].write_text("")
        checks = "; ".join(f"clear_stale_pid {path} sleep" for path in files.values())
        subprocess.run(["bash", "-c", f"SUDO=; {function}\n{checks}"], check=True)
        assert [name for name, path in files.items() if path.exists()] == ["own"]
    finally:
        other.kill()
        other.wait()
