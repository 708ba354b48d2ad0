"""Connection budgets shared by the TCP submission server and the web server.

A flood from many addresses must not starve the other teams, so an open connection is
counted three ways, each with its own cap:

- per source address;
- per network: the team network holding the source (most specific first), or for an
  address outside every team network its /24 (IPv4) or /64 (IPv6), so a team cannot
  escape its cap by spreading over addresses, and strangers are grouped the same way;
- in total, below the process's open-file limit with room left for Redis connections,
  log files and the other teams (`total_cap`).

When several processes serve the same doors (submit servers sharing ports, on one host or
behind a balancer), `share` splits the per-source and per-network caps between them, so
together they never admit more than one process alone would.

`acquire` answers with a `Ticket` (release it when the connection ends) or the reason
for a refusal; the ticket remembers the keys it counted, so the counts stay right when an
admin moves a team's network while its connections are open.

`ThrottledLog` keeps a storm of identical errors (``accept(): too many open files``) to
one line per interval, with the count of what it held back.
"""

from __future__ import annotations

import ipaddress
import logging
import resource
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

FILE_RESERVE = 256  # open files kept free for Redis, logs and the process itself


def total_cap(wanted: int, reserve: int = FILE_RESERVE) -> int:
    """`wanted`, lowered to stay `reserve` below this process's open-file limit (raised to its hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard and hard != resource.RLIM_INFINITY:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:  # -1 here: no limit to keep below
        return wanted
    return max(1, min(wanted, soft - reserve))


def default_network(address: str) -> str:
    """The /24 (IPv4) or /64 (IPv6) around an address, for sources outside every team network."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


@dataclass(frozen=True)
class Ticket:
    """One admitted connection: the keys it is counted under."""

    source: str
    network: str


class ConnectionBudget:
    """Open connections per source, per network and in total, each capped.

    `network_of` maps a source address to the team network holding it, or None; it is
    called on every `acquire`, so it may follow admin edits.
    """

    def __init__(self, per_source: int, per_network: int, total: int,
                 network_of: Callable[[str], str | None] = lambda _address: None) -> None:
        self.per_source = self.source_cap = per_source  # caps of all processes together / of this one
        self.per_network = self.network_cap = per_network
        self.total = total
        self.network_of = network_of
        self.sources: defaultdict[str, int] = defaultdict(int)
        self.networks: defaultdict[str, int] = defaultdict(int)
        self.open = 0
        self.refused: defaultdict[str, int] = defaultdict(int)  # reason -> count, for metrics

    def acquire(self, source: str) -> Ticket | str:
        """Admit a connection from `source` (a `Ticket`) or say why not (a reason text)."""
        network = self.network_of(source) or default_network(source)
        if self.open >= self.total:
            reason = "server is full"
        elif self.networks[network] >= self.network_cap:
            reason = "too many connections from your network"
        elif self.sources[source] >= self.source_cap:
            reason = "too many connections from your address"
        else:
            self.open += 1
            self.networks[network] += 1
            self.sources[source] += 1
            return Ticket(source, network)
        self.refused[reason] += 1
        return reason

    def share(self, processes: int) -> None:
        """This process is one of `processes` serving the same doors: it admits its share of
        each per-source and per-network cap (at least one connection). The total cap stays
        this process's own: it guards this process's open files."""
        processes = max(1, processes)
        self.source_cap = max(1, self.per_source // processes)
        self.network_cap = max(1, self.per_network // processes)

    def release(self, ticket: Ticket) -> None:
        """The connection behind `ticket` has ended."""
        self.open -= 1
        _drop(self.sources, ticket.source)
        _drop(self.networks, ticket.network)


def _drop(counts: defaultdict[str, int], key: str) -> None:
    counts[key] -= 1
    if counts[key] <= 0:
        del counts[key]


class ThrottledLog(logging.Filter):
    """Lets one record per (logger, message template) through each `interval` seconds.

    The next record let through says how many were held back meanwhile. Attach it to a
    logger (or handler) that a storm can hit, e.g. asyncio's or gevent's accept errors.
    With `per_logger`, one record per logger whatever its text: for loggers that log
    messages already formatted (gevent's pywsgi names the client in each), whose every
    record would otherwise pass as new (and be remembered).
    """

    def __init__(self, interval: float = 10.0, per_logger: bool = False) -> None:
        super().__init__()
        self.interval = interval
        self.per_logger = per_logger
        self._last: dict[tuple[str, object], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, None if self.per_logger else record.msg)
        now = time.monotonic()
        last, held = self._last.get(key, (-1e9, 0))
        if now - last < self.interval:
            self._last[key] = (last, held + 1)
            return False
        self._last[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} [{held} more like this in the last {now - last:.0f}s]"
        return True
