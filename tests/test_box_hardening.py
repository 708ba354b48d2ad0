"""Hostile players inside hosted boxes, against real boxes deployed by `adrange deploy`.

The attacker runs code as the service user the way a real exploit does: through pinger's
command injection (``localhost|CMD`` in the lookup tool), so CMD runs with exactly the
service's credentials (``setpriv`` from the box supervisor). Through it the attacker must
not be able to change the team's code, fill the host's disk, reach another box's sshd or
resolve a name outside the game (nor send a query for one out of the box); the team still
logs in over SSH at its published address and patches. The DNS test watches every host
interface with a packet socket (root).

Two teams (241, 242) x pinger (service 1, port 8004) and the deploy tests' pong (service 2,
port 8000) on 10.79.0.0/16 with 64 MiB disks; the teardown test uses team 243 on 10.80.0.0/16.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import secrets
import shutil
import socket
import struct
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from deploy import boxes, disks, network
from deploy.engine import connect
from scoreboard import access
from scoreboard.config import GameConfig, parse_config
from tests.conftest_docker import LOCAL_ENGINE, TEST_CHALLENGE
from tests.ssh_helpers import ssh
from tests.test_deploy import first_line

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parent.parent
PINGER = ROOT / "challenges" / "pinger"
ATTACKER, VICTIM = 241, 242
SUBNET = "10.79.0.0/16"
DISK_MB = 64


def hardening_game(name: str, teams: tuple[int, ...] = (ATTACKER, VICTIM), subnet: str = SUBNET) -> GameConfig:
    """Teams x (pinger, pong), each box on a 64 MiB disk."""
    services = [("pinger", PINGER, 8004), ("pong", TEST_CHALLENGE, 8000)]
    return parse_config({
        "game": {"name": name, "secret": "hardening-tests-secret-0123456789"},
        "teams": [{"name": f"team{t}", "id": t} for t in teams],
        "services": [{"name": svc, "id": i, "checker": {"protocol": "cli", "path": "checker.py"}, "ports": [port],
                      "challenge": str(folder), "flag_mode": "file"}
                     for i, (svc, folder, port) in enumerate(services, 1)],
        "deploy": {"mode": "hosted", "engines": [LOCAL_ENGINE], "box_subnet": subnet, "disk": f"{DISK_MB}m"},
    }, f"<{name}>", ROOT)


@pytest.fixture(scope="module")
def game(base_image, session_tag):
    config = hardening_game(f"hard{session_tag}")
    try:
        boxes.up(config)
        for team in config.teams:
            assert first_line(team.address, 8000) == b"pong v1\n"
            wait_http(team.address)
        yield config
    finally:
        boxes.down(config)


# -- the attacker: code execution as the service user through the injection -----------------
def wait_http(host: str, deadline: float = 30) -> None:
    """Wait until pinger answers at `host`."""
    end = time.monotonic() + deadline
    while True:
        try:
            if requests.get(f"http://{host}:8004/api/lookup", params={"host": "localhost"}, timeout=3).ok:
                return
        except requests.RequestException:
            pass
        assert time.monotonic() < end, f"pinger on {host} does not answer"
        time.sleep(0.5)


def inject(host: str, command: str) -> str:
    """Run `command` in the pinger box at `host` as its service, through the bug; its stdout."""
    assert len(command) < 240 and not any(bad in command for bad in (";", "&", "`", "$(")), command
    resp = requests.get(f"http://{host}:8004/api/lookup", params={"host": f"localhost|{command}"}, timeout=15)
    assert resp.ok, resp.text
    return resp.json()["output"]


def as_service(host: str, script: str) -> str:
    """Run a Python `script` as the pinger service at `host` (uploaded in chunks to /tmp)."""
    path = f"/tmp/x{secrets.token_hex(4)}"
    data = base64.b64encode(script.encode()).decode()
    for i in range(0, len(data), 160):
        inject(host, f"echo {data[i:i + 160]} >> {path}.b64")
    return inject(host, f"base64 -d {path}.b64 | python3 - 2>/dev/stdout")


def in_box(config: GameConfig, team_id: int, service_id: int, command: str, user: str) -> tuple[int, str]:
    """A shell command in a box: as `team` or `root` by docker exec, as `svc` like the service."""
    argv = ["/bin/sh", "-c", command]
    if user == "svc":
        argv = ["setpriv", "--reuid=svc", "--regid=svc", "--init-groups", "--reset-env", *argv]
    code, out = boxes.find_box(config, team_id, service_id).exec_run(argv, user="team" if user == "team" else "root")
    return code, out.decode(errors="replace")


def pong_version(address: str, want: bytes, deadline: float = 15) -> None:
    """Wait until pong answers `want` (it reads version.txt at every connection)."""
    end = time.monotonic() + deadline
    while first_line(address, 8000) != want:
        assert time.monotonic() < end, f"pong on {address} does not answer {want!r}"
        time.sleep(0.3)


def restarted(config: GameConfig, team_id: int, service_id: int, deadline: float = 15) -> None:
    """Wait until the supervisor took a `restart-service` request (and is done killing)."""
    end = time.monotonic() + deadline
    while in_box(config, team_id, service_id, "test -e /run/adrange/restart", "root")[0] == 0:
        assert time.monotonic() < end, "restart-service was not taken"
        time.sleep(0.2)


# -- code ownership --------------------------------------------------------------------------
WRITE_PROBES = r"""
import os
print("uid", os.getuid())
def attempt(name, action):
    try:
        action()
        print(name, "WRITTEN")
    except OSError as exc:
        print(name, type(exc).__name__)
attempt("append", lambda: open("/srv/pinger/app.py", "a").close())
attempt("replace", lambda: os.rename("/srv/pinger/app.py", "/srv/pinger/old.py"))
attempt("unlink", lambda: os.unlink("/srv/pinger/app.py"))
attempt("create", lambda: open("/srv/pinger/backdoor.py", "w").close())
attempt("chmod", lambda: os.chmod("/srv/pinger/app.py", 0o666))
attempt("runsh", lambda: open("/srv/run.sh", "a").close())
attempt("srv", lambda: open("/srv/x", "w").close())
attempt("data", lambda: open("/srv/pinger/data/mine", "w").close())
"""


def test_the_service_user_cannot_change_the_code_but_writes_its_data(game):
    victim = game.team(VICTIM).address
    lines = dict(line.split(" ", 1) for line in as_service(victim, WRITE_PROBES).splitlines())
    assert lines.pop("uid") == "1000"  # the service's own user: svc
    assert lines.pop("data") == "WRITTEN"
    assert lines == dict.fromkeys(["append", "replace", "unlink", "create", "chmod", "runsh", "srv"],
                                  "PermissionError")
    code, owners = in_box(game, VICTIM, 1, "stat -c '%U %a %n' /srv/pinger/app.py /srv/pinger/data", "root")
    assert code == 0 and owners.splitlines() == ["team 644 /srv/pinger/app.py", "svc 775 /srv/pinger/data"]


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the ssh client (openssh-client)")
def test_the_team_patches_over_ssh_and_the_service_user_still_cannot_write(game, tmp_path):
    team = game.team(ATTACKER)
    login = next(row for row in access.team_access(game, team.id) if row["service"] == "pong")
    result = ssh(login["host"], login["port"], login["password"],
                 "id -un && echo v2 > /srv/pong/version.txt && restart-service", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("team\n")
    restarted(game, ATTACKER, 2)
    pong_version(team.address, b"pong v2\n")
    assert in_box(game, ATTACKER, 2, "echo undone > /srv/pong/version.txt", "svc")[0] != 0
    assert in_box(game, ATTACKER, 2, "cat /srv/pong/version.txt", "svc") == (0, "v2\n")
    assert in_box(game, ATTACKER, 2, "echo v1 > /srv/pong/version.txt && restart-service", "team")[0] == 0
    restarted(game, ATTACKER, 2)
    pong_version(team.address, b"pong v1\n")


# -- disk quota ------------------------------------------------------------------------------
FILL = r"""
import errno, os
def fill(path, limit_mb):
    written = 0
    try:
        with open(path, "wb", buffering=0) as out:
            while written < limit_mb << 20:
                written += out.write(b"x" * (1 << 20))
            os.fsync(out.fileno())
        result = "none"
    except OSError as exc:
        result = errno.errorcode[exc.errno]
    print(path, result, written >> 20)
    if not path.startswith("/srv/"):
        try:
            os.unlink(path)
        except OSError:
            pass
for path, limit in [("/srv/pinger/data/fill", 160), ("/tmp/fill", 80), ("/var/tmp/fill", 80),
                    ("/dev/shm/fill", 80), ("/var/lib/fill", 1), ("/etc/fill", 1), ("/fill", 1),
                    ("/usr/local/fill", 1), ("/var/mail/fill", 1), ("/home/team/fill", 1)]:
    fill(path, limit)
"""


def layer_size(container_id: str) -> int:
    """Bytes in the container's own layer (on the host's disk)."""
    (row,) = connect(LOCAL_ENGINE).api.containers(all=True, size=True, filters={"id": container_id})
    return row["SizeRw"]


def test_writing_past_the_disk_cap_fails_and_the_host_disk_stays_untouched(game):
    box = boxes.find_box(game, VICTIM, 1)
    layer_before = layer_size(box.id)
    results = {path: (err, int(mb)) for path, err, mb in
               (line.split() for line in as_service(game.team(VICTIM).address, FILL).splitlines())}
    err, mb = results.pop("/srv/pinger/data/fill")
    assert err == "ENOSPC" and DISK_MB // 2 < mb <= DISK_MB, (err, mb)  # less the file system and the team's 5%
    scratch = disks.size_bytes(game.deploy.tmpfs) >> 20
    for path in ("/tmp/fill", "/var/tmp/fill", "/dev/shm/fill"):
        err, mb = results.pop(path)
        assert err == "ENOSPC" and mb <= scratch, (path, err, mb)
    assert all(err in ("EACCES", "EPERM") for err, _ in results.values()), results
    # On the host: the disk image holds at most the cap, the container layer got nothing.
    image, = Path(disks.game_dir(game.game.name), box.name).glob("*.img")
    assert image.stat().st_blocks * 512 <= (DISK_MB + 1) << 20
    layer_after = layer_size(box.id)
    assert layer_after - layer_before < 1 << 20, (layer_before, layer_after)
    # The team's reserved blocks: it can still patch, then clears the service's mess.
    assert in_box(game, VICTIM, 1, "echo patched > /srv/pinger/PATCHED && rm /srv/pinger/data/fill", "team") == (0, "")


# -- sshd reachable only through the published port ------------------------------------------
PROBE = r"""
import socket, threading
targets = TARGETS
def probe(host, port):
    try:
        socket.create_connection((host, port), timeout=1.5).close()
        result = "open"
    except socket.timeout:
        result = "timeout"
    except OSError as exc:
        result = type(exc).__name__
    print(f"{host}:{port}", result)
threads = [threading.Thread(target=probe, args=t) for t in targets]
[t.start() for t in threads]
[t.join() for t in threads]
"""


def test_no_box_reaches_another_boxs_sshd_and_the_team_logs_in_at_its_address(game, tmp_path):
    addr = {(t.id, s.id): network.box_address(game, t, s) for t in game.teams for s in game.services}
    targets = [(addr[VICTIM, 1], 22), (addr[VICTIM, 2], 22), (addr[ATTACKER, 2], 22),
               (addr[VICTIM, 1], 8004), (addr[VICTIM, 2], 8000)]
    out = as_service(game.team(ATTACKER).address, PROBE.replace("TARGETS", repr(targets)))
    seen = dict(line.split() for line in out.splitlines())
    assert seen[f"{addr[VICTIM, 1]}:8004"] == seen[f"{addr[VICTIM, 2]}:8000"] == "open"  # the game network works
    for host, port in targets[:3]:
        assert seen[f"{host}:{port}"] in ("timeout", "ConnectionRefusedError"), (host, seen)
    if shutil.which("ssh"):
        for team in game.teams:
            login = access.team_access(game, team.id)[0]
            result = ssh(login["host"], login["port"], login["password"], "id -un", tmp_path)
            assert (result.returncode, result.stdout) == (0, "team\n"), result.stderr


def test_sshd_itself_refuses_logins_from_game_addresses(game):
    """The second line, for a host whose bridge traffic skips iptables: a login from a game
    address (here the box's own, which no firewall sees) is refused before authentication."""
    own = network.box_address(game, game.team(VICTIM), game.service(2))
    code, out = in_box(game, VICTIM, 2, f"ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o "
                       f"UserKnownHostsFile=/dev/null -o ConnectTimeout=3 team@{own} true", "team")
    assert code != 0
    deadline = time.monotonic() + 5
    while f"User team from {own} not allowed because listed in DenyUsers" not in \
            boxes.find_box(game, VICTIM, 2).logs(tail=50).decode(errors="replace"):
        assert time.monotonic() < deadline, out
        time.sleep(0.2)


# -- DNS -------------------------------------------------------------------------------------
class DnsSniffer:
    """Every IPv4 DNS packet (UDP or TCP port 53) on the host's interfaces carrying `label`."""

    def __init__(self, label: bytes) -> None:
        self.label, self.seen, self.stop = label, [], threading.Event()
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                frame, (ifname, proto, *_rest) = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            if proto != 0x0800 or self.label not in frame:
                continue
            ip = frame[14:]
            ihl, ip_proto = (ip[0] & 0x0F) * 4, ip[9]
            sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
            if ip_proto in (6, 17) and 53 in (sport, dport):
                self.seen.append((ifname, socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])))

    def close(self) -> list[tuple[str, str, str]]:
        self.stop.set()
        self.thread.join()
        self.sock.close()
        return self.seen


RESOLVE = r"""
import socket, struct
def query(name):  # straight at Docker's embedded resolver, skipping resolv.conf
    packet = struct.pack("!HHHHHH", 0x4144, 0x0100, 1, 0, 0, 0)
    packet += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0\0\1\0\1"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2)
    sock.sendto(packet, ("127.0.0.11", 53))
    try:
        reply = sock.recv(512)
        return f"rcode{reply[3] & 15}/answers{struct.unpack('!H', reply[6:8])[0]}"
    except socket.timeout:
        return "timeout"
for name in NAMES:
    try:
        print(name, "resolved", socket.gethostbyname(name))
    except OSError as exc:
        print(name, "failed", type(exc).__name__)
print("raw", query(RAW))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a packet socket")
def test_names_outside_the_game_do_not_resolve_and_no_query_leaves(game):
    label = f"adrprobe{secrets.token_hex(4)}"
    other_box = boxes.box_name(game, game.team(VICTIM), game.service(2))
    names = [f"{label}.example.com", "example.com", other_box]
    sniffer = DnsSniffer(label.encode())
    try:
        tool = requests.get(f"http://{game.team(ATTACKER).address}:8004/api/lookup",
                            params={"host": f"{label}.lookup.example.net"}, timeout=15).json()
        script = RESOLVE.replace("NAMES", repr(names)).replace("RAW", repr(f"{label}.raw.example.org"))
        out = as_service(game.team(ATTACKER).address, script)
        time.sleep(1)
    finally:
        seen = sniffer.close()
    game_net = ipaddress.ip_network(SUBNET)
    leaked = [p for p in seen if ipaddress.ip_address(p[2]) not in game_net]
    assert leaked == [], f"queries for {label} went towards a resolver outside the game (if, from, to): {leaked}"
    assert tool["found"] is False
    results = dict(line.split(" ", 1) for line in out.splitlines())
    assert results[f"{label}.example.com"].startswith("failed"), out
    assert results["example.com"].startswith("failed")
    assert results[other_box] == f"resolved {network.box_address(game, game.team(VICTIM), game.service(2))}"
    assert not results["raw"].endswith("answers1"), results["raw"]


# -- what survives ---------------------------------------------------------------------------
def test_restart_keeps_the_disk_and_reset_gives_a_fresh_one(game):
    assert in_box(game, VICTIM, 2, "echo v3 > /srv/pong/version.txt && echo t > /tmp/scratch", "team")[0] == 0
    boxes.restart(game, VICTIM, 2)
    pong_version(game.team(VICTIM).address, b"pong v3\n")
    assert in_box(game, VICTIM, 2, "test -e /tmp/scratch", "team")[0] != 0  # scratch mounts start empty
    boxes.reset(game, VICTIM, 2)
    pong_version(game.team(VICTIM).address, b"pong v1\n")
    assert in_box(game, VICTIM, 2, "stat -c %U /srv/pong/version.txt", "root") == (0, "team\n")
    assert boxes.up(game) == Counter(unchanged=4)


def loop_files(game: GameConfig) -> list[str]:
    """The backing files of the host's loop devices that belong to the game's disks (the
    kernel names them from the helper's bind mount of the disk folder: the path below it)."""
    files = (p.read_text().strip() for p in Path("/sys/block").glob("loop*/loop/backing_file"))
    return [f for f in files if f"/{game.game.name}/" in f and f.endswith(".img")]


def test_down_leaves_no_disk_behind(base_image, session_tag):
    config = hardening_game(f"hardd{session_tag}", teams=(243,), subnet="10.80.0.0/16")
    try:
        assert boxes.up(config) == Counter(created=2)
        assert len(disks.game_volumes(connect(LOCAL_ENGINE), config.game.name)) == 2
        assert len(loop_files(config)) == 2
    finally:
        boxes.down(config)
    assert disks.game_volumes(connect(LOCAL_ENGINE), config.game.name) == {}
    assert not Path(disks.game_dir(config.game.name)).exists()
    assert loop_files(config) == []
