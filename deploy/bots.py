"""Demo attacker bots: each plays one team the way a real team's farm does.

Every few seconds a bot fetches the public attack data (ForcAD shape, from the web app),
runs each challenge's reference `exploit.py` against every other team's box, and submits
what it stole over its protocol (HTTP, or the faust / forcad TCP dialects). A bot can also
defend: patch its own boxes at a given round (as a team would over SSH: new files, then
restart the service), or take one of its services down for a few rounds.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import requests

from scoreboard.config import GameConfig, Service, Team

log = logging.getLogger("adrange.bot")
EXPLOIT_TIMEOUT = 20.0


@dataclass
class BotPlan:
    """What one bot does besides attacking."""

    protocol: str = "http"  # http | faust | forcad
    patch_at_round: int | None = None
    down_service: str | None = None
    down_at_round: int | None = None
    down_rounds: int = 2


def load_exploit(config: GameConfig, service: Service) -> ModuleType | None:
    """The challenge's exploit module, or None when the service has none."""
    if not service.challenge:
        return None
    path = config.resolve(service.challenge) / "exploit.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"exploit_{service.name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Submitter:
    """Sends flags over one protocol and counts accepted ones."""

    def __init__(self, config: GameConfig, team: Team, protocol: str, web_url: str) -> None:
        self.config, self.team, self.protocol, self.web_url = config, team, protocol, web_url

    def submit(self, flags: list[str]) -> int:
        if not flags:
            return 0
        if self.protocol == "http":
            reply = requests.put(f"{self.web_url}/flags", json=flags, headers={"X-Team-Token": self.team.token},
                                 timeout=10)
            return sum(1 for item in reply.json() if item.get("status")) if reply.ok else 0
        sub = self.config.submission
        port = sub.faust_port if self.protocol == "faust" else sub.forcad_port
        source = str(self.team.address).rsplit(".", 1)[0] + ".2"
        with socket.create_connection((sub.host, port), timeout=10, source_address=(source, 0)) as sock:
            reader = sock.makefile("rb")
            if self.protocol == "forcad":
                reader.readline()
                sock.sendall(self.team.token.encode() + b"\n")
            sock.sendall(("\n".join(flags) + "\n").encode())
            replies = [reader.readline() for _ in flags]
        marker = b" OK " if self.protocol == "faust" else b"Accepted"
        return sum(marker in line for line in replies)


class Bot:
    """One demo team's attacker and defender."""

    def __init__(self, config: GameConfig, team_id: int, plan: BotPlan, web_url: str) -> None:
        self.config = config
        self.team = config.team(team_id)
        self.plan = plan
        self.web_url = web_url.rstrip("/")
        self.submitter = Submitter(config, self.team, plan.protocol, self.web_url)
        self.exploits = {s.name: m for s in config.services if (m := load_exploit(config, s))}
        self.patched = False
        self.down_since: int | None = None
        self.pool = ThreadPoolExecutor(8)

    def current_round(self) -> int:
        return int(requests.get(f"{self.web_url}/api/round", timeout=5).json().get("round", 0))

    def attack_once(self) -> tuple[int, int]:
        """One sweep over every service and victim; returns (stolen, accepted)."""
        data: dict[str, dict[str, list[Any]]] = requests.get(
            f"{self.web_url}/api/client/attack_data", timeout=5).json()
        jobs = []
        victims = [t.address for t in self.config.playing_teams if t.id != self.team.id]
        for service, module in self.exploits.items():
            for host in victims:  # file-mode services have no attack data: attack anyway
                ids = data.get(service, {}).get(host, [])
                jobs.append((service, host, self.pool.submit(module.exploit, host, ids)))
        stolen: list[str] = []
        for service, host, job in jobs:
            try:
                stolen.extend(job.result(timeout=EXPLOIT_TIMEOUT))
            except Exception as exc:  # a patched or down target is normal
                log.debug("exploit %s against %s: %s", service, host, exc)
        unique = sorted(set(stolen))
        return len(unique), self.submitter.submit(unique)

    def defend(self, round_: int) -> None:
        """Patch or take down own boxes when the plan says so."""
        plan = self.plan
        if plan.patch_at_round is not None and round_ >= plan.patch_at_round and not self.patched:
            for service in self.config.services:
                if service.challenge:
                    patch_box(self.config, self.team, service)
            self.patched = True
            log.info("team %s patched its services in round %d", self.team.name, round_)
        if plan.down_service and plan.down_at_round is not None:
            from deploy.boxes import find_box

            service = next(s for s in self.config.services if s.name == plan.down_service)
            box = find_box(self.config, self.team.id, service.id)
            if self.down_since is None and plan.down_at_round <= round_ < plan.down_at_round + plan.down_rounds:
                box.stop(timeout=1)
                self.down_since = round_
                log.info("team %s took %s down in round %d", self.team.name, service.name, round_)
            elif self.down_since is not None and round_ >= plan.down_at_round + plan.down_rounds:
                box.start()
                self.down_since = None
                plan.down_at_round = None
                log.info("team %s brought %s back in round %d", self.team.name, service.name, round_)

    def run(self, interval: float) -> None:
        """Attack and defend forever."""
        while True:
            try:
                round_ = self.current_round()
                self.defend(round_)
                if round_ > 0:
                    stolen, accepted = self.attack_once()
                    log.info("round %d: stole %d flags, %d accepted via %s", round_, stolen, accepted,
                             self.plan.protocol)
            except (requests.RequestException, OSError, ValueError) as exc:
                log.warning("bot step failed: %s", exc)
            time.sleep(interval)


def patch_box(config: GameConfig, team: Team, service: Service) -> None:
    """Apply every documented patch of a challenge to the team's box and restart its service.

    The service files live at /srv/<challenge>/<file> in the box (the challenges' layout).
    """
    from deploy.boxes import find_box

    folder = config.resolve(service.challenge or "")
    patches = sorted((folder / "patches").glob("*.patch"))
    if not patches:
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "service"
        shutil.copytree(folder / "service", work)
        for patch in patches:
            subprocess.run(["patch", "-p1", "-s", "-i", str(patch)], cwd=work, check=True)
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            for patch in patches:
                for line in patch.read_text().splitlines():
                    if line.startswith("+++ b/"):
                        name = line[6:].split("\t")[0]
                        info = tar.gettarinfo(str(work / name), arcname=name)
                        info.uid, info.gid, info.uname, info.gname = 1001, 1000, "team", "svc"  # as over SSH
                        with (work / name).open("rb") as handle:
                            tar.addfile(info, handle)
        box = find_box(config, team.id, service.id)
        box.put_archive(f"/srv/{folder.name}", archive.getvalue())
        box.exec_run(["restart-service"], user="team")
