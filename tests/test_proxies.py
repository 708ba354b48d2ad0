"""Behind a trusted reverse proxy the client's own address counts (lockouts, team
networks); X-Forwarded-For from anyone else is ignored."""

from __future__ import annotations

import pytest
import redis

from scoreboard.config import ConfigError, parse_config
from scoreboard.store import GameStore
from scoreboard.web.app import create_app
from tests.conftest import game_data

PROXY, PLAYER = "127.0.9.9", "127.0.8.8"


@pytest.fixture(scope="module")
def client(redis_server):
    """An app behind PROXY."""
    web = {"trusted_proxies": [PROXY]}
    data = {**game_data(redis_server.url), "web": web,
            "submission": {"limits": {"token_failures": 3, "token_lockout": 600}}}
    config = parse_config(data)
    store = GameStore(config, redis.Redis.from_url(redis_server.url, decode_responses=True))
    store.init()
    return create_app(config, store).test_client()


def _guess(client, peer: str, forwarded: str | None = None) -> int:
    headers = {"X-Team-Token": "not-a-token"} | ({"X-Forwarded-For": forwarded} if forwarded else {})
    return client.put("/flags", json=["X"], headers=headers, environ_base={"REMOTE_ADDR": peer}).status_code


def test_a_trusted_proxy_forwards_each_client_address(client):
    for _ in range(4):
        _guess(client, PROXY, "10.1.1.1")
    assert _guess(client, PROXY, "10.1.1.1") == 429  # that client is locked out
    assert _guess(client, PROXY, "10.1.1.2") != 429  # the others behind the same proxy are not


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(client):
    for n in range(4):
        _guess(client, PLAYER, f"10.2.2.{n}")  # a new "address" per guess does not escape the lockout
    assert _guess(client, PLAYER, "10.2.2.200") == 429
    assert _guess(client, PROXY, "10.2.2.200") != 429


def test_trusted_proxies_are_validated_naming_the_key(redis_server):
    with pytest.raises(ConfigError, match=r"web\.trusted_proxies"):
        parse_config({**game_data(redis_server.url), "web": {"trusted_proxies": ["not-an-address"]}})
