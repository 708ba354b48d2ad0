"""A TCP submission server run in a thread for tests, and a line client."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from scoreboard.config import GameConfig
from scoreboard.store import AsyncSubmitter, GameStore, connect_async
from scoreboard.submission.tcp import SubmissionServer


@contextmanager
def tcp_server(config: GameConfig, store: GameStore) -> Iterator[dict[str, int]]:
    """Run all three dialects on free ports in a background loop; yield dialect -> port."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def main() -> None:
        server = SubmissionServer(config, AsyncSubmitter(store, connect_async(config.redis_url)))
        holder["ports"] = await server.start({"faust": 0, "ructf": 0, "forcad": 0})
        holder["server"] = server
        ready.set()
        holder["stop"] = asyncio.Event()
        await holder["stop"].wait()  # type: ignore[attr-defined]
        await server.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "submission server did not start"
    try:
        yield holder["ports"]  # type: ignore[misc]
    finally:
        loop.call_soon_threadsafe(holder["stop"].set)  # type: ignore[attr-defined]
        thread.join(10)


class LineClient:
    """A blocking client that can pick its source address (team identification)."""

    def __init__(self, port: int, source: str = "127.0.0.1", timeout: float = 5) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
        self.buffer = b""

    def read_exact_text(self, text: bytes) -> bytes:
        while len(self.buffer) < len(text):
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buffer += chunk
        got, self.buffer = self.buffer[: len(text)], self.buffer[len(text) :]
        return got

    def line(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                got, self.buffer = self.buffer, b""
                return got
            self.buffer += chunk
        got, self.buffer = self.buffer.split(b"\n", 1)
        return got

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def closed(self) -> bool:
        """True when the server has closed the connection (reads EOF)."""
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, TimeoutError):
            return True

    def close(self) -> None:
        self.sock.close()
