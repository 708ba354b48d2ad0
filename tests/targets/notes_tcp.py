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
import time
from collections.abc import Iterator

from tests.targets.threaded import Threaded, serving_all

PORT = 17301


class _Handler(socketserver.StreamRequestHandler):
    server: NotesServer

    def handle(self) -> None:
        for raw in self.rfile:
            if self.server.mode == "silent":
                time.sleep(60)
                return
            self.wfile.write((self.server.answer(raw.decode(errors="replace").strip()) + "\n").encode())


class NotesServer(Threaded, socketserver.ThreadingTCPServer):
    """The notes store on (host, port); `notes` maps id to text."""

    def __init__(self, host: str, port: int = PORT) -> None:
        super().__init__((host, port), _Handler)
        self.mode = "ok"
        self.notes: dict[str, str] = {}

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
    with serving_all([NotesServer(host, port)]) as (server,):
        yield server
