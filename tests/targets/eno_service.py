"""A small ENO checker-API v2 service for the notes store: POST / runs a task, GET /service describes it.

putflag stores the flag as a note and remembers its id under the taskChainId; getflag reads it
back; havoc pings (variant 1 stalls, to test timeouts); putnoise/getnoise store and read text.
Results: OK, MUMBLE, OFFLINE (cannot connect), INTERNAL_ERROR (unknown method).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.targets.notes_tcp import PORT

INFO = {"serviceName": "notes", "flagVariants": 1, "noiseVariants": 1, "havocVariants": 2}


class _Offline(Exception):
    pass


def _talk(host: str, line: str, timeout: float) -> str:
    try:
        with socket.create_connection((host, PORT), timeout=timeout) as sock:
            sock.sendall((line + "\n").encode())
            return sock.makefile().readline().strip()
    except OSError as exc:
        raise _Offline(str(exc)) from None


class _Handler(BaseHTTPRequestHandler):
    server: EnoService

    def do_GET(self) -> None:
        self._reply(self.server.info if self.path == "/service" else {"error": "not found"})

    def do_POST(self) -> None:
        task = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.tasks.append(task)
        try:
            result = self.server.run(task)
        except _Offline as exc:
            result = {"result": "OFFLINE", "message": f"connection failed: {exc}"}
        self._reply({"attackInfo": None, "flag": None, **result})

    def _reply(self, data: dict) -> None:
        body = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class EnoService(ThreadingHTTPServer):
    """The ENO checker service on (host, port); `tasks` records every task it received."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, host: str, port: int) -> None:
        super().__init__((host, port), _Handler)
        self.tasks: list[dict] = []
        self.chains: dict[str, str] = {}
        self.info = dict(INFO)  # what GET /service announces

    def start(self) -> EnoService:
        """Serve in a daemon thread; return self."""
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()

    def run(self, task: dict) -> dict:
        """Carry out one task against the notes store at task["address"]."""
        host, method, timeout = task["address"], task["method"], task["timeout"] / 1000
        if method in ("putflag", "putnoise"):
            text = task["flag"] if method == "putflag" else f"noise {task['taskChainId']}"
            answer = _talk(host, f"PUT {text}", timeout)
            if not answer.startswith("ID "):
                return {"result": "MUMBLE", "message": "cannot store"}
            self.chains[task["taskChainId"]] = answer[3:]
            return {"result": "OK", "attackInfo": f"note {answer[3:7]}" if method == "putflag" else None}
        if method in ("getflag", "getnoise"):
            note_id = self.chains.get(task["taskChainId"])
            if note_id is None:
                return {"result": "MUMBLE", "message": "nothing stored for this chain"}
            expected = task["flag"] if method == "getflag" else f"noise {task['taskChainId']}"
            answer = _talk(host, f"GET {note_id}", timeout)
            ok = answer == f"NOTE {expected}"
            return {"result": "OK"} if ok else {"result": "MUMBLE", "message": "flag not found"}
        if method == "havoc":
            if task["variantId"] == 1:
                time.sleep(30)
            ok = _talk(host, "PING", timeout) == "PONG"
            return {"result": "OK"} if ok else {"result": "MUMBLE", "message": "ping broken"}
        return {"result": "INTERNAL_ERROR", "message": f"unknown method {method}"}
