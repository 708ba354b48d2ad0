"""Client addresses behind the reverse proxies an organizer trusts.

werkzeug's `ProxyFix` believes ``X-Forwarded-For`` from anyone; here it is applied only to
requests whose direct peer is in ``web.trusted_proxies``, so a player cannot pick the
address that lockouts and team-network checks see by sending the header himself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxyFix:
    """WSGI middleware: ProxyFix (``hops`` proxies, X-Forwarded-For and -Proto) for trusted peers only."""

    def __init__(self, app: Callable[..., Iterable[bytes]], proxies: Sequence[Network], hops: int = 1) -> None:
        self.app = app
        self.proxies = list(proxies)
        self.fixed = ProxyFix(app, x_for=hops, x_proto=hops)

    def trusted(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.proxies)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.proxies and self.trusted(environ.get("REMOTE_ADDR", "")):
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)
