"""The TCP submission server: one asyncio server, one port per dialect.

Reads whatever a client sends, answers every complete line in order with one write per
read, and runs one submit script call per read, so a farm that sends its whole batch in
one segment gets its answers at once. Limits (line length, per-team rate, connections
per source, idle timeout, lockout after wrong tokens) answer or close; nothing a client sends can stop the server.

Teams, tokens, networks and services come from the effective game (admin edits included),
which a background task re-reads every `FOLLOW_SECONDS`: a flag batch costs one Redis call,
the submit script. An address-identified session finds its team again on every read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re

from ..config import GameConfig
from ..effective import EffectiveGame, PerVersion
from ..store import AsyncSubmitter, GameStore, connect_async
from ..teams import TeamDirectory
from ..types import TeamID
from .dialects import DIALECTS, Dialect
from .judge import Judge
from .limits import ConnectionCounter, RateLimiter, TokenGuard
from .verdicts import Result, Verdict

log = logging.getLogger("adrange.submit")
_UNPRINTABLE = re.compile(r"[^\x21-\x7e]")  # spaces too: the echo is the reply's first field
READ_SIZE = 65536
WRITE_TIMEOUT = 10.0
TOKEN_LOCKED = b"Too many invalid team tokens from your address, try again later\n"
FOLLOW_SECONDS = 1.0


def printable(raw: bytes, limit: int) -> str:
    """A submitted line made safe to echo back: printable ASCII without spaces, cut short."""
    return _UNPRINTABLE.sub("?", raw[:limit].decode("ascii", "replace"))


class SubmissionServer:
    """All TCP dialects of one game, sharing the judge, limits and Redis connection."""

    def __init__(self, config: GameConfig, submitter: AsyncSubmitter) -> None:
        self.config = config
        self.limits = config.submission.limits
        self.game = EffectiveGame(submitter.store, max_age=math.inf)  # refreshed by _follow_game only
        self.judges = PerVersion(self.game, Judge)
        self.teams = PerVersion(self.game, TeamDirectory)
        self.submitter = submitter
        self.rate = RateLimiter(self.limits.rate_per_team)
        self.connections = ConnectionCounter(self.limits.connections_per_source)
        self.token_guard = TokenGuard(self.limits.token_failures, self.limits.token_lockout)
        self.servers: list[asyncio.base_events.Server] = []
        self.sessions: set[asyncio.Task[None]] = set()
        self._follower: asyncio.Task[None] | None = None

    async def start(self, ports: dict[str, int] | None = None) -> dict[str, int]:
        """Listen on each configured dialect port; return dialect -> bound port."""
        sub = self.config.submission
        await asyncio.to_thread(self.game.refresh)
        self._follower = asyncio.create_task(self._follow_game())
        wanted = ports if ports is not None else {
            "faust": sub.faust_port, "ructf": sub.ructf_port, "forcad": sub.forcad_port}
        bound = {}
        for name, port in wanted.items():
            if port is None:
                continue
            dialect = DIALECTS[name]
            server = await asyncio.start_server(
                lambda r, w, d=dialect: self.handle(d, r, w), sub.host, port,
                reuse_port=True, limit=READ_SIZE, backlog=1024)
            self.servers.append(server)
            bound[name] = server.sockets[0].getsockname()[1]
        return bound

    async def close(self) -> None:
        """Stop listening and end every open session."""
        tasks = [*self.sessions, *([self._follower] if self._follower else [])]
        for server in self.servers:
            server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for server in self.servers:
            await server.wait_closed()

    async def _follow_game(self) -> None:
        """Re-read the effective game every FOLLOW_SECONDS, off the event loop."""
        while True:
            await asyncio.sleep(FOLLOW_SECONDS)
            try:
                await asyncio.to_thread(self.game.refresh)
            except Exception:  # a bug here must not freeze the game as it is
                log.exception("reading the effective game failed")

    async def handle(self, dialect: Dialect, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client connection, start to end; never raises."""
        task = asyncio.current_task()
        assert task is not None
        self.sessions.add(task)
        task.add_done_callback(self.sessions.discard)
        peer = writer.get_extra_info("peername") or ("?", 0)
        source = peer[0]
        if not self.connections.acquire(source):
            await _send_and_close(writer, b"Too many connections from your address\n")
            return
        try:
            await self._session(dialect, reader, writer, source)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:  # a bug must cost one connection, never the server
            log.exception("submission session from %s failed", source)
        finally:
            self.connections.release(source)
            await _close(writer)

    async def _session(self, dialect: Dialect, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter, source: str) -> None:
        writer.write(dialect.greeting)
        await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
        buffer = b""
        team: TeamID | None = None
        if dialect.by_token:
            line, buffer = await self._read_line(reader, buffer)
            if line is None:
                return
            if self.token_guard.locked(source):
                writer.write(TOKEN_LOCKED)
                await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
                return
            team = self.teams.get().by_token(line.strip().decode("utf-8", "replace"))
            self.token_guard.record(source, team is not None, f"team token on {dialect.name}")
            if team is None:
                writer.write(dialect.token_bad)
                await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
                return
            writer.write(dialect.token_ok)
        while True:
            if b"\n" not in buffer:
                chunk = await asyncio.wait_for(reader.read(READ_SIZE), self.limits.idle_timeout)
                if not chunk:
                    return
                buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            too_long = len(buffer) > self.limits.line_length  # answered up to here, then closed
            ended = False
            if dialect.empty_line_ends:
                for index, line in enumerate(lines):
                    if not line.strip():
                        lines, ended = lines[:index], True
                        break
            flags = [line.strip() for line in lines if line.strip()]
            if flags:
                if not dialect.by_token:  # added, disabled or readdressed since the last read
                    team = self.teams.get().by_address(source)
                replies = await self.answer(dialect, team, flags)
                writer.write(replies)
            if too_long and not ended:
                writer.write(f"Line too long (limit {self.limits.line_length} bytes), closing\n".encode())
            await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
            if ended or too_long:
                return

    async def _read_line(self, reader: asyncio.StreamReader, buffer: bytes) -> tuple[bytes | None, bytes]:
        while b"\n" not in buffer:
            if len(buffer) > self.limits.line_length:
                return None, b""
            chunk = await asyncio.wait_for(reader.read(READ_SIZE), self.limits.idle_timeout)
            if not chunk:
                return None, b""
            buffer += chunk
        line, rest = buffer.split(b"\n", 1)
        return line, rest

    async def answer(self, dialect: Dialect, team: TeamID | None, flags: list[bytes]) -> bytes:
        """Judge a batch of flag lines; return all reply lines as one block."""
        limit = self.limits.line_length
        results = await self.judge_flags(team, flags)
        return "".join(dialect.reply(printable(f, limit), r) for f, r in zip(flags, results, strict=True)).encode()

    async def judge_flags(self, team: TeamID | None, flags: list[bytes]) -> list[Result]:
        """Verdicts for one team's flags, in order."""
        if team is None:
            return [Result(Verdict.UNKNOWN_TEAM)] * len(flags)
        limit = self.limits.line_length
        flags = [b"" if len(f) > limit else f for f in flags]  # a too-long line is no flag
        judge = self.judges.get()
        batch = judge.prepare(team, flags, self.rate.take(team, len(flags)))
        try:
            answers = await self.submitter.submit(team, batch.candidates, batch.denied())
        except Exception:
            log.exception("submit script failed")
            return judge.failed(batch)
        return judge.finish(batch, answers)


async def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 2)


async def _send_and_close(writer: asyncio.StreamWriter, text: bytes) -> None:
    with contextlib.suppress(Exception):
        writer.write(text)
        await asyncio.wait_for(writer.drain(), 2)
    await _close(writer)


async def serve(config: GameConfig, ready: asyncio.Event | None = None) -> None:
    """Run the TCP submission server until cancelled."""
    store = GameStore(config)
    store.init()
    server = SubmissionServer(config, AsyncSubmitter(store, connect_async(config.redis_url)))
    bound = await server.start()
    log.info("submission listening: %s", ", ".join(f"{d} {p}" for d, p in bound.items()))
    if ready:
        ready.set()
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()
