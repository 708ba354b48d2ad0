"""The authorization matrix: every route of the web app against no credentials, a team,
another team and an admin, on the real web process."""

from __future__ import annotations

import pytest
import requests

from scoreboard.types import GameState
from scoreboard.web.app import create_app
from tests.game_helpers import flag_of, start_at_round
from tests.web_helpers import ADMIN_PASSWORD, start_web

SKIP = ("/static/", "/socket.io")
LOGIN_PAGES = {"/admin/login", "/team/login", "/admin/logout", "/team/logout"}  # open to anyone


def role_of(path: str) -> str:
    """Who a route is for, by where it lives."""
    if path in LOGIN_PAGES:
        return "public"
    if path.startswith(("/admin/", "/admin")):
        return "admin"
    if path.startswith(("/team/", "/team", "/api/team/", "/api/captures")):
        return "team"
    return "public"


@pytest.fixture(scope="module")
def web(redis_server, tmp_path_factory):
    game = start_web(redis_server.url, tmp_path_factory.mktemp("auth"), prepare=lambda s: start_at_round(s, 2))
    game.store.submit(1, [(flag_of(game.store, 2, 2, 1), 2, 1, 2)])
    yield game
    game.stop()


@pytest.fixture(scope="module")
def routes(web):
    app = create_app(web.config, web.store)
    found = []
    for rule in app.url_map.iter_rules():
        if rule.arguments or rule.rule.startswith(SKIP):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, rule.rule))
    assert len(found) > 15
    return found


def credentials(web, who: str) -> dict:
    if who == "team":
        return {"headers": {"X-Team-Token": web.token(1)}}
    if who == "other_team":
        return {"headers": {"X-Team-Token": web.token(2)}}
    if who == "admin":
        return {"auth": ("admin", ADMIN_PASSWORD)}
    return {}


def refused(reply: requests.Response) -> bool:
    """A refusal: 401/403, or a redirect to a login page."""
    return reply.status_code in (401, 403) or (reply.status_code in (302, 303)
                                                and "/login" in reply.headers.get("Location", ""))


@pytest.mark.parametrize("who", ["nobody", "team", "other_team", "admin"])
def test_every_get_route_answers_each_role_as_its_owner_allows(web, routes, who):
    for method, path in routes:
        if method != "GET":
            continue
        reply = requests.get(web.url + path, allow_redirects=False, timeout=10, **credentials(web, who))
        role = role_of(path)
        allowed = role == "public" or (role == "team" and who in ("team", "other_team")) or \
            (role == "admin" and who == "admin")
        if allowed:  # served, or sent on (a logged-in team's login page leads to its portal)
            assert reply.status_code == 200 or (reply.status_code in (302, 303) and not refused(reply)), \
                (who, path, reply.status_code, reply.text[:200])
        else:
            assert refused(reply), (who, path, reply.status_code, reply.text[:200])
        assert reply.status_code < 500


@pytest.mark.parametrize("who", ["nobody", "team", "other_team"])
def test_admin_actions_refuse_everyone_else_and_change_nothing(web, routes, who):
    before = web.store.state()
    for method, path in routes:
        if method == "POST" and role_of(path) == "admin" and path not in LOGIN_PAGES:
            reply = requests.post(web.url + path, json={"action": "pause"}, data=None, allow_redirects=False,
                                  timeout=10, **credentials(web, who))
            assert refused(reply), (who, path, reply.status_code)
    for name in ("state", "announce", "reset", "team", "service", "rerun", "schedule"):
        reply = requests.post(f"{web.url}/admin/api/{name}", json={"action": "pause", "text": "x",
                                                                    "confirm": web.config.game.name},
                              allow_redirects=False, timeout=10, **credentials(web, who))
        assert refused(reply), (who, name, reply.status_code)
    after = web.store.state()
    assert after["state"] == before["state"] == GameState.RUNNING and web.store.stats()["accepted"] == 1


def test_a_team_sees_only_its_own_private_data(web):
    for me, other in ((1, 2), (2, 1)):
        headers = {"X-Team-Token": web.token(me)}
        status = requests.get(f"{web.url}/api/team/status", headers=headers, timeout=10)
        history = requests.get(f"{web.url}/api/team/submissions", headers=headers, timeout=10)
        assert status.json()["team"] == me
        for reply in (status, history):
            assert web.token(other) not in reply.text and web.token(me) not in reply.text
    mine = requests.get(f"{web.url}/api/team/status", headers={"X-Team-Token": web.token(1)}, timeout=10).json()
    assert all(c["a"] == 1 for c in mine["captures"])
    theirs = requests.get(f"{web.url}/api/team/status", headers={"X-Team-Token": web.token(2)}, timeout=10).json()
    assert not any(c.get("a") == 1 and c.get("f") for c in theirs.get("captures", []))


def test_admin_sees_the_truth_including_private_checker_messages(web):
    web.store.record_check(2, 3, 1, 103, public="public words", private="private stack trace")
    admin = requests.get(f"{web.url}/admin/api/checks?team=3&service=1", auth=("admin", ADMIN_PASSWORD), timeout=10)
    assert "private stack trace" in admin.text
    for path in ("/api/scoreboard", "/"):
        assert "private stack trace" not in requests.get(web.url + path, timeout=10).text
    team = requests.get(f"{web.url}/api/team/status", headers={"X-Team-Token": web.token(3)}, timeout=10)
    assert "private stack trace" not in team.text


def test_wrong_basic_password_never_falls_back_to_the_admin_cookie(web):
    """A request that brings credentials is judged by them alone: with an admin session
    cookie (no CSRF token) and a wrong Basic password, no admin action goes through."""
    import re

    session = requests.Session()
    token = re.search(r'name="csrf" value="([^"]+)"', session.get(f"{web.url}/admin/login", timeout=10).text)[1]
    session.post(f"{web.url}/admin/login", data={"password": ADMIN_PASSWORD, "csrf": token}, timeout=10)
    assert session.get(f"{web.url}/admin/api/board", timeout=10, allow_redirects=False).status_code == 200
    before = web.store.state()
    for name, body in (("state", {"action": "pause"}), ("reset", {"confirm": web.config.game.name})):
        for header in ({"auth": ("admin", "wrong password")}, {"headers": {"X-Team-Token": web.token(1)}}):
            reply = session.post(f"{web.url}/admin/api/{name}", json=body, allow_redirects=False, timeout=10,
                                 **header)
            assert refused(reply), (name, header, reply.status_code)
    assert web.store.state()["state"] == before["state"] == GameState.RUNNING
    assert web.store.stats()["accepted"] == 1
