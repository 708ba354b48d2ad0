"""CSRF by Flask-WTF: several apps (web nodes) in one process and across nodes of a game."""

from __future__ import annotations

import re

import pytest
import redis

from scoreboard.config import parse_config
from scoreboard.store import GameStore
from scoreboard.web.app import create_app
from tests.conftest import game_data


@pytest.fixture
def nodes(redis_server):
    """Two web nodes of one game, built in this process from one game file."""
    config = parse_config(game_data(redis_server.url))
    apps = []
    for _ in range(2):
        store = GameStore(config, redis.Redis.from_url(redis_server.url, decode_responses=True))
        store.init()
        apps.append(create_app(config, store))
    return config, apps


def _form_token(client, path: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).get_data(as_text=True))[1]


def test_a_token_made_by_one_node_is_accepted_by_another(nodes):
    config, (one, two) = nodes
    client = one.test_client()
    client.post("/team/login", data={"token": config.team(1).token, "csrf": _form_token(client, "/team/login")})
    token = _form_token(client, "/team/")
    other = two.test_client()
    other.set_cookie(one.config["SESSION_COOKIE_NAME"], client.get_cookie(one.config["SESSION_COOKIE_NAME"]).value)
    assert other.get("/team/").status_code == 200
    refused = other.post("/team/submit", data={"flags": "junk"})
    assert refused.status_code == 400 and "CSRF" in refused.get_data(as_text=True)
    assert other.post("/team/submit", data={"flags": "junk", "csrf": token}).status_code in (200, 302)
    assert other.post("/team/submit", data={"flags": "junk"}, headers={"X-CSRF-Token": token}).status_code in (200, 302)


def test_a_login_form_without_its_token_is_refused(nodes):
    config, (one, _) = nodes
    reply = one.test_client().post("/team/login", data={"token": config.team(1).token})
    assert reply.status_code == 400 and "CSRF" in reply.get_data(as_text=True)


def test_header_credentials_need_no_token(nodes):
    config, (one, _) = nodes
    reply = one.test_client().put("/flags", json=["junk"], headers={"X-Team-Token": config.team(1).token})
    assert reply.status_code == 200
