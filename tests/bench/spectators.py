"""A crowd of Socket.IO spectators in their own processes, so their CPU is not the board's.

`Crowd(url, count, processes)` starts `processes` spawned client processes holding
`count` python-socketio AsyncClients (websocket) between them. Each client notes when a
ranking counting n captured flags first reached it (wall clock) and how many events it
got. `status()` asks every process how many clients are connected and how many events
they saw; `finish()` disconnects them all and returns every client's ranking times.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from multiprocessing.connection import Connection

import socketio


class _Clients:
    def __init__(self, url: str, count: int) -> None:
        self.url, self.count = url, count
        self.clients: list[socketio.AsyncClient] = []
        self.seen: list[dict[int, float]] = []  # per client: captured total -> first seen
        self.events = 0

    def _client(self) -> socketio.AsyncClient:
        client = socketio.AsyncClient(reconnection=False)
        seen: dict[int, float] = {}
        self.seen.append(seen)

        async def on_any(name: str, data: object = None) -> None:
            self.events += 1
            if name == "ranking":
                total = sum(row["captured"] for row in data["ranking"])  # type: ignore[index]
                seen.setdefault(total, time.time())

        client.on("*", on_any)  # every event the board sends
        return client

    async def connect(self, batch: int = 50) -> None:
        for start in range(0, self.count, batch):
            clients = [self._client() for _ in range(start, min(self.count, start + batch))]
            await asyncio.gather(*(c.connect(self.url, transports=["websocket"], wait_timeout=30) for c in clients))
            self.clients.extend(clients)


def _serve(url: str, count: int, pipe: Connection) -> None:
    async def main() -> None:
        crowd = _Clients(url, count)
        await crowd.connect()
        pipe.send(len(crowd.clients))
        while True:
            while not pipe.poll():
                await asyncio.sleep(0.1)
            if pipe.recv() == "status":
                pipe.send((sum(c.connected for c in crowd.clients), crowd.events))
                continue
            await asyncio.gather(*(c.disconnect() for c in crowd.clients), return_exceptions=True)
            pipe.send(crowd.seen)
            return

    asyncio.run(main())


class Crowd:
    """Spectators spread over client processes."""

    def __init__(self, url: str, count: int, processes: int = 2) -> None:
        ctx = multiprocessing.get_context("spawn")
        shares = [count // processes + (i < count % processes) for i in range(processes)]
        self.pipes: list[Connection] = []
        self.workers = []
        for share in shares:
            mine, theirs = ctx.Pipe()
            worker = ctx.Process(target=_serve, args=(url, share, theirs), daemon=True)
            worker.start()
            self.pipes.append(mine)
            self.workers.append(worker)
        self.connected = sum(pipe.recv() for pipe in self.pipes)

    def status(self) -> tuple[int, int]:
        """(clients connected now, events received so far) over all processes."""
        for pipe in self.pipes:
            pipe.send("status")
        replies = [pipe.recv() for pipe in self.pipes]
        return sum(r[0] for r in replies), sum(r[1] for r in replies)

    def finish(self) -> list[dict[int, float]]:
        """Disconnect everyone; every client's ranking times."""
        seen: list[dict[int, float]] = []
        for pipe in self.pipes:
            pipe.send("done")
        for pipe in self.pipes:
            seen.extend(pipe.recv())
        for worker in self.workers:
            worker.join(30)
            if worker.is_alive():
                worker.kill()
        return seen
