"""A tiny HTTP service for `checker.lib` tests: /ok answers, /boom fails with 500, /slow stalls."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


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


class HttpTarget(ThreadingHTTPServer):
    """The HTTP target on (host, port), served from a daemon thread after `start()`."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, host: str, port: int) -> None:
        super().__init__((host, port), _Handler)

    def start(self) -> HttpTarget:
        """Serve in a daemon thread; return self."""
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()
