"""A running game under fire: its real processes, flag traffic from several farm-like
clients that reconnect and resubmit, and the ledger checks that no accepted flag was lost
or counted twice.

`start_platform` starts a private redis-server (its own dir and port, so it can be killed)
with the real `submit-server` and `web` processes. `Traffic` runs one client per dialect
(faust, ructf, forcad over TCP, HTTP PUT /flags), each as a different attacking team with
its own flags; every client notes its accepted flags and every outage it lived through.
`check_ledger` pauses the clients and proves the capture stream and the live scores right.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis
import requests

from deploy.redis_server import RedisServer, free_port
from scoreboard.config import GameConfig, parse_config
from scoreboard.flags import FlagCodec
from scoreboard.ranking import rank
from scoreboard.scoring.replay import replay
from scoreboard.store import GameStore
from scoreboard.types import GameState, Status
from tests.conftest import game_data
from tests.processes import Process, write_game

ROUND = 1000  # the game runs at this round; flags of the rounds before it are all valid
TCP_DIALECTS = ("faust", "ructf", "forcad")
GREETINGS = {"faust": b"One flag per line please!\n\n", "ructf": b"empty line to exit)\n",
             "forcad": b"enter your team token:\n"}


@dataclass
class Platform:
    """A game with its redis-server, submission server and web process."""

    config: GameConfig
    store: GameStore
    redis: RedisServer
    submit: Process
    web: Process
    ports: dict[str, int]
    web_url: str

    def stop(self) -> None:
        for process in (self.submit, self.web):
            process.kill()
        self.redis.cleanup()

    def restart_submit(self) -> None:
        self.submit.start(("127.0.0.1", self.ports["faust"]))

    def restart_web(self) -> None:
        self.web.start(("127.0.0.1", int(self.web_url.rsplit(":", 1)[1])))


def start_platform(work: Path, teams: int = 5, services: int = 2, **limits: float) -> Platform:
    """Start Redis, `submit-server` and `web` for a running game at round `ROUND`
    (submission limits as given, no rate limit unless asked)."""
    server = RedisServer(work / "redis").start() if (work / "redis").mkdir() is None else None
    assert server is not None
    data = game_data(server.url, teams=teams, services=services, flag_lifetime=ROUND)
    ports = {d: free_port() for d in TCP_DIALECTS}
    data["submission"] = {**{f"{d}_port": p for d, p in ports.items()},
                          "limits": {"rate_per_team": 10**6, **limits}}
    config = parse_config(data)
    store = GameStore(config, redis.Redis.from_url(server.url, decode_responses=True))
    store.init()
    store.set_state(GameState.RUNNING)
    store.open_round(ROUND)
    path = write_game(work / "game.yml", data)
    web_port = free_port()
    submit = Process(["submit-server", "-c", str(path)], work, "submit").start(("127.0.0.1", ports["faust"]))
    web = Process(["web", "-c", str(path), "--port", str(web_port)], work, "web").start(("127.0.0.1", web_port))
    return Platform(config, store, server, submit, web, ports, f"http://127.0.0.1:{web_port}")


def next_round(platform: Platform, statuses: tuple[Status, ...] = (Status.OK, Status.DOWN, Status.MUMBLE)) -> int:
    """Give every box a status, close the current round and open the next; return the new round."""
    store = platform.store
    current = store.state()["round"]
    for index, box in enumerate(store.active_boxes()):
        team, service = (int(x) for x in box.split(":"))
        store.record_check(current, team, service, statuses[index % len(statuses)])
    assert store.close_round(current)
    assert store.open_round(current + 1)
    return current + 1


def flag_stream(config: GameConfig, attacker: int) -> Iterator[str]:
    """Distinct valid flags of the other playing teams, newest rounds first, for one attacker."""
    codec = FlagCodec(config.game.secret, config.game.flag_prefix)
    victims = [t.id for t in config.playing_teams if t.id != attacker]
    for round_ in range(ROUND - 1, 0, -1):
        for victim in victims:
            for service in config.services:
                for slot in range(16):
                    yield codec.generate(round_, victim, service.id, slot)


def verdict(reply: str) -> str:
    """'accepted', 'duplicate', 'retry' (server-side trouble) or 'other' for one reply line."""
    if "Accepted" in reply:
        return "accepted"
    if "already submitted" in reply:
        return "duplicate"
    if "internal error" in reply:
        return "retry"
    return "other"


class Client(threading.Thread):
    """One farm: submits its flags in small batches, retries a batch until every flag in it
    has a final verdict, and keeps the time of each outage it saw."""

    kind = "?"

    def __init__(self, platform: Platform, team: int, batch: int = 8, pause: float = 0.02) -> None:
        super().__init__(daemon=True, name=f"{self.kind}-client")
        self.platform = platform
        self.team = team
        self.batch = batch
        self.pause = pause
        self.flags = flag_stream(platform.config, team)
        self.accepted: set[str] = set()
        self.duplicates: set[str] = set()
        self.unexpected: list[tuple[str, str]] = []
        self.outages: list[tuple[float, float, str]] = []  # (start, end, first error seen)
        self.down_since: float | None = None
        self.down_reason = ""
        self.answered = 0
        self.stop = threading.Event()
        self.hold = threading.Event()
        self.idle = threading.Event()

    # Subclasses: send a batch, return one reply text per flag (raise OSError and kin on trouble).
    def exchange(self, flags: list[str]) -> list[str]:
        raise NotImplementedError

    def disconnect(self) -> None:
        """Drop any connection (the next exchange reconnects)."""

    def run(self) -> None:
        pending: list[str] = []
        while not self.stop.is_set():
            if not pending and self.hold.is_set():
                self.idle.set()
                time.sleep(0.01)
                continue
            self.idle.clear()
            pending = pending or [next(self.flags) for _ in range(self.batch)]
            try:
                replies = self.exchange(pending)
            except (OSError, requests.RequestException, ValueError) as exc:
                self._failed(f"{type(exc).__name__}: {exc}"[:120])
                self.disconnect()
                time.sleep(0.05)
                continue
            retry = []
            for flag, reply in zip(pending, replies, strict=True):
                kind = verdict(reply)
                if kind == "accepted":
                    self.accepted.add(flag)
                elif kind == "duplicate":
                    self.duplicates.add(flag)
                elif kind == "retry":
                    retry.append(flag)
                else:
                    self.unexpected.append((flag, reply))
            self.answered += len(pending) - len(retry)
            pending = retry
            if retry:
                self._failed(f"reply {next(r for r in replies if verdict(r) == 'retry')!r}"[:120])
                time.sleep(0.05)
            else:
                self._recovered()
                time.sleep(self.pause)
        self.disconnect()

    def _failed(self, reason: str) -> None:
        if self.down_since is None:
            self.down_since, self.down_reason = time.monotonic(), reason

    def _recovered(self) -> None:
        if self.down_since is not None:
            self.outages.append((self.down_since, time.monotonic(), self.down_reason))
            self.down_since = None


class TcpClient(Client):
    """A TCP farm speaking one dialect; identified by source address or by token."""

    def __init__(self, platform: Platform, team: int, dialect: str, **kw: float) -> None:
        self.kind = dialect
        super().__init__(platform, team, **kw)
        self.dialect = dialect
        self.sock: socket.socket | None = None
        self.buffer = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.platform.ports[self.dialect]), timeout=3,
                                        source_address=(f"127.0.{self.team}.5", 0))
        self.sock, self.buffer = sock, b""
        self._read_until(GREETINGS[self.dialect])
        if self.dialect == "forcad":
            sock.sendall(self.platform.config.team(self.team).token.encode() + b"\n")
            self._read_until(b"one in a line:\n")
        return sock

    def _read_until(self, end: bytes) -> bytes:
        assert self.sock is not None
        while end not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the server")
            self.buffer += chunk
        got, _, self.buffer = self.buffer.partition(end)
        return got + end

    def exchange(self, flags: list[str]) -> list[str]:
        sock = self.sock or self._connect()
        sock.sendall("".join(f + "\n" for f in flags).encode())
        replies = [self._read_until(b"\n").decode().rstrip("\n") for _ in flags]
        for flag, reply in zip(flags, replies, strict=True):
            if not (reply.startswith(f"{flag} ") or reply.startswith(f"[{flag}] ")):
                raise ValueError(f"reply out of order: {reply!r} for {flag}")
        return replies

    def disconnect(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None


class HttpClient(Client):
    """An HTTP farm: PUT /flags with its team token."""

    kind = "http"

    def __init__(self, platform: Platform, team: int, **kw: float) -> None:
        super().__init__(platform, team, **kw)
        self.session = requests.Session()

    def exchange(self, flags: list[str]) -> list[str]:
        reply = self.session.put(f"{self.platform.web_url}/flags", data=json.dumps(flags), timeout=3,
                                 headers={"X-Team-Token": self.platform.config.team(self.team).token})
        if reply.status_code != 200:
            raise ValueError(f"HTTP {reply.status_code}")
        return [item["msg"] for item in reply.json()]

    def disconnect(self) -> None:
        self.session.close()
        self.session = requests.Session()


@dataclass
class Traffic:
    """The clients of one game, started together."""

    clients: list[Client] = field(default_factory=list)

    @classmethod
    def start(cls, platform: Platform) -> Traffic:
        """One client per TCP dialect (teams 1-3) and one over HTTP (team 4)."""
        clients: list[Client] = [TcpClient(platform, team, d) for team, d in enumerate(TCP_DIALECTS, 1)]
        clients.append(HttpClient(platform, len(clients) + 1))
        for client in clients:
            client.start()
        return cls(clients)

    def stop(self) -> None:
        for client in self.clients:
            client.stop.set()
        for client in self.clients:
            client.join(10)

    def wait_answered(self, more: int, timeout: float = 30) -> None:
        """Wait until every client got `more` further final verdicts."""
        targets = [c.answered + more for c in self.clients]
        deadline = time.monotonic() + timeout
        while any(c.answered < t for c, t in zip(self.clients, targets, strict=True)):
            if time.monotonic() > deadline:
                stuck = [(c.kind, c.down_reason) for c, t in zip(self.clients, targets, strict=True) if c.answered < t]
                raise AssertionError(f"clients made no progress in {timeout}s: {stuck}")
            time.sleep(0.05)

    @contextlib.contextmanager
    def held(self, timeout: float = 30) -> Iterator[None]:
        """Pause every client between batches (none with a flag still unanswered)."""
        for client in self.clients:
            client.hold.set()
        try:
            for client in self.clients:
                assert client.idle.wait(timeout), f"{client.kind} client did not settle"
            yield
        finally:
            for client in self.clients:
                client.hold.clear()
                client.idle.clear()

    def outages_since(self, since: float) -> dict[str, float]:
        """Per client, the seconds it could not submit after `since` (0 when it never noticed)."""
        return {c.kind: sum(end - start for start, end, _ in c.outages if end > since) for c in self.clients}

    def reasons_since(self, since: float) -> dict[str, str]:
        """Per client, the first error it saw in its outages after `since`."""
        return {c.kind: next((r for s, e, r in c.outages if e > since), "") for c in self.clients}


def check_ledger(platform: Platform, traffic: Traffic) -> int:
    """With the clients paused: every flag answered "Accepted" is in the capture stream exactly
    once, every capture was answered Accepted or (after a lost reply) duplicate, no reply was
    unexpected, and live scores equal a recompute from the event streams. Returns the captures."""
    store, config = platform.store, platform.config
    with traffic.held():
        captures = list(store.events("capture"))
        by_pair = Counter((int(e["a"]), e["f"]) for e in captures)
        twice = [pair for pair, n in by_pair.items() if n > 1]
        assert not twice, f"captured more than once: {twice[:5]}"
        for client in traffic.clients:
            assert not client.unexpected, f"{client.kind}: {client.unexpected[:3]}"
            captured = {f for a, f in by_pair if a == client.team}
            lost = client.accepted - captured
            assert not lost, f"{client.kind}: {len(lost)} accepted flags missing from the capture stream"
            unanswered = captured - client.accepted - client.duplicates
            assert not unanswered, f"{client.kind}: {len(unanswered)} captures the client never got a verdict for"
        live = store.counters()
        rebuilt = replay(config.game.scoring, captures, store.events("round"))
        assert live == rebuilt
        assert rank(config, live) == rank(config, rebuilt)
    return len(captures)


def lost_replies(traffic: Traffic) -> dict[str, int]:
    """Per client, flags accepted by Redis whose reply never arrived (answered duplicate on resubmit)."""
    return {c.kind: len(c.duplicates) for c in traffic.clients}


def rss_kib(pid: int) -> int:
    """Resident memory of a process, in KiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")
