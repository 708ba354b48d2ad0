"""The web server's edge: connection budgets and deadlines in front of the Flask app.

`EdgeServer` is gevent's WSGIServer with gevent-websocket's handler (when installed; plain
pywsgi otherwise, as Flask-SocketIO's own ``run`` builds it), plus:

- **connection budgets** (`scoreboard.budgets`: per source, per team network or /24, in
  total below the open-file limit) checked straight after accept(): a refused connection
  gets a one-line ``503`` and is closed there, in the accept loop, before any greenlet,
  buffer or request parsing exists;
- **a header deadline**: a request's line and headers must arrive within
  ``web.header_timeout`` seconds in all (counted from accept, or from the first byte of a
  later request on a kept-alive connection), however the client trickles them;
- **a body deadline**: ``web.body_timeout`` seconds in all for a request's body, from its
  first read (the application's, or the server's own reading of what it left); past it the
  client gets ``408`` if nothing was answered yet, and the connection ends;
- **an idle deadline**: a kept-alive connection waits ``web.idle_timeout`` seconds for its
  next request, and a response the client leaves unread that long ends the connection;
- **accept() failures** (no file left) pause accepting briefly (gevent's back-off) and are
  logged at most once per interval, never as a traceback.

A websocket (board spectator) counts against the budgets for as long as it lives, but
once upgraded no deadline applies to it: Engine.IO's pings watch it.

`PollingPostCheck` answers 400 to an Engine.IO polling POST whose payload Engine.IO
cannot decode (too many packets, not UTF-8, a bad packet) or whose session closed
meanwhile, which python-engineio would otherwise log as a traceback and answer with 200
or 500.

Every `FOLLOW_SECONDS` a background greenlet re-reads the team networks (accept() runs in
gevent's hub, where no I/O may block) and adds what the refusal, timeout and accept-error
counts grew by to the game's counters in Redis (``web_refused:<reason>``,
``web_timeout:<kind>``, ``web_accept_errors``), summed over web nodes, for /metrics;
every `SUMMARY_SECONDS` with news it logs one summary line.
"""

from __future__ import annotations

import _socket
import io
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import gevent
from engineio.payload import Payload
from gevent import Timeout, pywsgi
from gevent.socket import socket as GeventSocket
from greenlet import GreenletExit

from ..budgets import ConnectionBudget, ThrottledLog, Ticket, total_cap
from ..config import Web
from ..effective import PerVersion
from ..store import GameStore
from ..teams import TeamDirectory

try:  # Flask-SocketIO's choice: gevent-websocket's handler when installed
    from geventwebsocket.handler import WebSocketHandler as _BaseHandler
except ImportError:  # pragma: no cover - websockets then come from simple-websocket
    _BaseHandler = pywsgi.WSGIHandler

log = logging.getLogger("adrange.web.edge")
log.addFilter(ThrottledLog())
http_log = logging.getLogger("adrange.web.http")  # gevent's per-request errors (formatted by gevent)
http_log.addFilter(ThrottledLog(per_logger=True))

FOLLOW_SECONDS = 1.0
SUMMARY_SECONDS = 10.0
BACKLOG = 2048  # connections the kernel queues for accept(), to absorb a burst (capped by net.core.somaxconn)
NETWORK_CACHE = 65536  # source addresses remembered with their network, per game version
RETRY_AFTER = 10
REFUSALS_PER_READ = 16  # refused connections answered per accept call before gevent runs anything else


class Expired(BaseException):
    """A connection's deadline passed (`kind`: header, body or idle).

    A BaseException, like gevent's own Timeout, so that no application ``except
    Exception`` takes it for an error of its own: it reaches the handler."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class AcceptPaused(GreenletExit):
    """Raised from accept() after a logged failure: gevent's server then pauses accepting
    (doubling its delay up to a second) without printing a traceback (a GreenletExit is
    "not an error" to gevent's hub)."""


class EdgeStats:
    """What the edge refused, timed out and failed to accept, and what it holds open."""

    def __init__(self, budget: ConnectionBudget) -> None:
        self.budget = budget
        self.timeouts: Counter[str] = Counter()  # header, body, idle, send
        self.accept_errors = 0
        self.websockets = 0  # open upgraded connections

    def counters(self) -> Counter[str]:
        """The running totals, named as in the game's counters."""
        counts = Counter({f"web_refused:{reason}": n for reason, n in self.budget.refused.items()})
        counts.update({f"web_timeout:{kind}": n for kind, n in self.timeouts.items()})
        counts["web_accept_errors"] = self.accept_errors
        return +counts

    def summary(self, grown: Counter[str]) -> str:
        """One log line: what is open, and what `grown` says happened since the last one."""
        news = ", ".join(f"{name} +{n}" for name, n in sorted(grown.items()))
        return f"{self.budget.open} connections open ({self.websockets} websockets); {news}"


class _Networks:
    """Source address -> the team network holding it, from the effective game as of the
    last `refresh` (called off the hub: the lookup itself does no I/O)."""

    def __init__(self, directory: PerVersion[TeamDirectory]) -> None:
        self.directory = directory
        self.current = directory.get()
        self.cache: dict[str, str | None] = {}

    def refresh(self) -> None:
        current = self.directory.get()
        if current is not self.current:
            self.current, self.cache = current, {}

    def __call__(self, address: str) -> str | None:
        try:
            return self.cache[address]
        except KeyError:
            if len(self.cache) >= NETWORK_CACHE:
                self.cache.clear()
            network = self.cache[address] = self.current.network_of(address)
            return network


class _BodyDeadline:
    """A request body (gevent's Input) that must be read within `seconds` in all, from its
    first read; past that every read raises `Expired("body")`."""

    def __init__(self, body: pywsgi.Input, seconds: float) -> None:
        self.body = body
        self.seconds = seconds
        self.ends: float | None = None
        self.expired = False

    def _within(self, read: Callable[..., Any], *args: Any) -> Any:
        now = time.monotonic()
        if self.ends is None:
            self.ends = now + self.seconds
        try:
            if self.ends <= now:
                raise Expired("body")
            with Timeout(self.ends - now, Expired("body")):
                return read(*args)
        except Expired:
            self.expired = True
            raise

    def read(self, length: int | None = None) -> bytes:
        return self._within(self.body.read, length)

    def readline(self, size: int | None = None) -> bytes:
        return self._within(self.body.readline, size)

    def readlines(self, hint: int | None = None) -> list[bytes]:
        return list(self)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")

    def _discard(self) -> None:
        """What the application left unread, read and dropped (pywsgi calls this after
        each response); nothing once expired: that connection is closed anyway."""
        if not self.expired:
            self._within(self.body._discard)


class EdgeHandler(_BaseHandler):
    """gevent's request handler with the edge's deadlines (see the module docstring)."""

    server: EdgeServer
    _deadline: Timeout | None = None
    _requests = 0
    upgraded = False

    def handle(self) -> None:
        """The connection, start to end: its requests (kept alive), or its websocket."""
        self.socket.settimeout(self.server.limits.idle_timeout)  # each send/recv; none once upgraded
        try:
            super().handle()
        except Expired as exc:
            self.server.stats.timeouts[exc.kind] += 1
        finally:
            self._end_header_deadline()
            if self.upgraded:
                self.server.stats.websockets -= 1

    def read_requestline(self) -> str:
        """The request line; a later request on a kept-alive connection is first waited for
        `idle_timeout`. Starts the header deadline, which `read_request` ends."""
        limits = self.server.limits
        if self._requests and not self._next_request_within(limits.idle_timeout):
            return ""
        self._requests += 1
        self._deadline = Timeout.start_new(limits.header_timeout, Expired("header"))
        line = super().read_requestline()
        if not line:
            self._end_header_deadline()
        return line

    def _next_request_within(self, seconds: float) -> bool:
        """True when a byte of the next request arrives in time (False: closed or idle)."""
        try:
            with Timeout(seconds, Expired("idle")):
                return bool(self.rfile.peek(1))
        except (Expired, TimeoutError):  # ours, or the socket's own timeout of the same length
            self.server.stats.timeouts["idle"] += 1
        except OSError:
            pass
        return False

    def read_request(self, raw_requestline: str) -> bool:
        try:
            return super().read_request(raw_requestline)
        finally:
            self._end_header_deadline()

    def _end_header_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.close()
            self._deadline = None

    def get_environ(self) -> dict[str, Any]:
        env = super().get_environ()
        if env["wsgi.input"] is self.wsgi_input:  # not for an upgrade, whose reads are the websocket's
            self.wsgi_input = env["wsgi.input"] = _BodyDeadline(self.wsgi_input, self.server.limits.body_timeout)
        return env

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        writer = super().start_response(status, headers, exc_info)
        if self.code == 101 and not self.upgraded:  # a websocket from now on: long-lived by design
            self.upgraded = True
            self.server.stats.websockets += 1
            self.socket.settimeout(None)
        return writer

    def handle_error(self, t: type[BaseException], v: BaseException, tb: Any) -> None:
        """A body deadline (408 if nothing was answered yet) or an unread response ends the
        connection quietly; anything else is gevent's (logged, 500)."""
        if isinstance(v, Expired):
            self.server.stats.timeouts[v.kind] += 1
            self.close_connection = True
            if not self.headers_sent:
                body = b"request body too slow\n"
                try:
                    self.start_response("408 Request Timeout", [
                        ("Content-Type", "text/plain"), ("Content-Length", str(len(body))), ("Connection", "close")],
                        (t, v, tb))
                    self.write(body)
                except OSError:
                    pass
        elif isinstance(v, TimeoutError):  # the socket's idle timeout while sending the response
            self.server.stats.timeouts["send"] += 1
            self.close_connection = True
        else:
            super().handle_error(t, v, tb)


def _refusal(reason: str) -> bytes:
    text = f"{reason}\n".encode()
    return (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(text)}\r\nConnection: close\r\nRetry-After: {RETRY_AFTER}\r\n\r\n").encode() + text


class EdgeServer(pywsgi.WSGIServer):
    """gevent's WSGI server for the app, with the edge's budgets and deadlines."""

    handler_class = EdgeHandler
    backlog = BACKLOG

    def __init__(self, listener: tuple[str, int], application: Callable[..., Iterable[bytes]], limits: Web,
                 directory: PerVersion[TeamDirectory], store: GameStore) -> None:
        super().__init__(listener, application, log=None, error_log=pywsgi.LoggingLogAdapter(http_log, logging.WARNING))
        self.limits = limits
        self.store = store
        self.networks = _Networks(directory)
        self.budget = ConnectionBudget(limits.connections_per_source, limits.connections_per_network,
                                       total_cap(limits.connections_total), self.networks)
        self.stats = EdgeStats(self.budget)
        self._refusals: dict[str, bytes] = {}
        self._follower: gevent.Greenlet | None = None

    # -- accept ---------------------------------------------------------------------------
    def do_read(self) -> tuple[Any, Any, Ticket] | None:
        """The next connection the budget admits, with its ticket (None: none waiting now).

        Refused ones are answered and closed here on the bare file descriptor, before gevent
        wraps it in a socket object, up to `REFUSALS_PER_READ` per call (gevent calls this
        up to `max_accept` times per wake-up)."""
        for _ in range(REFUSALS_PER_READ):
            try:
                fd, address = self.socket._accept()
            except BlockingIOError:
                return None
            except OSError as exc:
                if exc.errno in self.fatal_errors:  # the listener is gone: gevent closes the server
                    raise
                self.stats.accept_errors += 1
                log.error("accept() failed (%s); pausing accepts", os.strerror(exc.errno) if exc.errno else exc)
                raise AcceptPaused from None
            ticket = self.budget.acquire(address[0])
            if isinstance(ticket, Ticket):
                listener = self.socket
                return GeventSocket(listener.family, listener.type, listener.proto, fileno=fd), address, ticket
            self._refuse(fd, ticket)
        return None

    def _refuse(self, fd: int, reason: str) -> None:
        """A 503 naming the reason, then close; never waits (this runs in the accept loop)."""
        answer = self._refusals.get(reason) or self._refusals.setdefault(reason, _refusal(reason))
        listener = self.socket
        sock = _socket.socket(listener.family, listener.type, listener.proto, fd)
        try:
            sock.send(answer, socket.MSG_DONTWAIT)
            sock.recv(65536, socket.MSG_DONTWAIT)  # what the client sent already, so that close() sends no reset
        except OSError:
            pass
        finally:
            sock.close()

    def handle(self, sock: Any, address: Any, ticket: Ticket) -> None:  # type: ignore[override]
        self.handler_class(sock, address, self).handle()

    def do_close(self, sock: Any, address: Any, ticket: Ticket) -> None:  # type: ignore[override]
        self.budget.release(ticket)
        sock.close()

    # -- follower -------------------------------------------------------------------------
    def start(self) -> None:
        super().start()
        if self._follower is None:
            self._follower = gevent.spawn(self._follow)

    def stop(self, timeout: float | None = None) -> None:
        if self._follower is not None:
            self._follower.kill(block=False)
            self._follower = None
        super().stop(timeout)

    def _follow(self) -> None:
        published: Counter[str] = Counter()
        summarized: Counter[str] = Counter()
        last_summary = time.monotonic()
        while True:
            gevent.sleep(FOLLOW_SECONDS)
            try:
                self.networks.refresh()
                counts = self.stats.counters()
                if counts != published:
                    self.store.add_stats(counts - published)
                    published = counts
            except Exception:  # a bug or a Redis outage here must not stop the server
                log.exception("following the game for the web edge failed")
            if time.monotonic() - last_summary >= SUMMARY_SECONDS:
                grown = self.stats.counters() - summarized
                if grown:
                    log.info("web edge: %s", self.stats.summary(grown))
                summarized, last_summary = self.stats.counters(), time.monotonic()



class PollingPostCheck:
    """WSGI middleware for Engine.IO polling POSTs (under `path`, e.g. ``/socket.io/``): one
    whose payload Engine.IO's own decoder refuses, or one for a session that closed
    meanwhile (python-engineio raises KeyError there), gets 400; a good one goes on with
    its body re-readable."""

    def __init__(self, app: Callable[..., Iterable[bytes]], path: str, max_bytes: int) -> None:
        self.app = app
        self.path = path
        self.max_bytes = max_bytes

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or not (environ.get("PATH_INFO", "") + "/").startswith(self.path):
            return self.app(environ, start_response)
        problem = self._payload_problem(environ)
        if problem is None:
            try:
                return self.app(environ, start_response)
            except KeyError as exc:
                problem = f"no such session ({exc.args[0] if exc.args else exc})"
        text = f"{problem}\n".encode()
        start_response("400 Bad Request", [("Content-Type", "text/plain"), ("Content-Length", str(len(text)))])
        return [text]

    def _payload_problem(self, environ: dict[str, Any]) -> str | None:
        """Why Engine.IO could not decode the body, or None (then wsgi.input reads it again)."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None  # Engine.IO refuses it itself
        if not 0 < length <= self.max_bytes:  # longer ones Engine.IO refuses unread (400)
            return None
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            Payload(encoded_payload=body.decode("utf-8"))
        except (ValueError, KeyError, IndexError) as exc:
            return f"bad Engine.IO payload: {exc}"
        return None
