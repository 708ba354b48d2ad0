"""pinger: a "network diagnostics" web page (adrange sample challenge, AWD style).

The flag is a file the platform rewrites every round (``/flag``); the service itself only
reports whether that file is in place. Pages and API:

    GET  /                          -> HTML form
    POST /diag   tool, target, port -> HTML result (tool: lookup | tcp)
    GET  /api/lookup?host=H         -> {"host", "found", "output"}   (getent hosts H)
    GET  /api/tcp?host=H&port=P     -> {"host", "port", "open", "ms"}
    GET  /api/status                -> {"service", "uptime", "load", "flag"}
    GET  /api/history               -> the latest diagnostics run [{"tool", "target", "at"}]

Run: ``python3 app.py --host 0.0.0.0 --port 8004 --data /srv/pinger/data --flag-file /flag``.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import socket
import subprocess
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

STARTED = time.monotonic()
HISTORY_SIZE = 20
BLOCKED = (";", "&", "`", "$(")  # no command chaining in host names
MAX_BODY = 4096
PAGE = """<!doctype html><html><head><title>pinger</title></head><body>
<h1>pinger &mdash; network diagnostics</h1>
<form method=post action=/diag>
<select name=tool><option value=lookup>lookup</option><option value=tcp>tcp port</option></select>
<input name=target placeholder="host name or address"> <input name=port size=5 placeholder=port>
<button>Run</button></form>
{result}
</body></html>"""


class DiagError(Exception):
    """A request that cannot be run; answered with HTTP 400."""


def lookup(host: str) -> dict[str, Any]:
    """Resolve `host` with the system resolver (``getent hosts``)."""
    host = host.strip()
    if not host or len(host) > 253 or any(bad in host for bad in BLOCKED):
        raise DiagError("invalid host name")
    try:
        done = subprocess.run(f"getent hosts {host}", shell=True, capture_output=True, text=True, timeout=5)
    except subprocess.TimeoutExpired:
        return {"host": host, "found": False, "output": "timed out"}
    return {"host": host, "found": done.returncode == 0, "output": done.stdout.strip()}


def tcp_probe(host: str, port_text: str) -> dict[str, Any]:
    """Try a TCP connection to `host`:`port_text`; report whether it opened and how fast."""
    try:
        port = int(port_text)
    except ValueError:
        raise DiagError("port must be a number") from None
    if not 1 <= port <= 65535 or not host.strip():
        raise DiagError("need a host and a port 1-65535")
    start = time.monotonic()
    try:
        with socket.create_connection((host.strip(), port), timeout=2):
            is_open = True
    except OSError:
        is_open = False
    return {"host": host.strip(), "port": port, "open": is_open, "ms": round((time.monotonic() - start) * 1000, 1)}


class Handler(BaseHTTPRequestHandler):
    """The web front: HTML form, JSON API, status."""

    server_version = "pinger/2.1"
    flag_file: Path
    history: Path

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a busy game would fill the disk with access logs."""

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        try:
            if url.path == "/":
                self._send(200, PAGE.format(result=""), "text/html; charset=utf-8")
            elif url.path == "/api/lookup":
                self._json(200, self._remember("lookup", lookup(query.get("host", ""))))
            elif url.path == "/api/tcp":
                self._json(200, self._remember("tcp", tcp_probe(query.get("host", ""), query.get("port", ""))))
            elif url.path == "/api/history":
                self._json(200, self._recent())
            elif url.path == "/api/status":
                self._json(200, self._status())
            else:
                self._json(404, {"error": "not found"})
        except DiagError as exc:
            self._json(400, {"error": str(exc)})

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/diag":
            self._json(404, {"error": "not found"})
            return
        length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode(errors="replace")).items()}
        try:
            if form.get("tool", "lookup") == "tcp":
                probe = self._remember("tcp", tcp_probe(form.get("target", ""), form.get("port", "")))
                text = f"{probe['host']}:{probe['port']} is {'open' if probe['open'] else 'closed'} ({probe['ms']} ms)"
            else:
                found = self._remember("lookup", lookup(form.get("target", "")))
                text = found["output"] if found["found"] else f"{found['host']}: not found"
            status, result = 200, f"<pre id=result>{html.escape(text)}</pre>"
        except DiagError as exc:
            status, result = 400, f"<p id=error>{html.escape(str(exc))}</p>"
        self._send(status, PAGE.format(result=result), "text/html; charset=utf-8")

    def _remember(self, tool: str, result: dict[str, Any]) -> dict[str, Any]:
        entry = {"tool": tool, "target": result["host"], "at": round(time.time(), 3)}
        with self.history.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")
        return result

    def _recent(self) -> list[Any]:
        try:
            lines = self.history.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        if len(lines) > 4 * HISTORY_SIZE:
            self.history.write_text("\n".join(lines[-HISTORY_SIZE:]) + "\n", encoding="utf-8")
        return [json.loads(line) for line in lines[-HISTORY_SIZE:]][::-1]

    def _status(self) -> dict[str, Any]:
        readable = self.flag_file.is_file() and os.access(self.flag_file, os.R_OK)
        return {"service": "pinger", "uptime": round(time.monotonic() - STARTED, 1),
                "load": os.getloadavg()[0], "flag": "present" if readable else "missing"}

    def _json(self, status: int, body: Any) -> None:
        self._send(status, json.dumps(body), "application/json")

    def _send(self, status: int, text: str, kind: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main() -> None:
    """Parse arguments and serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8004)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parent / "data")
    parser.add_argument("--flag-file", type=Path, default=Path("/flag"), help="the file the platform writes")
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    Handler.flag_file = args.flag_file
    Handler.history = args.data / "history.jsonl"
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
