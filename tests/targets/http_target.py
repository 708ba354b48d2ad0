"""A tiny HTTP service for `checker.lib` tests: /ok answers, /boom fails with 500, /slow stalls."""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.targets.threaded import Threaded


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(5)
        code, body = {"/ok": (200, b'{"hello": "world"}'), "/boom": (500, b"oops"), "/text": (200, b"plain")}.get(
            self.path, (404, b"not found")
        )
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class HttpTarget(Threaded, ThreadingHTTPServer):
    """The HTTP target on (host, port), served from a daemon thread after `start()`."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__((host, port), _Handler)
