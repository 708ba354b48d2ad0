"""Traffic captures: real boxes, the real capture process (tcpdump per box), the real web app.

A hosted game of two teams with the `pinger` challenge; rounds are moved by the store's
own open/close scripts. The reference exploit steals the victim's flag; the victim's
capture of that round, fetched through ``/api/captures`` with its token once released,
holds the exploit's request and the flag bytes, read back with dpkt and tcpdump.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import dpkt
import pytest
import requests

from deploy import boxes, captures
from deploy.bots import load_exploit
from deploy.demo import challenge_services
from deploy.engine import connect
from deploy.flagfile import write_flag
from deploy.redis_server import free_port
from deploy.supervisor import state_dir
from scoreboard import captures as files
from scoreboard.config import ConfigError, GameConfig, parse_config
from scoreboard.flags import FlagCodec
from scoreboard.store import GameStore
from scoreboard.types import GameState
from tests.conftest import game_data
from tests.game_helpers import start_at_round
from tests.processes import ROOT, Process, write_game
from tests.web_helpers import ADMIN_HASH, ADMIN_PASSWORD

ATTACKER, VICTIM = 251, 252
FILE_CAP = 10**6  # captures.file_size 1m: tcpdump -C 1
TEAM_CAP = 3 * 2**20  # captures.team_size 3m
SNAPLEN = 262144  # a file passes the cap by at most one packet
needs_tcpdump = pytest.mark.skipif(shutil.which("tcpdump") is None,
                                   reason="tcpdump is not installed (deploy/setup.sh --docker installs it)")


# -- rules without Docker --------------------------------------------------------------
def test_file_names_parse_back_and_tcpdump_parts_get_their_own_numbers():
    name = files.file_name("final.1", 7, "my notes_v2", 42, 3)
    assert name == "final.1_t7_my-notes-v2_r00042_p03.pcap"
    assert files.parse_name(name, "final.1") == (7, "my-notes-v2", 42, 3)
    assert files.parse_name(name, "other") is None
    for bad in ("../t7/" + name, name + ".gz", "final.1_t7_x_r1_p1.pcap", name.replace("_t7_", "_t_")):
        assert files.parse_name(bad, "final.1") is None, bad
    assert captures.finished_name(name, "final.1") == name
    assert captures.finished_name(name + "1", "final.1") == name.replace("_p03", "_p04")
    assert captures.finished_name(name + "12", "final.1") == name.replace("_p03", "_p15")
    assert captures.finished_name("notes.txt", "final.1") is None


def test_a_round_is_released_after_the_delay_and_everything_when_the_game_is_over():
    assert not files.released(5, {"state": GameState.RUNNING, "round": 6}, 2)
    assert files.released(5, {"state": GameState.RUNNING, "round": 7}, 2)
    assert files.released(5, {"state": GameState.OVER, "round": 5}, 2)


def _config_error(redis_url: str, captures_keys: dict[str, Any], **deploy: Any) -> str:
    data = game_data(redis_url, teams=2, services=2)
    data["captures"] = captures_keys
    if deploy:
        data["deploy"] = deploy
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return str(caught.value)


def test_bad_capture_settings_are_refused_naming_the_key(redis_server):
    url = redis_server.url
    assert "captures.enabled: only deploy.mode hosted captures its boxes' traffic (this game is external" \
        in _config_error(url, {"enabled": True})
    assert "deploy.engines ['tcp://10.0.0.9:2376'] are not local" in _config_error(
        url, {"enabled": True}, mode="hosted", engines=["tcp://10.0.0.9:2376"])
    assert "captures.team_size: 1m cannot hold one 1m file (captures.file_size) for each of a team's 2 boxes" \
        in _config_error(url, {"enabled": True, "file_size": "1m", "team_size": "1m"}, mode="hosted")
    assert "captures.file_size: '12q': give a size like 64m" in _config_error(url, {"file_size": "12q"})
    assert "captures.delay_rounds" in _config_error(url, {"delay_rounds": 0})


@needs_tcpdump
def test_a_filter_tcpdump_cannot_compile_stops_the_capture_process_naming_the_key(redis_server):
    data = game_data(redis_server.url, teams=2, services=1)
    data["deploy"] = {"mode": "hosted"}
    data["captures"] = {"enabled": True, "filter": "tcp prt 80"}
    with pytest.raises(captures.CaptureError, match=r"captures.filter 'tcp prt 80': .*syntax error"):
        captures.check_host(parse_config(data))


# -- a real hosted game --------------------------------------------------------------
class CaptureGame:
    """The game, its store, its web app and its capture process."""

    def __init__(self, config: GameConfig, store: GameStore, path: Path, work: Path, url: str) -> None:
        self.config, self.store, self.path, self.work, self.url = config, store, path, work, url
        self.service = config.services[0]
        self.capture = Process(["captures", "run", "-c", str(path), "-v"], work, "captures")

    def token(self, team: int) -> str:
        return self.config.team(team).token or ""

    def api(self, path: str, team: int | None = None, admin: bool = False) -> requests.Response:
        """GET `path` with the team's token, or as admin (then from /admin/api/...)."""
        headers = {"X-Team-Token": self.token(team)} if team else {}
        auth = ("admin", ADMIN_PASSWORD) if admin else None
        return requests.get(self.url + ("/admin" if admin else "") + path, headers=headers, auth=auth, timeout=10)

    def round(self) -> int:
        return self.store.state()["round"]

    def next_round(self) -> int:
        """Close the current round and open the next, as the ticker does."""
        current = self.round()
        self.store.close_round(current)
        assert self.store.open_round(current + 1)
        return current + 1

    def box_url(self, team: int, path: str = "/api/status") -> str:
        return f"http://{self.config.team(team).address}:{self.service.ports[0]}{path}"

    def writing(self, team: int, round_: int, part: int | None = None) -> list[Path]:
        stem = files.file_name(self.config.game.name, team, self.service.name, round_, 0).rsplit("_p", 1)[0]
        pattern = f"{stem}_p{part:02d}.pcap" if part is not None else f"{stem}_p*"
        return sorted(files.writing_dir(self.config).glob(pattern))

    def wait_capturing(self, team: int, part: int | None = None) -> None:
        """Poke the box until its tcpdump of the current round has written a packet."""
        round_ = self.round()

        def written() -> bool:
            try:
                requests.get(self.box_url(team), timeout=3)
            except requests.RequestException:
                return False
            return any(p.stat().st_size > captures.PCAP_HEADER for p in self.writing(team, round_, part))
        wait_for(written, 60, f"team {team}'s round {round_} capture", self.capture)

    def listed(self, team: int | None = None, admin: bool = False) -> dict[str, dict]:
        resp = self.api("/api/captures", team, admin)
        assert resp.status_code == 200, resp.text
        return {f["name"]: f for f in resp.json()["files"]}

    def name(self, team: int, round_: int, part: int = 0) -> str:
        return files.file_name(self.config.game.name, team, self.service.name, round_, part)


def wait_for(check: Callable[[], bool], timeout: float, what: str, process: Process | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            log = process.log_path.read_text()[-3000:] if process else ""
            raise AssertionError(f"timed out waiting for {what}\n{log}")
        time.sleep(0.3)


@pytest.fixture(scope="module")
def game(docker_engine, base_image, session_tag, redis_server):
    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump is not installed (deploy/setup.sh --docker installs it)")
    work = Path(tempfile.mkdtemp(prefix="adrange-captures-"))  # pytest's own folders are closed to tcpdump
    work.chmod(0o711)
    data = {
        "game": {"name": f"cap{session_tag}", "secret": "capture-tests-secret-0123456789", "round_seconds": 60},
        "teams": [{"name": "attackers", "id": ATTACKER}, {"name": "defenders", "id": VICTIM}],
        "services": [s for s in challenge_services(60) if s["challenge"].endswith("pinger")],
        "deploy": {"mode": "hosted", "box_subnet": "10.217.0.0/16", "ssh": False},
        "captures": {"enabled": True, "dir": str(work / "pcap"), "delay_rounds": 2, "file_size": "1m",
                     "team_size": "3m"},
        "web": {"admin_password_hash": ADMIN_HASH},
        "redis_url": redis_server.url,
    }
    path = write_game(work / "game.yml", data)
    config = parse_config(data, str(path), work)
    boxes.up(config)
    store = GameStore(config)
    store.init()
    start_at_round(store, 1)
    port = free_port()
    web = Process(["web", "-c", str(path), "--port", str(port)], work, "web").start(("127.0.0.1", port))
    running = CaptureGame(config, store, path, work, f"http://127.0.0.1:{port}")
    running.capture.start()
    try:
        yield running
    finally:
        running.capture.stop()
        web.stop()
        boxes.down(config)
        shutil.rmtree(work, ignore_errors=True)
        left = connect(config.deploy.engines[0]).containers.list(
            all=True, filters={"label": "adrange.game=" + config.game.name})
        assert left == [], "deploy down left containers behind"


def tcp_payloads(pcap: bytes) -> list[tuple[int, int, bytes]]:
    """(source port, destination port, payload) of every TCP segment with data, parsed by dpkt."""
    reader = dpkt.pcap.Reader(io.BytesIO(pcap))
    assert reader.datalink() == dpkt.pcap.DLT_EN10MB
    out = []
    for _ts, frame in reader:
        ip = dpkt.ethernet.Ethernet(frame).data
        if isinstance(ip, dpkt.ip.IP) and isinstance(ip.data, dpkt.tcp.TCP) and ip.data.data:
            out.append((ip.data.sport, ip.data.dport, bytes(ip.data.data)))
    return out


@pytest.mark.docker
def test_exploit_request_and_stolen_flag_are_in_the_victims_released_capture(game, tmp_path):
    service = game.service
    round_ = game.round()
    game.wait_capturing(VICTIM)
    flag = FlagCodec(game.config.game.secret).generate(round_, VICTIM, service.id, 0)
    write_flag(game.config, VICTIM, service.id, flag)
    exploit = load_exploit(game.config, service)
    assert exploit is not None
    assert flag in exploit.exploit(game.config.team(VICTIM).address, [])
    name = game.name(VICTIM, round_)

    game.next_round()  # the round is over: its file is finished, but not the team's yet (delay 2)
    wait_for(lambda: name in game.listed(admin=True), 30, f"{name} finished", game.capture)
    assert name not in game.listed(VICTIM)
    assert game.api(f"/api/captures/{name}", VICTIM).status_code == 404

    game.next_round()
    assert name in game.listed(VICTIM)
    got = game.api(f"/api/captures/{name}", VICTIM)
    assert got.status_code == 200 and got.headers["Content-Type"] == captures_type()
    segments = tcp_payloads(got.content)
    request = urlencode({"host": "localhost|cat /flag"}).encode()  # as requests sends the exploit's query
    port = service.ports[0]
    assert any(dst == port and b"GET /api/lookup?" + request in data for _src, dst, data in segments), segments
    assert any(src == port and flag.encode() in data for src, _dst, data in segments)
    saved = tmp_path / name
    saved.write_bytes(got.content)  # tcpdump itself reads it as it is
    shown = subprocess.run(["tcpdump", "-n", "-r", str(saved), "-A", f"tcp src port {port}"], capture_output=True)
    assert shown.returncode == 0 and flag.encode() in shown.stdout, shown.stderr

    # nobody else gets it
    assert not [n for n in game.listed(ATTACKER) if files.parse_name(n, game.config.game.name)[0] != ATTACKER]
    assert game.api(f"/api/captures/{name}", ATTACKER).status_code == 404
    assert game.api(f"/api/captures/{name}").status_code == 401
    assert game.api("/api/captures").status_code == 401
    wrong = requests.get(f"{game.url}/api/captures/{name}", headers={"X-Team-Token": "not-a-token"}, timeout=5)
    assert wrong.status_code == 401
    for sneaky in (f"..%2Ft{VICTIM}%2F{name}", f"%2E%2E%2F%2E%2E%2F{name}", name.replace(".pcap", ".pcap%00"),
                   "..%2F..%2F..%2Fgame.yml", name.replace(game.config.game.name, "othergame")):
        assert game.api(f"/api/captures/{sneaky}", ATTACKER).status_code == 404, sneaky
    assert game.api(f"/api/captures/{name}", admin=True).content == got.content


def captures_type() -> str:
    from scoreboard.web.captures import PCAP_TYPE

    return PCAP_TYPE


@pytest.mark.docker
def test_the_portal_page_links_the_released_files(game):
    session = requests.Session()
    login = session.get(f"{game.url}/team/login", timeout=5)
    csrf = login.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    assert session.post(f"{game.url}/team/login", data={"token": game.token(VICTIM), "csrf": csrf},
                        timeout=5).status_code == 200
    home = session.get(f"{game.url}/team/?lang=en", timeout=5).text
    assert 'href="/team/captures"' in home and "Traffic captures" in home
    page = session.get(f"{game.url}/team/captures?lang=en", timeout=5).text
    released = sorted(game.listed(VICTIM))
    assert released and all(f'href="/api/captures/{name}"' in page for name in released)
    assert session.get(f"{game.url}/api/captures/{released[0]}", timeout=5).content[:4] == b"\xd4\xc3\xb2\xa1"


@pytest.mark.docker
def test_a_restarted_or_reset_box_goes_on_in_a_new_part(game):
    round_ = game.round()
    game.wait_capturing(VICTIM)
    boxes.restart(game.config, VICTIM, game.service.id)  # same container, new network namespace
    game.wait_capturing(VICTIM, part=1)
    requests.get(game.box_url(VICTIM, "/api/lookup?host=after-the-restart"), timeout=5)
    boxes.reset(game.config, VICTIM, game.service.id)  # a new container
    game.wait_capturing(VICTIM, part=2)
    requests.get(game.box_url(VICTIM, "/api/lookup?host=after-the-reset"), timeout=5)
    game.next_round()
    names = [game.name(VICTIM, round_, part) for part in range(3)]
    wait_for(lambda: set(names) <= set(game.listed(admin=True)), 30, "the three parts finished", game.capture)
    for part, word in ((1, b"after-the-restart"), (2, b"after-the-reset")):
        data = game.api(f"/api/captures/{names[part]}", admin=True).content
        assert any(word in payload for _s, _d, payload in tcp_payloads(data)), part
    shown = subprocess.run([sys.executable, "-m", "deploy.cli", "captures", "list", "-c", str(game.path)],
                           capture_output=True, text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "200"})
    row = next(line for line in shown.stdout.splitlines() if "defenders" in line)
    assert shown.returncode == 0 and f"-{round_}│" in row.replace(" ", ""), shown.stdout  # rounds up to this one


@pytest.mark.docker
def test_size_cap_begins_new_parts_and_keeps_the_team_within_its_quota(game):
    round_ = game.round()
    game.wait_capturing(ATTACKER)
    victims_files = {n for n in game.listed(admin=True) if f"_t{VICTIM}_" in n}
    http = requests.Session()
    page = game.box_url(ATTACKER, "/")

    def parts_passed() -> int:
        for _ in range(50):
            http.get(page, timeout=5)
        return max((f.part for f in files.team_files(game.config, ATTACKER) if f.round == round_), default=-1)
    wait_for(lambda: parts_passed() >= 4, 240, "5 parts of 1 MB", game.capture)
    game.next_round()
    wait_for(lambda: not game.writing(ATTACKER, round_), 30, "the round's files finished", game.capture)

    kept = [f for f in files.team_files(game.config, ATTACKER) if f.round == round_]
    assert all(f.size <= FILE_CAP + SNAPLEN for f in kept), [(f.name, f.size) for f in kept]
    assert sum(f.size for f in files.team_files(game.config, ATTACKER)) <= TEAM_CAP
    parts = [f.part for f in kept]
    assert parts == list(range(parts[0], parts[0] + len(parts))) and parts[0] > 0, parts  # the oldest went
    assert sum(f.size for f in kept) > TEAM_CAP / 2
    for f in kept:  # every part a whole pcap file on its own
        assert tcp_payloads(f.path.read_bytes())
    assert victims_files <= set(game.listed(admin=True)), "another team's quota cost the victim its files"


def _tcpdumps_writing(config: GameConfig) -> list[int]:
    marker = f"-w\0{files.writing_dir(config)}/".encode()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if proc.name.isdigit() and cmdline.startswith(b"tcpdump\0") and marker in cmdline:
            found.append(int(proc.name))
    return found


@pytest.mark.docker
def test_no_tcpdump_outlives_a_killed_capture_process_and_the_next_one_finishes_its_files(game):
    round_ = game.round()
    game.wait_capturing(VICTIM)
    game.wait_capturing(ATTACKER)
    assert len(_tcpdumps_writing(game.config)) == 2
    assert game.capture.proc is not None
    os.kill(game.capture.proc.pid, signal.SIGKILL)  # the process alone, not its group
    game.capture.proc.wait()
    wait_for(lambda: not _tcpdumps_writing(game.config), 20, "the tcpdumps to end")
    left = game.writing(VICTIM, round_)
    assert left, "the killed process's file should wait in writing/"
    game.capture.start()
    game.wait_capturing(VICTIM, part=1)  # the new process: the left file is part 0, it writes part 1
    assert not (files.writing_dir(game.config) / left[0].name).exists()
    assert game.name(VICTIM, round_, 0) in game.listed(admin=True)
    assert os.stat(files.team_dir(game.config, VICTIM)).st_mode & 0o777 == 0o700


@pytest.mark.docker
@needs_tcpdump
def test_adrange_run_supervises_the_capture_process_of_a_hosted_game(docker_engine, redis_server, session_tag):
    work = Path(tempfile.mkdtemp(prefix="adrange-captures-run-"))
    work.chmod(0o711)
    name = f"caprun{session_tag}"
    data = {
        "game": {"name": name, "secret": "capture-tests-secret-0123456789"},
        "teams": [{"name": "one", "id": 253}, {"name": "two", "id": 254}],
        "services": [s for s in challenge_services(60) if s["challenge"].endswith("pinger")],
        "deploy": {"mode": "hosted", "box_subnet": "10.219.0.0/16"},
        "captures": {"enabled": True, "dir": str(work / "pcap")},
        "submission": {"faust_port": free_port(), "ructf_port": None, "forcad_port": None},
        "web": {"port": free_port(), "admin_password_hash": ADMIN_HASH},
        "redis_url": redis_server.url,
    }
    path = write_game(work / "game.yml", data)
    lock = work / "pcap" / name / "run.lock"
    run = Process(["run", "-c", str(path)], work, "run").start()
    try:
        def capturing() -> bool:
            pid = lock.read_text().strip() if lock.exists() else ""
            return pid.isdigit() and b"captures\0run" in Path(f"/proc/{pid}/cmdline").read_bytes()
        wait_for(capturing, 60, "adrange run's capture process", run)
        pid = int(lock.read_text())
        run.stop()
        assert not Path(f"/proc/{pid}").exists()
        assert "capturing game" in (state_dir(name) / "logs" / "captures.log").read_text()
    finally:
        run.kill()
        shutil.rmtree(state_dir(name), ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
