"""The capture process: one tcpdump per box, rotated per round, files to their teams.

`Recorder.step` (called twice a second by `run`) does the whole job:

1. Keep a tcpdump alive for every running box of the game while the game runs or is paused
   (round 1 on): ``nsenter -t <box pid> -n timeout 0 tcpdump -i eth0 -U --immediate-mode -Z <captures.user>
   -C <captures.file_size> -w FILE <captures.filter>`` on this host, in the box's own network
   namespace, so a file holds only that box's traffic (what the box received and sent on
   the game network, published ports included: attackers and checkers alike arrive through
   Docker's port proxy from the gateway address, so the files do not tell them apart).
   tcpdump drops root for ``captures.user`` once its socket is open, and begins the next
   part itself when a file passes ``captures.file_size`` (-C: exact up to one packet).
2. Rotate at a new round: start the box's next tcpdump first and stop the old one only
   once the new one listens, so no packet falls between two rounds' files (a few may be
   in both).
3. Follow the boxes: a box restart or reset ends its tcpdump (the interface disappears)
   or changes its network namespace; the box gets a new tcpdump on a new part.
4. Finish files: a stopped tcpdump's file moves from ``writing/`` to its team's folder
   (scoreboard/captures.py has the names and the release rule); a file with no packet is
   dropped. Then each team's files are kept under ``captures.team_size``, oldest first.

When the game is over (or not started) nothing is captured. A second capture process of the
same game is refused (a lock in the game's capture folder); one started after a crash first
ends the tcpdumps its predecessor left writing into ``writing/`` and finishes their files.
"""

from __future__ import annotations

import ctypes
import logging
import os
import pwd
import re
import select
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import docker
import redis
from docker.errors import APIError, NotFound

from scoreboard import captures as files
from scoreboard.config import GameConfig, size_bytes
from scoreboard.store import GameStore
from scoreboard.types import GameState, Round, TeamID

from .boxes import LABEL_GAME, LABEL_ROLE, LABEL_TEAM
from .engine import connect
from .supervisor import PR_SET_PDEATHSIG, RunLease

log = logging.getLogger("adrange.captures")
PCAP_HEADER = 24  # bytes of a pcap file with no packet in it
READY_TIMEOUT = 10.0  # seconds a new tcpdump may take to listen
STOP_TIMEOUT = 5.0
RETRY_SECONDS = 5.0  # a box whose tcpdump failed to start is tried again after this
PRUNE_SECONDS = 10.0


class CaptureError(Exception):
    """The capture process cannot run; the message says why and what to do."""


@dataclass
class BoxInfo:
    """A running box as the engine lists it."""

    name: str
    container_id: str
    team: TeamID
    service: str  # the service's name


@dataclass
class Tcpdump:
    """One running tcpdump of one box and round, writing one part after another (-C)."""

    box: BoxInfo
    round: Round
    part: int
    path: Path
    proc: subprocess.Popen[bytes]
    netns: int  # inode of the box's network namespace it captures in
    box_pid: int
    stderr: bytes = b""
    ready: bool = False
    parts: int = 0  # files of it already finished (tcpdump began a later one)

    def read_stderr(self) -> None:
        """Take what tcpdump wrote to stderr so far (never blocks)."""
        if self.proc.stderr is None or self.proc.stderr.closed:
            return
        try:
            while chunk := os.read(self.proc.stderr.fileno(), 65536):
                self.stderr += chunk
                if len(self.stderr) > 65536:
                    self.stderr = self.stderr[-16384:]
        except BlockingIOError:
            pass
        self.ready = self.ready or b"listening on" in self.stderr

    def written(self) -> list[Path]:
        """Its files: the one it was given and the ones -C added."""
        return [p for p in self.path.parent.glob(self.path.name + "*") if p.name[len(self.path.name):].isdigit()
                or p.name == self.path.name]

    def size(self) -> int:
        total = 0
        for path in self.written():
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                pass
        return total


@dataclass
class Stats:
    """What the process did (logged when it stops)."""

    started: int = 0
    finished: int = 0
    dropped_empty: int = 0
    pruned: int = 0
    pruned_bytes: int = 0
    kernel_drops: int = 0
    failures: int = 0


def tcpdump_argv(config: GameConfig, box_pid: int, path: Path) -> list[str]:
    """The command that captures one box's traffic into `path` (and `path`1, `path`2 ... once
    each reaches the size cap: tcpdump -C, in whole millions of bytes). `timeout 0` (no time
    limit) stays root as tcpdump's parent and passes our SIGTERM on to it, also the one the
    kernel sends when this process dies (tcpdump itself loses the death signal with -Z).
    --immediate-mode: each packet is written when it arrives (without it the kernel holds
    them up to a second, and a tcpdump stopped at a round's end loses that second), -U:
    and reaches the file at once."""
    cap = config.captures
    millions = max(1, size_bytes(cap.file_size) // 10**6)
    return ["nsenter", "-t", str(box_pid), "-n", "timeout", "0", "tcpdump", "-i", "eth0", "-n", "-U",
            "--immediate-mode", "-s", "0", "-Z", cap.user, "-C", str(millions), "-w", str(path),
            *([cap.filter] if cap.filter.strip() else [])]


def finished_name(written: str, game: str) -> str | None:
    """The final name of a file tcpdump wrote: ``X_p03.pcap`` stays, its ``-C`` successors
    ``X_p03.pcap1``, ``X_p03.pcap2`` become parts 4 and 5; None for a stranger."""
    match = re.fullmatch(r"(.+_p)(\d+)\.pcap(\d*)", written)
    if not match:
        return None
    name = f"{match[1]}{int(match[2]) + int(match[3] or 0):02d}.pcap"
    return name if files.parse_name(name, game) else None


def _term_with_parent() -> None:
    """In a child before exec: SIGTERM from the kernel when the capture process dies."""
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        os._exit(70)
    if os.getppid() == 1:
        os._exit(70)


def check_host(config: GameConfig) -> None:
    """Refuse to start without root, tcpdump, nsenter, the capture user or a valid filter."""
    if os.geteuid() != 0:
        raise CaptureError("the capture process enters the boxes' network namespaces: run it as root "
                           "(tcpdump itself drops to captures.user)")
    for tool, package in (("tcpdump", "tcpdump"), ("nsenter", "util-linux")):
        if shutil.which(tool) is None:
            raise CaptureError(f"{tool} is not installed: apt-get install {package} (deploy/setup.sh does)")
    try:
        pwd.getpwnam(config.captures.user)
    except KeyError:
        raise CaptureError(f"captures.user: no user {config.captures.user!r} on this host (the tcpdump package "
                           "makes user tcpdump)") from None
    if config.captures.filter.strip():
        result = subprocess.run(["tcpdump", "-d", "-i", "lo", config.captures.filter], capture_output=True,
                                text=True)
        if result.returncode != 0:
            raise CaptureError(f"captures.filter {config.captures.filter!r}: {result.stderr.strip()}")


class Recorder:
    """Keeps one tcpdump per running box of a game and files what they wrote."""

    def __init__(self, config: GameConfig, store: GameStore, client: docker.DockerClient | None = None) -> None:
        self.config = config
        self.store = store
        self.client = client or connect(config.deploy.engines[0])
        self.team_bytes = size_bytes(config.captures.team_size)
        self.running: dict[str, Tcpdump] = {}  # by box name
        self.retry_at: dict[str, float] = {}
        self.stats = Stats()
        self._next_prune = 0.0
        self._lease: RunLease | None = None

    # -- life ------------------------------------------------------------------------
    def open(self) -> None:
        """Take the game's capture lock, make the folders, finish what a dead predecessor left."""
        game = files.game_dir(self.config)
        self._lease = RunLease(game)  # its run.lock: one capture process per game
        if not self._lease.acquire():
            raise CaptureError(f"a capture process of game {self.config.game.name!r} runs already "
                               f"(pid {self._lease.holder()})")
        game.chmod(0o711)  # tcpdump passes through; the team folders stay closed
        writing = files.writing_dir(self.config)
        writing.mkdir(exist_ok=True)
        user = pwd.getpwnam(self.config.captures.user)
        os.chown(writing, user.pw_uid, user.pw_gid)
        writing.chmod(0o700)
        _check_reachable(writing, user)
        self._end_orphans(writing)
        for path in sorted(writing.iterdir()):
            self._file(path)

    def close(self) -> None:
        """Stop every tcpdump, finish their files, drop the lock."""
        self._stop([tcp for tcp in self.running.values()])
        self.running.clear()
        self.prune()
        log.info("stopped: %s", ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in vars(self.stats).items()))
        if self._lease:
            self._lease.release()
            self._lease = None

    def run(self, interval: float = 0.5) -> None:
        """Capture until SIGINT or SIGTERM."""
        stopping = False

        def _stop(_sig: int, _frame: object) -> None:
            nonlocal stopping
            stopping = True

        old = signal.signal(signal.SIGINT, _stop), signal.signal(signal.SIGTERM, _stop)
        self.open()
        log.info("capturing game %s into %s", self.config.game.name, files.game_dir(self.config))
        try:
            while not stopping:
                try:
                    self.step()
                except (APIError, OSError, redis.RedisError) as exc:  # a hiccup: try again next step
                    log.warning("capture step failed: %s", exc)
                    self.stats.failures += 1
                time.sleep(interval)
        finally:
            self.close()
            signal.signal(signal.SIGINT, old[0])
            signal.signal(signal.SIGTERM, old[1])

    # -- one pass --------------------------------------------------------------------
    def step(self) -> None:
        """Start, rotate, restart and stop the tcpdumps for the game's state and boxes now."""
        state = self.store.state()
        round_ = state["round"]
        if state["state"] not in (GameState.RUNNING, GameState.PAUSED) or round_ < 1:
            if self.running:
                self._stop(list(self.running.values()))
                self.running.clear()
                self.prune()
            return
        boxes = self._boxes()
        now = time.monotonic()
        ended, rotate, grown = [], [], set()
        for name, tcp in list(self.running.items()):
            tcp.read_stderr()
            box = boxes.get(name)
            if tcp.proc.poll() is not None or box is None or box.container_id != tcp.box.container_id \
                    or _netns(tcp.box_pid) != tcp.netns:
                ended.append(self.running.pop(name))
                log.info("%s: box stopped or restarted (tcpdump %s); round %d part %d finished", name,
                         "exited" if tcp.proc.poll() is not None else "stopped", tcp.round, tcp.part + tcp.parts)
            elif tcp.round != round_:
                rotate.append(tcp)
            elif self._take_full_parts(tcp):
                grown.add(tcp.box.team)
        self._stop(ended)
        fresh = [self._start(box, round_) for name, box in boxes.items()
                 if name not in self.running and self.retry_at.get(name, 0) <= now]
        fresh += [self._start(tcp.box, round_, after=tcp) for tcp in rotate]
        self._await_ready([tcp for tcp in fresh if tcp is not None])
        self._stop([tcp for tcp in rotate if self.running.get(tcp.box.name) is not tcp])
        if ended or rotate or now >= self._next_prune:
            self.prune()
        elif grown:
            self.prune(grown)

    def _take_full_parts(self, tcp: Tcpdump) -> bool:
        """Finish the files tcpdump has closed (it began a later part: -C); True if any."""
        taken = False
        while tcp.path.with_name(f"{tcp.path.name}{tcp.parts + 1}").exists():
            self._file(tcp.path.with_name(tcp.path.name + (str(tcp.parts) if tcp.parts else "")))
            tcp.parts += 1
            taken = True
        return taken

    def _boxes(self) -> dict[str, BoxInfo]:
        """The game's running boxes (one list call, no inspect)."""
        game = self.config.game.name
        found = {}
        services = {str(s.id): s.name for s in self.config.services}
        for container in self.client.containers.list(sparse=True, filters={
                "label": [f"{LABEL_GAME}={game}", f"{LABEL_ROLE}=box"], "status": "running"}):
            labels = container.attrs.get("Labels") or {}
            name = (container.attrs.get("Names") or ["/?"])[0].lstrip("/")
            service = labels.get("adrange.service_name") or services.get(labels.get("adrange.service", ""), "?")
            found[name] = BoxInfo(name, container.id, int(labels.get(LABEL_TEAM, 0)), service)
        return found

    def _start(self, box: BoxInfo, round_: Round, after: Tcpdump | None = None) -> Tcpdump | None:
        """Start the box's tcpdump for a round (the next part of it); None if the box is gone.
        `after`: the tcpdump this one replaces (stopped once the new one listens)."""
        try:
            attrs = self.client.api.inspect_container(box.container_id)
        except NotFound:
            return None
        box_pid = int(attrs["State"].get("Pid") or 0)
        netns = _netns(box_pid)
        if not attrs["State"].get("Running") or netns is None:
            return None
        if after is not None and (after.box_pid != box_pid or after.netns != netns):
            return None  # restarted meanwhile: the next step ends the old one and starts afresh
        part = self._next_part(box, round_)
        path = files.writing_dir(self.config) / files.file_name(self.config.game.name, box.team, box.service,
                                                               round_, part)
        proc = subprocess.Popen(tcpdump_argv(self.config, box_pid, path), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_term_with_parent)
        assert proc.stderr is not None
        os.set_blocking(proc.stderr.fileno(), False)
        tcp = Tcpdump(box, round_, part, path, proc, netns, box_pid)
        self.running[box.name] = tcp
        self.stats.started += 1
        return tcp

    def _next_part(self, box: BoxInfo, round_: Round) -> int:
        """One more than the highest part of this box's round, finished or being written."""
        game = self.config.game.name
        stem = files.file_name(game, box.team, box.service, round_, 0).rsplit("_p", 1)[0]
        names = [p.name for p in files.team_dir(self.config, box.team).glob(f"{stem}_p*")]
        names += [finished_name(p.name, game) or "" for p in files.writing_dir(self.config).glob(f"{stem}_p*")]
        parts = [files.parse_name(name, game) for name in names]
        return max((parsed[3] + 1 for parsed in parts if parsed), default=0)

    def _await_ready(self, started: list[Tcpdump]) -> None:
        """Wait until each new tcpdump listens (or exits: then it is retried later)."""
        deadline = time.monotonic() + READY_TIMEOUT
        waiting = list(started)
        while waiting and time.monotonic() < deadline:
            select.select([t.proc.stderr for t in waiting], [], [], 0.2)
            for tcp in list(waiting):
                tcp.read_stderr()
                if tcp.ready:
                    waiting.remove(tcp)
                elif tcp.proc.poll() is not None:
                    waiting.remove(tcp)
                    self._failed(tcp)
        for tcp in waiting:  # never listened: end it
            log.warning("tcpdump for %s did not start listening in %.0fs", tcp.box.name, READY_TIMEOUT)
            self._stop([tcp])
            self._failed(tcp)

    def _failed(self, tcp: Tcpdump) -> None:
        tcp.read_stderr()
        if self.running.get(tcp.box.name) is tcp:
            del self.running[tcp.box.name]
        self.retry_at[tcp.box.name] = time.monotonic() + RETRY_SECONDS
        self.stats.failures += 1
        log.warning("tcpdump for %s failed (exit %s): %s", tcp.box.name, tcp.proc.poll(),
                    tcp.stderr.decode(errors="replace").strip()[-500:])
        for path in tcp.written():
            self._file(path)

    def _stop(self, tcpdumps: Iterable[Tcpdump]) -> None:
        """SIGTERM them all (tcpdump flushes and exits), wait, then finish their files."""
        tcpdumps = list(tcpdumps)
        for tcp in tcpdumps:
            if tcp.proc.poll() is None:
                tcp.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for tcp in tcpdumps:
            try:
                tcp.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                tcp.proc.kill()
                tcp.proc.wait()
            tcp.read_stderr()
            if tcp.proc.stderr:
                tcp.proc.stderr.close()
            drops = _kernel_drops(tcp.stderr)
            if drops:
                log.warning("%s round %d: the kernel dropped %d packets (tcpdump too slow)", tcp.box.name,
                            tcp.round, drops)
            self.stats.kernel_drops += drops
            for path in tcp.written():
                self._file(path)

    # -- files -----------------------------------------------------------------------
    def _file(self, path: Path) -> None:
        """Move a file tcpdump finished to its team's folder under its final name (drop it
        when it holds no packet)."""
        name = finished_name(path.name, self.config.game.name)
        parsed = files.parse_name(name, self.config.game.name) if name else None
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return
        if parsed is None or size <= PCAP_HEADER:
            path.unlink(missing_ok=True)
            self.stats.dropped_empty += parsed is not None
            return
        folder = files.team_dir(self.config, parsed[0])
        folder.mkdir(mode=0o700, exist_ok=True)
        os.replace(path, folder / str(name))
        self.stats.finished += 1

    def prune(self, teams: Iterable[TeamID] | None = None) -> None:
        """Keep each team's files (those being written included) within captures.team_size:
        delete its oldest finished files. `teams`: only these (default every team, and the
        next full pass in PRUNE_SECONDS)."""
        if teams is None:
            self._next_prune = time.monotonic() + PRUNE_SECONDS
            folders = files.game_dir(self.config).glob("t*")
            teams = [int(f.name[1:]) for f in folders if f.name[1:].isdigit()]
        writing: dict[TeamID, int] = {}
        for tcp in self.running.values():
            writing[tcp.box.team] = writing.get(tcp.box.team, 0) + tcp.size()
        for team in teams:
            finished = files.team_files(self.config, team)
            total = writing.get(team, 0) + sum(f.size for f in finished)
            for old in finished:
                if total <= self.team_bytes:
                    break
                old.path.unlink(missing_ok=True)
                total -= old.size
                self.stats.pruned += 1
                self.stats.pruned_bytes += old.size
                log.info("deleted %s (%d bytes): team %d is over captures.team_size", old.name, old.size, team)

    def _end_orphans(self, writing: Path) -> None:
        """SIGTERM the tcpdumps a dead capture process of this game left writing into `writing`
        (tcpdump drops the death signal with its privileges), and wait for them."""
        marker = f"-w\0{writing}/".encode()
        orphans = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(b"tcpdump\0") and marker in cmdline:
                orphans.append(int(proc.name))
        for pid in orphans:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            log.info("ended tcpdump %d left by an earlier capture process", pid)
        deadline = time.monotonic() + STOP_TIMEOUT
        while orphans and time.monotonic() < deadline:
            orphans = [pid for pid in orphans if Path(f"/proc/{pid}").exists()]
            time.sleep(0.05)


def _check_reachable(folder: Path, user: pwd.struct_passwd) -> None:
    """Refuse a folder the capture user cannot reach (tcpdump opens its files as that user)."""
    groups = set(os.getgrouplist(user.pw_name, user.pw_gid))
    for parent in reversed(folder.parents):
        mode = parent.stat()
        if mode.st_uid == user.pw_uid:
            allowed = mode.st_mode & stat.S_IXUSR
        elif mode.st_gid in groups:
            allowed = mode.st_mode & stat.S_IXGRP
        else:
            allowed = mode.st_mode & stat.S_IXOTH
        if not allowed:
            raise CaptureError(f"captures.dir: user {user.pw_name} (captures.user) cannot reach {folder}: {parent} is "
                               f"not searchable for it (chmod o+x {parent}, or choose another captures.dir)")


def _netns(pid: int) -> int | None:
    """The inode of a process's network namespace (None if it is gone)."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino if pid > 0 else None
    except OSError:
        return None


def _kernel_drops(stderr: bytes) -> int:
    """tcpdump's closing ``N packets dropped by kernel``."""
    for line in stderr.decode(errors="replace").splitlines():
        if line.endswith("packets dropped by kernel"):
            return int(line.split()[0])
    return 0


@dataclass
class Listing:
    """One row of `adrange captures list`."""

    team: str
    files: int
    released: int
    size: int
    rounds: list[Round] = field(default_factory=list)


def listing(config: GameConfig, store: GameStore) -> list[Listing]:
    """Per team: finished files, how many are released, their bytes and rounds."""
    state = store.state()
    rows = []
    for team in config.teams:
        found = files.team_files(config, team.id)
        rows.append(Listing(team.name, len(found),
                            len([f for f in found if files.released(f.round, state, config.captures.delay_rounds)]),
                            sum(f.size for f in found), sorted({f.round for f in found})))
    return rows
