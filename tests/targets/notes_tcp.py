"""A tiny line-protocol notes store, the target the test checkers check.

    PING        -> PONG
    PUT <text>  -> ID <id>
    GET <id>    -> NOTE <text>   or   NONE

`mode` changes its behaviour while it runs: "ok"; "liar" (wrong answers: MUMBLE);
"silent" (accepts connections and never answers: checkers without timeouts hang).
`forget(id)` deletes a note (CORRUPT). Run it in a thread with `NotesServer.start()`.
"""

from __future__ import annotations

import contextlib
import secrets
import socketserver
import threading
import time
from collections.abc import Iterator

PORT = 17301


class _Handler(socketserver.StreamRequestHandler):
    server: NotesServer

    def handle(self) -> None:
        for raw in self.rfile:
            if self.server.mode == "silent":
                time.sleep(60)
                return
            self.wfile.write((self.server.answer(raw.decode(errors="replace").strip()) + "\n").encode())


class NotesServer(socketserver.ThreadingTCPServer):
    """The notes store on (host, port); `notes` maps id to text."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, host: str, port: int = PORT) -> None:
        super().__init__((host, port), _Handler)
        self.mode = "ok"
        self.notes: dict[str, str] = {}
        self._thread: threading.Thread | None = None

    def start(self) -> NotesServer:
        """Serve in a daemon thread; return self."""
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket (connections are refused from now on)."""
        self.shutdown()
        self.server_close()

    def forget(self, note_id: str) -> None:
        """Delete a note, as a careless team would."""
        self.notes.pop(note_id, None)

    def answer(self, line: str) -> str:
        """The reply to one command line."""
        command, _, arg = line.partition(" ")
        if self.mode == "liar":
            return {"PING": "PANG", "PUT": "SURE", "GET": "NOTE nothing here"}.get(command, "HUH")
        if command == "PING":
            return "PONG"
        if command == "PUT" and arg:
            note_id = secrets.token_hex(6)
            self.notes[note_id] = arg
            return f"ID {note_id}"
        if command == "GET":
            return f"NOTE {self.notes[arg]}" if arg in self.notes else "NONE"
        return "ERROR unknown command"


@contextlib.contextmanager
def serving_notes(host: str, port: int = PORT) -> Iterator[NotesServer]:
    """A started `NotesServer` on `host`, stopped afterwards (unless the test stopped it)."""
    server = NotesServer(host, port).start()
    try:
        yield server
    finally:
        with contextlib.suppress(OSError, ValueError):
            server.stop()
