"""Network helpers for checkers: an HTTP session and a line socket that fail with verdicts.

Connection problems and timeouts become `Down`; answers that break the protocol (HTTP 5xx,
a connection closed mid-line, an overlong line) become `Mumble`.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urljoin

import requests

from .errors import Down, Mumble

MAX_LINE = 1 << 20


class HttpSession(requests.Session):
    """A `requests.Session` bound to ``scheme://host:port`` with default timeouts and verdicts.

    Relative URLs (``"/notes"``) are joined to the base URL. Connection errors and timeouts
    raise `Down`; HTTP 5xx and undecodable responses raise `Mumble`.
    """

    def __init__(self, host: str, port: int, scheme: str = "http", timeout: float = 10) -> None:
        super().__init__()
        self.base_url = f"{scheme}://{_bracket(host)}:{port}/"
        self.timeout = timeout
        self.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        """Send like `requests.Session.request`, mapping failures to `Down` and `Mumble`."""
        url = url.decode() if isinstance(url, bytes) else url
        full = urljoin(self.base_url, url)
        kwargs.setdefault("timeout", self.timeout)
        where = f"{method!s} {full}"
        try:
            response = super().request(method, full, *args, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise Down("service unreachable", f"{where}: {exc}") from None
        except requests.RequestException as exc:
            raise Mumble("bad HTTP response", f"{where}: {exc}") from None
        if response.status_code >= 500:
            raise Mumble(f"HTTP {response.status_code}", f"{where}: {response.text[:300]!r}")
        return response

    def json_of(self, response: requests.Response) -> Any:
        """The response body as JSON, or `Mumble` when it is not JSON."""
        try:
            return response.json()
        except ValueError:
            raise Mumble("response is not JSON", f"{response.url}: {response.text[:300]!r}") from None


class LineSocket:
    """A TCP connection read and written in lines (LF), with timeouts; a context manager."""

    def __init__(self, host: str, port: int, timeout: float = 10, encoding: str = "utf-8") -> None:
        self.address = (host, port)
        self.encoding = encoding
        self._buffer = b""
        try:
            self._sock = socket.create_connection(self.address, timeout=timeout)
        except OSError as exc:
            raise Down("connection failed", f"connect {host}:{port}: {exc}") from None

    def __enter__(self) -> LineSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (safe to call twice)."""
        self._sock.close()

    def send(self, data: bytes) -> None:
        """Send raw bytes."""
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise Down("connection lost while sending", f"{self.address}: {exc}") from None

    def send_line(self, line: str) -> None:
        """Send `line` followed by LF."""
        self.send(line.encode(self.encoding) + b"\n")

    def recv_until(self, marker: bytes) -> bytes:
        """Read up to and including `marker`; return everything read up to it, marker included."""
        while marker not in self._buffer:
            if len(self._buffer) > MAX_LINE:
                raise Mumble("answer too long", f"{self.address}: no {marker!r} in {MAX_LINE} bytes")
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                raise Down("service timed out", f"{self.address}: waiting for {marker!r}") from None
            except OSError as exc:
                raise Down("connection lost", f"{self.address}: {exc}") from None
            if not chunk:
                raise Mumble(
                    "connection closed unexpectedly",
                    f"{self.address}: EOF waiting for {marker!r}, got {self._buffer[-200:]!r}",
                )
            self._buffer += chunk
        end = self._buffer.index(marker) + len(marker)
        data, self._buffer = self._buffer[:end], self._buffer[end:]
        return data

    def recv_line(self) -> str:
        """Read one line and return it without its line end."""
        raw = self.recv_until(b"\n").rstrip(b"\r\n")
        try:
            return raw.decode(self.encoding)
        except UnicodeDecodeError:
            raise Mumble("answer is not text", f"{self.address}: {raw[:200]!r}") from None


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
