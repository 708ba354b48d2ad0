"""What every test target server shares: served from a daemon thread, stopped at once."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Self


class Threaded:
    """Mix in before a socketserver class: `start` serves from a daemon thread, `stop` ends
    serving and closes the listening socket (connections are refused from then on)."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def start(self) -> Self:
        """Serve in a daemon thread; return self."""
        serve = self.serve_forever  # type: ignore[attr-defined]
        threading.Thread(target=serve, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self.shutdown()  # type: ignore[attr-defined]
        self.server_close()  # type: ignore[attr-defined]


@contextlib.contextmanager
def serving_all(servers: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """Start `servers` (each `Threaded`), stop them afterwards (unless a test already did)."""
    for server in servers:
        server.start()
    try:
        yield servers
    finally:
        for server in servers:
            with contextlib.suppress(OSError, ValueError):
                server.stop()
