"""One TCP submission connection as an asyncio protocol: bytes in, one reply line per flag line out.

A read whose flags the judge decides alone (garbage, forged, own, NOP, past the rate) is
answered inside `data_received`: no task, no timer, no await, no Redis. A read with flags
for the submit script (or the forcad team token to check) hands over to a task, and
reading pauses until its answer is written, so replies keep the order of the lines.

The idle deadline moves only when a complete line arrives (a trickle of bytes without a
newline does not hold a connection open); the session deadline never moves. Deadlines and
a peer that stops reading its replies are enforced by the server's sweep (`overdue`), not
by a timer per read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, cast

from ..budgets import Ticket
from ..teams import TeamDirectory
from ..types import TeamID
from .dialects import Dialect

if TYPE_CHECKING:
    from .tcp import SubmissionServer, _Pending

log = logging.getLogger("adrange.submit")
BATCH_LINES = 2048  # lines judged per step: one submit script call stays short for everyone else
WRITE_TIMEOUT = 10.0  # seconds a peer may leave its replies unread before the connection is cut
CLOSE_TIMEOUT = 2.0  # seconds a closing connection may take to deliver its last replies
TOKEN_LOCKED = b"Too many invalid team tokens from your address, try again later\n"


class LineBuffer:
    """What a client sent and was not answered yet, cut into lines.

    An unfinished line longer than the line length keeps only its first `line_length` + 1
    bytes (so it is judged invalid when its newline comes, as it would be in one segment);
    the rest of it is dropped as it arrives.
    """

    __slots__ = ("data", "dropping", "line_length")

    def __init__(self, line_length: int) -> None:
        self.data = b""
        self.dropping = False  # inside an overlong line, past what is kept of it
        self.line_length = line_length

    def feed(self, chunk: bytes) -> bool:
        """Add what was read; True when it completes a line."""
        newline = b"\n" in chunk
        if self.dropping:  # the rest of an overlong line
            if not newline:
                return False
            chunk, self.dropping = chunk[chunk.find(b"\n"):], False
        data = self.data + chunk if self.data else chunk
        start = data.rfind(b"\n") + 1
        if len(data) - start > self.line_length:
            data, self.dropping = data[:start + self.line_length + 1], True
        self.data = data
        return newline

    def take(self, most: int) -> list[bytes]:
        """Up to `most` complete lines, leaving the rest; a line longer than the line length
        cut to its first `line_length` + 1 bytes, exactly what `feed` keeps of one that
        arrives in pieces (so its verdict does not depend on segmentation)."""
        *complete, self.data = self.data.split(b"\n", most)
        keep = self.line_length + 1
        if not complete or max(map(len, complete)) < keep:
            return complete
        return [line if len(line) < keep else line[:keep] for line in complete]


class Session(asyncio.Protocol):
    """One admitted connection, from its greeting to its close; owns its connection ticket."""

    def __init__(self, server: SubmissionServer, dialect: Dialect, ticket: Ticket) -> None:
        self.server = server
        self.dialect = dialect
        self.ticket: Ticket | None = ticket
        self.source = ticket.source
        self.lines = LineBuffer(server.limits.line_length)
        self.transport: asyncio.Transport | None = None
        self.team: TeamID | None = None
        self._directory: TeamDirectory | None = None  # the directory `team` was looked up in
        self.identified = not dialect.by_token
        self.eof = False
        self.busy: asyncio.Task[None] | None = None  # answering through Redis; input waits
        self.ending = False  # end once what is being answered is written
        self.closed_at: float | None = None  # when the close began (the sweep aborts it past CLOSE_TIMEOUT)
        self.write_blocked_at: float | None = None  # when the peer stopped reading its replies
        now = asyncio.get_running_loop().time()
        self.line_due = now + server.limits.idle_timeout
        self.ends = now + server.limits.session_timeout

    # -- the transport's calls --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        self.server.sessions.add(self)
        self.transport.write(self.dialect.greeting)  # one write: farms read it with a short idle window

    def data_received(self, data: bytes) -> None:
        if self.closed_at is not None:
            return
        if self.lines.feed(data):
            self.line_due = asyncio.get_running_loop().time() + self.server.limits.idle_timeout
        if self.busy is None:
            self._advance()

    def eof_received(self) -> bool:
        self.eof = True
        if self.busy is None and self.closed_at is None:
            self._advance()
        return True  # the transport stays open to write the last replies; `close` ends it

    def pause_writing(self) -> None:
        self.write_blocked_at = asyncio.get_running_loop().time()
        self._pause_reading()

    def resume_writing(self) -> None:
        self.write_blocked_at = None
        if self.busy is None:
            self._resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed_at = self.closed_at or asyncio.get_running_loop().time()
        self.server.sessions.discard(self)
        if self.busy is not None:
            self.busy.cancel()
        self.release()

    # -- the session's work --

    def release(self) -> None:
        """Give the connection ticket back (once)."""
        if self.ticket is not None:
            self.server.budget.release(self.ticket)
            self.ticket = None

    def close(self) -> None:
        """End the session: the replies written so far still go out (within CLOSE_TIMEOUT)."""
        if self.closed_at is None and self.transport is not None:
            self.closed_at = asyncio.get_running_loop().time()
            self.transport.close()

    def abort(self) -> None:
        """Cut the connection now."""
        if self.transport is not None:
            self.transport.abort()

    def _advance(self) -> None:
        """Answer the complete lines read so far, handing over to a task when Redis is needed."""
        lines, dialect = self.lines, self.dialect
        while self.busy is None and self.closed_at is None:
            if b"\n" not in lines.data:
                if not self.eof:
                    return
                if not lines.data.strip():
                    self.close()
                    return
                lines.data += b"\n"  # the client half-closed after a last line without newline
            if not self.identified:
                token = lines.take(1)[0]
                if len(token) > lines.line_length:
                    self.close()
                    return
                self._hand_over(self._identify(token.strip().decode("utf-8", "replace")))
                return
            stripped = list(map(bytes.strip, lines.take(BATCH_LINES)))
            if dialect.empty_line_ends and b"" in stripped:  # the lines after it are not answered
                stripped, self.ending = stripped[:stripped.index(b"")], True
            flags = [flag for flag in stripped if flag] if b"" in stripped else stripped
            if flags:
                if not dialect.by_token:  # added, disabled or readdressed since the last read
                    directory = self.server.teams.get()
                    if directory is not self._directory:
                        self._directory, self.team = directory, directory.by_address(self.source)
                pending = self.server.decide_now(self.dialect, self.team, flags)
                if isinstance(pending, bytes):
                    self._write(pending)
                else:
                    self._hand_over(self._write_later(pending))
                    return
            if self.ending:
                self.close()
                return

    def _write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def _hand_over(self, work: Awaitable[None]) -> None:
        """Run `work` as the session's task; reading waits until it is done."""
        self._pause_reading()
        self.busy = asyncio.ensure_future(work)
        self.busy.add_done_callback(self._handed_back)

    def _handed_back(self, task: asyncio.Task[None]) -> None:
        self.busy = None
        if task.cancelled():
            return
        if task.exception() is not None:  # a bug must cost one connection, never the server
            log.error("submission session from %s failed", self.source, exc_info=task.exception())
            self.abort()
            return
        if self.ending:
            self.close()
            return
        if self.write_blocked_at is None:
            self._resume_reading()
        self._advance()

    async def _write_later(self, pending: _Pending) -> None:
        self._write(await self.server.decide_later(self.dialect, self.team, pending))

    async def _identify(self, token: str) -> None:
        """forcad: the first line is the team token; a wrong one ends the session."""
        server, source = self.server, self.source
        teams = server.teams.get()
        team = teams.by_token(token)
        guard = server.token_guard
        if not await asyncio.to_thread(guard.admits, source, team, teams.by_address(source)):
            self._write(TOKEN_LOCKED)
            self.ending = True
            return
        await asyncio.to_thread(guard.record, source, team is not None, f"team token on {self.dialect.name}")
        if team is None:
            self._write(self.dialect.token_bad)
            self.ending = True
            return
        self.team, self.identified = team, True
        self._write(self.dialect.token_ok)

    def _pause_reading(self) -> None:
        if self.transport is not None and self.transport.is_reading():
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.transport is not None and self.closed_at is None and not self.transport.is_reading():
            self.transport.resume_reading()

    def overdue(self, now: float) -> bool:
        """Past a deadline: closed by the sweep (idle or session time up, replies left unread,
        or a close that does not finish)."""
        if self.closed_at is not None:
            return now - self.closed_at > CLOSE_TIMEOUT
        if self.write_blocked_at is not None and now - self.write_blocked_at > WRITE_TIMEOUT:
            return True
        return self.busy is None and now >= min(self.line_due, self.ends)
