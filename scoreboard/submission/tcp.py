"""The TCP submission server: one asyncio loop, one listening port per dialect.

Each admitted connection is a `Session` protocol (session.py): whatever a client sends is
answered line by line in order, with one write per read and at most one submit script call
per `BATCH_LINES` lines (none when every flag of them is denied in memory), so a farm that
sends its whole batch in one segment gets its answers at once. Limits (line length: an
overlong line is judged invalid; per-team rate, connection budgets, idle and session
timeouts, checked by one sweep every `SWEEP_SECONDS` or sooner, lockout after wrong tokens)
answer or close; nothing a client sends can stop the server.

Connections are accepted by hand rather than by `asyncio.start_server`: each is counted
against a `ConnectionBudget` (per source, per team network or /24, in total below the
open-file limit) straight after accept(), and a refused one gets one line and is closed
there, before any transport or protocol exists; refusals are logged as one summary per
`REFUSALS_LOG_SECONDS`. When accept() itself fails (no file left), the listener pauses
`ACCEPT_RETRY_SECONDS` and the failure is logged at most once per interval (asyncio 3.11's
own server goes on calling accept() after such an error, logging each failure and
scheduling one more retry, up to its backlog times per wake-up: CPython gh-151615).

Teams, tokens, networks and services come from the effective game (admin edits included),
which a background task re-reads every `FOLLOW_SECONDS`, publishing the refusal counts to
Redis for /metrics and writing the teams' submission history (`history.py`) on the way: a
batch with a flag to decide costs one submit script call (sent in one pipeline with the
other sessions' waiting calls: `store.AsyncSubmitter`); a batch denied in full (garbage,
own flags, past the rate) costs none. An address-identified session finds its
team again on every read. SIGTERM (and SIGINT) stop the server after a last history write.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import math
import os
import signal
import socket
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from ..budgets import ConnectionBudget, ThrottledLog, Ticket, default_network, total_cap
from ..config import GameConfig
from ..effective import EffectiveGame, PerVersion
from ..store import AsyncSubmitter, GameStore, connect_async
from ..teams import TeamDirectory
from ..types import TeamID
from .dialects import DIALECTS, Dialect
from .history import SubmissionHistory
from .judge import Batch, Judge
from .limits import SharedRate, TokenGuard
from .session import Session
from .verdicts import Result, Verdict

log = logging.getLogger("adrange.submit")
_UNKNOWN_TEAM = Result(Verdict.UNKNOWN_TEAM)
accept_log = logging.getLogger("adrange.submit.accept")  # accept() failures come in storms: throttled
accept_log.addFilter(ThrottledLog())
BACKLOG = 4096  # connections the kernel queues before accept() (capped by net.core.somaxconn): room for bursts
ACCEPT_BATCH = 256  # connections accepted per wake-up of a listener, so reads are served in between
ACCEPT_RETRY_SECONDS = 0.1
PROCESS_LEASE_SECONDS = 5.0  # a killed submit server stops counting among the live ones after this
SWEEP_SECONDS = 0.5  # sessions are closed at most this long past a deadline (sooner with short timeouts)
FOLLOW_SECONDS = 1.0
REFUSALS_LOG_SECONDS = 10.0  # refusals are logged as one summary per this interval, never one by one
NETWORK_CACHE = 65536  # source addresses whose network is remembered (per game version)
# SO_LINGER on with 0 s: close() resets the connection, so a refused one leaves no TIME_WAIT
# socket (nor a 2-minute firewall connection-tracking entry) behind; the line sent before
# the reset still reaches the client.
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)


class PortInUse(OSError):
    """A dialect port is already served (by another submit-server unless `join` was asked)."""


def _probe_free(family: int, kind: int, proto: int, address: tuple) -> None:
    """Raise PortInUse when something listens on `address`: binding without SO_REUSEPORT
    fails even against a listener that set it, so a second server does not join silently."""
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise PortInUse(errno.EADDRINUSE, f"port {address[1]} on {address[0] or '*'} is already in use "
                            "(another submit-server of this game? start this one with --join to add a "
                            "process to it)") from None


def listen(host: str, port: int, join: bool = False) -> list[socket.socket]:
    """Nonblocking listening sockets on every address of `host` ("" = all), SO_REUSEPORT set
    so more processes can share them; unless `join`, a port someone listens on is PortInUse."""
    found = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(found):
            if not join and port:
                _probe_free(family, kind, proto, address)
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(BACKLOG)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def network_lookup(config: GameConfig) -> Callable[[str], str]:
    """Source address -> the team network holding it, or its /24 (/64), remembered for one game version."""
    teams = TeamDirectory(config)
    return functools.lru_cache(NETWORK_CACHE)(lambda address: teams.network_of(address) or default_network(address))


class SubmissionServer:
    """All TCP dialects of one game, sharing the judge, limits, connection budget and Redis connection."""

    def __init__(self, config: GameConfig, submitter: AsyncSubmitter) -> None:
        self.config = config
        self.limits = config.submission.limits
        self.game = EffectiveGame(submitter.store, max_age=math.inf)  # refreshed by _follow_game only
        self.judges = PerVersion(self.game, Judge)
        self.teams = PerVersion(self.game, TeamDirectory)
        self.networks = PerVersion(self.game, network_lookup)  # a flood asks once per connection
        self.submitter = submitter
        self.history = SubmissionHistory(submitter.store)
        self.rate = SharedRate(submitter.store, self.limits.rate_per_team)
        self.budget = ConnectionBudget(self.limits.connections_per_source, self.limits.connections_per_network,
                                       total_cap(self.limits.connections_total), self._network_of)
        self.accept_errors = 0
        self.member = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"  # in the live submit servers
        self.token_guard = TokenGuard(submitter.store, self.limits.token_failures, self.limits.token_lockout)
        self.listeners: list[socket.socket] = []
        self.sessions: set[Session] = set()
        self._admitting: set[asyncio.Task[None]] = set()
        self._background: list[asyncio.Task[None]] = []
        self._published: Counter[str] = Counter()
        self._refused_from: Counter[str] = Counter()  # source -> refusals since the last summary

    def _network_of(self, address: str) -> str:
        return self.networks.get()(address)

    async def start(self, ports: dict[str, int] | None = None, join: bool = False) -> dict[str, int]:
        """Listen on each configured dialect port (`join`: alongside another process already
        listening there); return dialect -> bound port."""
        sub = self.config.submission
        await asyncio.to_thread(self.game.refresh)
        await asyncio.to_thread(self._register)  # a joining process takes its share from the start
        self._background = [asyncio.create_task(self._follow_game()), asyncio.create_task(self._sweep())]
        wanted = ports if ports is not None else {
            "faust": sub.faust_port, "ructf": sub.ructf_port, "forcad": sub.forcad_port}
        bound = {}
        for name, port in wanted.items():
            if port is None:
                continue
            sockets = listen(sub.host, port, join)
            self.listeners.extend(sockets)
            for sock in sockets:
                self._resume(sock, DIALECTS[name])
            bound[name] = sockets[0].getsockname()[1]
        return bound

    async def close(self) -> None:
        """Stop listening, end every open session and write the history they left."""
        loop = asyncio.get_running_loop()
        for sock in self.listeners:
            loop.remove_reader(sock)
            sock.close()
        for session in list(self.sessions):
            session.abort()
        tasks = [*self._admitting, *self._background]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)  # the aborted sessions' connection_lost
        await asyncio.to_thread(self.history.flush)
        with contextlib.suppress(Exception):  # Redis down: the lease ends by itself
            await asyncio.to_thread(self.submitter.store.leave_processes, "submit", self.member)

    def _resume(self, sock: socket.socket, dialect: Dialect) -> None:
        if sock.fileno() != -1:  # not closed meanwhile
            asyncio.get_running_loop().add_reader(sock, self._accept, sock, dialect)

    def _accept(self, sock: socket.socket, dialect: Dialect) -> None:
        """Accept what is waiting on a listener: admitted connections get a session task."""
        for _ in range(ACCEPT_BATCH):
            try:
                conn, peer = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:  # EMFILE and kin: the connection stays queued until a file is free
                self.accept_errors += 1
                accept_log.error("%s: accept() failed (%s), retrying every %gs", dialect.name, exc,
                                 ACCEPT_RETRY_SECONDS)
                loop = asyncio.get_running_loop()
                loop.remove_reader(sock)
                loop.call_later(ACCEPT_RETRY_SECONDS, self._resume, sock, dialect)
                return
            ticket = self.budget.acquire(peer[0])
            if isinstance(ticket, str):
                _refuse(conn, ticket)
                self._refused_from[peer[0]] += 1
                continue
            task = asyncio.create_task(self._admit(dialect, conn, ticket))
            self._admitting.add(task)
            task.add_done_callback(self._admitting.discard)

    async def _follow_game(self) -> None:
        """Every FOLLOW_SECONDS, off the event loop: re-read the effective game, publish the
        refusal counts, write the submission history."""
        loop = asyncio.get_running_loop()
        summary_due = loop.time() + REFUSALS_LOG_SECONDS
        while True:
            await asyncio.sleep(FOLLOW_SECONDS)
            if loop.time() >= summary_due:
                self._log_refusals()
                summary_due = loop.time() + REFUSALS_LOG_SECONDS
            counts = Counter({f"tcp_refused:{reason}": n for reason, n in self.budget.refused.items()})
            counts["tcp_accept_errors"] = self.accept_errors
            try:
                await asyncio.to_thread(self.game.refresh)
                await asyncio.to_thread(self._register)
                await asyncio.to_thread(self._publish, counts)
                await asyncio.to_thread(self.history.flush)
            except Exception:  # a bug here must not freeze the game as it is
                log.exception("reading the effective game, publishing the counts or writing the history failed")

    def _register(self) -> None:
        """Renew this process's lease among the game's submit servers and take its share of
        the connection caps (SO_REUSEPORT or a balancer spreads connections over all of them)."""
        self.budget.share(self.submitter.store.live_processes("submit", self.member, PROCESS_LEASE_SECONDS))

    def _log_refusals(self) -> None:
        """One line for the refusals since the last one: how many, and the sources refused most."""
        refused, self._refused_from = self._refused_from, Counter()
        if refused:
            top = ", ".join(f"{source} {n}" for source, n in refused.most_common(3))
            log.warning("refused %d connections from %d sources in the last %gs (most: %s); open %d of %d",
                        refused.total(), len(refused), REFUSALS_LOG_SECONDS, top, self.budget.open, self.budget.total)

    def _publish(self, counts: Counter[str]) -> None:
        """Add what `counts` grew by since the last call to the game's counters (summed over processes)."""
        self.submitter.store.add_stats(counts - self._published)
        self._published = counts

    def decide_now(self, dialect: Dialect, team: TeamID | None, flags: list[bytes]) -> bytes | _Pending:
        """The reply block to a batch of flag lines when the judge decides every one alone;
        otherwise what `decide_later` finishes through Redis."""
        if team is None:
            return self._reply(dialect, team, flags, [_UNKNOWN_TEAM] * len(flags))
        limit = self.limits.line_length
        flags_in = flags if max(map(len, flags)) <= limit else [b"" if len(f) > limit else f for f in flags]
        # (a too-long line is no flag)
        judge = self.judges.get()
        batch = judge.prepare(team, flags_in)
        rated = True
        if batch.candidates:  # only they count against the rate: garbage costs no Redis call at all
            granted = self.rate.take_leased(team, len(batch.candidates))
            if granted is None:  # a few times a second per busy team: the lease is renewed in Redis
                rated = False
            else:
                batch.limit(granted)
        if rated and not batch.candidates:
            return self._reply(dialect, team, flags, judge.finish(batch, []))
        return _Pending(judge, batch, flags, rated)

    async def decide_later(self, dialect: Dialect, team: TeamID | None, pending: _Pending) -> bytes:
        """The reply block to a batch that needs Redis (a rate lease, the submit script)."""
        judge, batch = pending.judge, pending.batch
        if not pending.rated:
            wanted = len(batch.candidates)
            await asyncio.to_thread(self.rate.refill, batch.attacker, wanted)
            batch.limit(self.rate.take_leased(batch.attacker, wanted) or 0)
        try:
            answers = await self.submitter.submit(batch.attacker, batch.candidates)
        except Exception:
            log.exception("submit script failed")
            results = judge.failed(batch)
        else:
            results = judge.finish(batch, answers)
        return self._reply(dialect, team, pending.flags, results)

    def _reply(self, dialect: Dialect, team: TeamID | None, flags: list[bytes], results: list[Result]) -> bytes:
        """Record the verdicts in the history; return all reply lines as one block."""
        self.history.record(team, dialect.name, flags, results)
        return dialect.replies(flags, results, self.limits.line_length)

    async def _admit(self, dialect: Dialect, conn: socket.socket, ticket: Ticket) -> None:
        """Hand an admitted connection to its `Session` (which gives its ticket back)."""
        session = Session(self, dialect, ticket)
        try:
            await asyncio.get_running_loop().connect_accepted_socket(lambda: session, conn)
        except Exception as exc:  # gone before its transport existed
            log.debug("connection from %s lost before its session began: %s", ticket.source, exc)
            conn.close()
            session.release()

    async def _sweep(self) -> None:
        """Close the sessions past a deadline, a few times per shortest timeout."""
        loop = asyncio.get_running_loop()
        every = min(SWEEP_SECONDS, self.limits.idle_timeout / 4, self.limits.session_timeout / 4)
        while True:
            await asyncio.sleep(every)
            now = loop.time()
            for session in [s for s in self.sessions if s.overdue(now)]:
                if session.closed_at is None and session.write_blocked_at is None:
                    session.close()  # idle or out of time: what it was sent still goes out
                else:
                    session.abort()


@dataclass(slots=True)
class _Pending:
    """A batch waiting for Redis: the judge's work so far and the lines it answers."""

    judge: Judge
    batch: Batch
    flags: list[bytes]
    rated: bool  # the team's rate already applied (else a lease must be renewed first)


def _refuse(conn: socket.socket, reason: str) -> None:
    """One line saying why, then a reset: no transport, no task."""
    with contextlib.suppress(OSError):
        conn.send(f"{reason[0].upper()}{reason[1:]}\n".encode(), socket.MSG_DONTWAIT)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
    conn.close()


async def serve(config: GameConfig, ready: asyncio.Event | None = None, join: bool = False) -> None:
    """Run the TCP submission server until cancelled or SIGTERM (`join`: share ports a running one holds)."""
    logging.getLogger("asyncio").addFilter(ThrottledLog())  # a callback failing alike on every wake-up
    store = GameStore(config)
    store.init()
    server = SubmissionServer(config, AsyncSubmitter(store, connect_async(config.redis_url)))
    try:
        bound = await server.start(join=join)
    except OSError:
        await server.close()
        raise
    log.info("submission listening: %s", ", ".join(f"{d} {p}" for d, p in bound.items()))
    if ready:
        ready.set()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        await server.close()
