"""The TCP submission server: one asyncio loop, one listening port per dialect.

Reads whatever a client sends, answers every complete line in order with one write per
read, and runs at most one submit script call per read (none when every flag of it is
denied in memory), so a farm that sends its whole batch in one segment gets its answers at
once. Limits (line length: an overlong line is judged invalid; per-team rate, connection
budgets, idle and session timeouts, lockout after wrong tokens) answer or close; nothing a
client sends can stop the server.

Connections are accepted by hand rather than by `asyncio.start_server`: each is counted
against a `ConnectionBudget` (per source, per team network or /24, in total below the
open-file limit) straight after accept(), and a refused one gets one line and is closed
there, before any transport or task exists; refusals are logged as one summary per
`REFUSALS_LOG_SECONDS`. When accept() itself fails (no file left), the listener pauses
`ACCEPT_RETRY_SECONDS` and the failure is logged at most once per interval (asyncio 3.11's
own server goes on calling accept() after such an error, logging each failure and
scheduling one more retry, up to its backlog times per wake-up: CPython gh-151615).

Teams, tokens, networks and services come from the effective game (admin edits included),
which a background task re-reads every `FOLLOW_SECONDS`, publishing the refusal counts to
Redis for /metrics and writing the teams' submission history (`history.py`) on the way: a
batch with a flag to decide costs one Redis call, the submit script; a batch denied in full
(garbage, own flags, past the rate) costs none. An address-identified session finds its
team again on every read. SIGTERM (and SIGINT) stop the server after a last history write.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import math
import signal
import socket
import struct
from collections import Counter
from collections.abc import Callable

from ..budgets import ConnectionBudget, ThrottledLog, Ticket, default_network, total_cap
from ..config import GameConfig, Limits
from ..effective import EffectiveGame, PerVersion
from ..store import AsyncSubmitter, GameStore, connect_async
from ..teams import TeamDirectory
from ..types import TeamID
from .dialects import DIALECTS, Dialect
from .history import SubmissionHistory
from .judge import Judge
from .limits import SharedRate, TokenGuard
from .verdicts import Result, Verdict

log = logging.getLogger("adrange.submit")
accept_log = logging.getLogger("adrange.submit.accept")  # accept() failures come in storms: throttled
accept_log.addFilter(ThrottledLog())
READ_SIZE = 65536
WRITE_TIMEOUT = 10.0
CLOSE_TIMEOUT = 2.0
BACKLOG = 4096  # connections the kernel queues before accept() (capped by net.core.somaxconn): room for bursts
ACCEPT_BATCH = 256  # connections accepted per wake-up of a listener, so reads are served in between
ACCEPT_RETRY_SECONDS = 0.1
TOKEN_LOCKED = b"Too many invalid team tokens from your address, try again later\n"
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
        self.token_guard = TokenGuard(submitter.store, self.limits.token_failures, self.limits.token_lockout)
        self.listeners: list[socket.socket] = []
        self.sessions: set[asyncio.Task[None]] = set()
        self._follower: asyncio.Task[None] | None = None
        self._published: Counter[str] = Counter()
        self._refused_from: Counter[str] = Counter()  # source -> refusals since the last summary

    def _network_of(self, address: str) -> str:
        return self.networks.get()(address)

    async def start(self, ports: dict[str, int] | None = None, join: bool = False) -> dict[str, int]:
        """Listen on each configured dialect port (`join`: alongside another process already
        listening there); return dialect -> bound port."""
        sub = self.config.submission
        await asyncio.to_thread(self.game.refresh)
        self._follower = asyncio.create_task(self._follow_game())
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
        tasks = [*self.sessions, *([self._follower] if self._follower else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.to_thread(self.history.flush)

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
            task = asyncio.create_task(self._serve(dialect, conn, ticket))
            self.sessions.add(task)
            task.add_done_callback(self.sessions.discard)

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
                await asyncio.to_thread(self._publish, counts)
                await asyncio.to_thread(self.history.flush)
            except Exception:  # a bug here must not freeze the game as it is
                log.exception("reading the effective game, publishing the counts or writing the history failed")

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

    async def _serve(self, dialect: Dialect, conn: socket.socket, ticket: Ticket) -> None:
        """One admitted connection, start to end; never raises."""
        try:
            reader, writer = await asyncio.open_connection(sock=conn, limit=READ_SIZE)
            try:
                await self._session(dialect, _Input(reader, self.limits), writer, ticket.source)
            finally:
                await _close(writer)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:  # a bug must cost one connection, never the server
            log.exception("submission session from %s failed", ticket.source)
        finally:
            conn.close()  # already closed by its transport, unless the streams never started
            self.budget.release(ticket)

    async def _session(self, dialect: Dialect, lines: _Input, writer: asyncio.StreamWriter, source: str) -> None:
        writer.write(dialect.greeting)
        await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
        team: TeamID | None = None
        known: tuple[TeamDirectory | None, TeamID | None] = (None, None)  # the team of `source` in that directory
        if dialect.by_token:
            line = await lines.first_line()
            if line is None:
                return
            teams = self.teams.get()
            team = teams.by_token(line.strip().decode("utf-8", "replace"))
            if not await asyncio.to_thread(self.token_guard.admits, source, team, teams.by_address(source)):
                writer.write(TOKEN_LOCKED)
                await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
                return
            await asyncio.to_thread(self.token_guard.record, source, team is not None, f"team token on {dialect.name}")
            if team is None:
                writer.write(dialect.token_bad)
                await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
                return
            writer.write(dialect.token_ok)
        while True:
            ended = False
            if b"\n" not in lines.buffer and not await lines.read():
                if not lines.buffer.strip():
                    return
                lines.buffer += b"\n"  # the client half-closed after a last line without newline
                ended = True
            complete = lines.take()
            if dialect.empty_line_ends:
                for index, line in enumerate(complete):
                    if not line.strip():
                        complete, ended = complete[:index], True
                        break
            flags = [line.strip() for line in complete if line.strip()]
            if flags:
                if not dialect.by_token:  # added, disabled or readdressed since the last read
                    directory = self.teams.get()
                    if directory is not known[0]:
                        known = (directory, directory.by_address(source))
                    team = known[1]
                writer.write(await self.answer(dialect, team, flags))
            await _drain(writer)
            if ended:
                return

    async def answer(self, dialect: Dialect, team: TeamID | None, flags: list[bytes]) -> bytes:
        """Judge a batch of flag lines; return all reply lines as one block."""
        limit = self.limits.line_length
        results = await self.judge_flags(team, flags)
        self.history.record(team, dialect.name, flags, results)
        return b"".join([dialect.reply(f, r, limit) for f, r in zip(flags, results, strict=True)])

    async def judge_flags(self, team: TeamID | None, flags: list[bytes]) -> list[Result]:
        """Verdicts for one team's flags, in order."""
        if team is None:
            return [Result(Verdict.UNKNOWN_TEAM)] * len(flags)
        limit = self.limits.line_length
        flags = [b"" if len(f) > limit else f for f in flags]  # a too-long line is no flag
        judge = self.judges.get()
        batch = judge.prepare(team, flags)
        if batch.candidates:  # only they count against the rate: garbage costs no Redis call at all
            wanted = len(batch.candidates)
            granted = self.rate.take_leased(team, wanted)
            if granted is None:  # a few times a second per busy team
                await asyncio.to_thread(self.rate.refill, team, wanted)
                granted = self.rate.take_leased(team, wanted) or 0
            batch.limit(granted)
        try:
            answers = await self.submitter.submit(team, batch.candidates)
        except Exception:
            log.exception("submit script failed")
            return judge.failed(batch)
        return judge.finish(batch, answers)


class _Input:
    """A session's bytes read so far, under its two clocks.

    The idle deadline moves only when a complete line arrives (a trickle of bytes without a
    newline does not hold a connection open); the session deadline never moves. A read
    past either raises TimeoutError. Lines already read are answered first. An unfinished
    line longer than the line length keeps only its first `line_length` + 1 bytes (so it is
    judged invalid when its newline comes, as it would be in one segment); the rest of it
    is read and dropped.
    """

    def __init__(self, reader: asyncio.StreamReader, limits: Limits) -> None:
        self.reader = reader
        self.buffer = b""
        self.dropping = False  # inside an overlong line, past what is kept of it
        self.idle = limits.idle_timeout
        self.line_length = limits.line_length
        now = asyncio.get_running_loop().time()
        self.line_due = now + self.idle
        self.ends = now + limits.session_timeout

    async def read(self) -> bool:
        """Read once more into `buffer`; False at the end of the input."""
        now = asyncio.get_running_loop().time()
        wait = min(self.line_due, self.ends) - now
        if wait <= 0:
            raise TimeoutError
        async with asyncio.timeout(wait):  # no task per read, unlike wait_for
            chunk = await self.reader.read(READ_SIZE)
        if not chunk:
            return False
        if b"\n" in chunk:
            self.line_due = asyncio.get_running_loop().time() + self.idle
        if self.dropping:  # the rest of an overlong line
            cut = chunk.find(b"\n")
            if cut < 0:
                return True
            chunk, self.dropping = chunk[cut:], False
        self.buffer += chunk
        start = self.buffer.rfind(b"\n") + 1
        if len(self.buffer) - start > self.line_length:
            self.buffer, self.dropping = self.buffer[:start + self.line_length + 1], True
        return True

    def take(self) -> list[bytes]:
        """The complete lines in `buffer`, leaving the unfinished rest there; a line longer
        than the line length cut to its first `line_length` + 1 bytes, exactly what `read`
        keeps of one that arrives in pieces (so its verdict does not depend on segmentation)."""
        *complete, self.buffer = self.buffer.split(b"\n")
        keep = self.line_length + 1
        return [line if len(line) < keep else line[:keep] for line in complete]

    async def first_line(self) -> bytes | None:
        """One line (the team token); None at the end of the input or past the line length."""
        while b"\n" not in self.buffer:
            if len(self.buffer) > self.line_length or not await self.read():
                return None
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line


async def _drain(writer: asyncio.StreamWriter) -> None:
    """Wait (up to WRITE_TIMEOUT) for what is written to leave, when it has not all left yet."""
    if writer.transport.get_write_buffer_size() or writer.transport.is_closing():
        await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)


def _refuse(conn: socket.socket, reason: str) -> None:
    """One line saying why, then a reset: no transport, no task."""
    with contextlib.suppress(OSError):
        conn.send(f"{reason[0].upper()}{reason[1:]}\n".encode(), socket.MSG_DONTWAIT)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
    conn.close()


async def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), CLOSE_TIMEOUT)
    writer.transport.abort()  # a peer that reads nothing must not keep the socket open (no-op when closed)


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
