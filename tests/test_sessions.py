"""Sessions over real HTTP: logging out revokes a session everywhere (a copied cookie is
dead on every web node), sessions outlive a web restart, revoking all sessions or rotating
the cookie key logs everyone out; and a malformed Engine.IO polling payload is a 400."""

from __future__ import annotations

import re
import time

import pytest
import requests

from deploy.redis_server import free_port
from scoreboard.web.sessions import KEY_FIELD, KEY_REFRESH, RevocableSessions
from tests.game_helpers import start_at_round
from tests.processes import Process
from tests.test_web_portal_admin import csrf_of, login
from tests.web_helpers import ADMIN_PASSWORD, WebGame, start_web

PAGES = {"team": "/team/", "admin": "/admin/"}


@pytest.fixture
def web(redis_server, tmp_path):
    game = start_web(redis_server.url, tmp_path, prepare=lambda s: start_at_round(s, 2))
    yield game
    game.stop()


def logged_in(web: WebGame, kind: str) -> requests.Session:
    session, landed = login(web, kind, web.token(1) if kind == "team" else ADMIN_PASSWORD)
    assert landed == web.url + PAGES[kind], landed
    return session


def copy_of(session: requests.Session) -> requests.Session:
    """Another client holding the same cookies (a stolen or copied cookie)."""
    thief = requests.Session()
    thief.cookies.update(session.cookies)
    return thief


def lets_in(session: requests.Session, url: str, kind: str) -> bool:
    reply = session.get(url + PAGES[kind], allow_redirects=False, timeout=5)
    assert reply.status_code in (200, 302), reply.status_code
    return reply.status_code == 200


def log_out(session: requests.Session, url: str, kind: str) -> None:
    token = csrf_of(session, url + PAGES[kind])
    reply = session.post(f"{url}/{'team' if kind == 'team' else 'admin'}/logout", data={"csrf": token},
                         allow_redirects=False, timeout=5)
    assert reply.status_code == 302


def second_node(web: WebGame, name: str = "web2") -> tuple[Process, str]:
    """Another `adrange web` on the same game file: a second web node."""
    port = free_port()
    node = Process(["web", "-c", str(web.path), "--port", str(port)], web.path.parent, name)
    return node.start(("127.0.0.1", port)), f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("kind", ["team", "admin"])
def test_a_copied_cookie_is_dead_on_every_node_after_logout(web, kind):
    node, other_url = second_node(web)
    try:
        session = logged_in(web, kind)
        thief = copy_of(session)
        assert lets_in(thief, web.url, kind) and lets_in(thief, other_url, kind)
        log_out(session, web.url, kind)
        assert not lets_in(session, web.url, kind)
        assert not lets_in(thief, web.url, kind)
        assert not lets_in(thief, other_url, kind)  # the other node checks the same record
    finally:
        node.stop()


def test_the_team_api_refuses_a_logged_out_cookie(web):
    session = logged_in(web, "team")
    thief = copy_of(session)
    assert thief.get(web.url + "/api/team/status", timeout=5).status_code == 200
    log_out(session, web.url, "team")
    assert thief.get(web.url + "/api/team/status", timeout=5).status_code == 401


def test_sessions_outlive_a_web_restart(web):
    team, admin = logged_in(web, "team"), logged_in(web, "admin")
    port = int(web.url.rsplit(":", 1)[1])
    web.process.stop()
    web.process.start(("127.0.0.1", port))
    assert lets_in(team, web.url, "team") and lets_in(admin, web.url, "admin")


def test_revoking_all_sessions_logs_everyone_out(web):
    team, admin = logged_in(web, "team"), logged_in(web, "admin")
    reply = requests.post(f"{web.url}/admin/api/sessions", json={"what": "revoke"}, auth=("admin", ADMIN_PASSWORD),
                          timeout=5)
    assert reply.status_code == 200 and "sessions revoked" in reply.json()["msg"], reply.text
    assert not lets_in(team, web.url, "team") and not lets_in(admin, web.url, "admin")
    assert lets_in(logged_in(web, "team"), web.url, "team")  # logging in again works


def test_rotating_the_key_logs_everyone_out_and_new_logins_work_on_every_node(web):
    node, other_url = second_node(web)
    try:
        team, admin = logged_in(web, "team"), logged_in(web, "admin")
        key = web.store.web_value(KEY_FIELD)
        assert key and key not in web.config.game.secret
        reply = requests.post(f"{web.url}/admin/api/sessions", json={"what": "rotate"},
                              auth=("admin", ADMIN_PASSWORD), timeout=5)
        assert reply.status_code == 200 and "new cookie key" in reply.json()["msg"], reply.text
        assert web.store.web_value(KEY_FIELD) != key
        assert not lets_in(team, web.url, "team") and not lets_in(admin, other_url, "admin")
        time.sleep(KEY_REFRESH + 0.2)  # every node signs with the new key within KEY_REFRESH
        again = logged_in(web, "team")
        assert lets_in(again, web.url, "team") and lets_in(again, other_url, "team")
    finally:
        node.stop()


def test_deleting_the_generated_key_logs_everyone_out(web):
    team = logged_in(web, "team")
    web.store.redis.hdel(web.store.keys.web, KEY_FIELD)
    time.sleep(KEY_REFRESH + 0.2)
    assert not lets_in(team, web.url, "team")
    assert lets_in(logged_in(web, "team"), web.url, "team")


def test_a_session_key_in_the_game_file_signs_the_cookies(redis_server, tmp_path):
    key = "k" * 40
    web = start_web(redis_server.url, tmp_path, web={"session_key": key})
    try:
        team = logged_in(web, "team")
        assert web.store.web_value(KEY_FIELD) is None  # nothing generated
        assert not RevocableSessions(web.store, web.config.web).rotate_key()  # only the game file changes it
        assert not lets_in(team, web.url, "team")  # but every session was revoked
    finally:
        web.stop()


def engineio_session(url: str) -> str:
    """A fresh Engine.IO polling session (joined to Socket.IO's default namespace); its id."""
    opened = requests.get(url + "/socket.io/?EIO=4&transport=polling", timeout=5)
    sid = re.search(r'"sid":"([^"]+)"', opened.text).group(1)
    joined = requests.post(f"{url}/socket.io/?EIO=4&transport=polling&sid={sid}", data="40", timeout=5)
    assert joined.status_code == 200, joined.text
    return sid


def test_an_engineio_post_with_too_many_packets_is_a_400_and_the_session_goes_on(web):
    sid = engineio_session(web.url)
    post = f"{web.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    pongs = lambda n: "\x1e".join(["3"] * n)  # noqa: E731
    too_many = requests.post(post, data=pongs(17), timeout=5)  # Engine.IO decodes at most 16
    assert too_many.status_code == 400, (too_many.status_code, too_many.text)
    assert requests.post(post, data=b"\xff\xfe", timeout=5).status_code == 400  # not UTF-8
    assert requests.post(post, data=pongs(16), timeout=5).text == "OK"  # the session goes on
    assert requests.post(post, data="1", timeout=5).text == "OK"  # the client closes it
    late = requests.post(post, data="3", timeout=5)
    assert late.status_code == 400, (late.status_code, late.text)  # python-engineio raised KeyError: a 500
    assert requests.get(web.url + "/api/round", timeout=5).status_code == 200
    assert "Traceback" not in web.process.log_path.read_text()
