"""Team portal and admin panel over real HTTP: logins, CSRF, submissions, game control."""

from __future__ import annotations

import re
import time

import pytest
import requests

from scoreboard.types import GameState, Status
from tests.game_helpers import flag_of, start_at_round
from tests.web_helpers import ADMIN_PASSWORD, start_web, wait_until


@pytest.fixture
def web(redis_server, tmp_path):
    game = start_web(redis_server.url, tmp_path, prepare=lambda s: start_at_round(s, 2))
    yield game
    game.stop()


def csrf_of(session: requests.Session, url: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', session.get(url, timeout=5).text).group(1)


def login(web, kind: str, secret: str) -> tuple[requests.Session, str]:
    session = requests.Session()
    path = "/team/login" if kind == "team" else "/admin/login"
    field = "token" if kind == "team" else "password"
    token = csrf_of(session, web.url + path)
    reply = session.post(web.url + path, data={field: secret, "csrf": token}, timeout=5)
    return session, reply.url


def test_team_login_refuses_a_wrong_token_and_accepts_the_right_one(web):
    _, landed = login(web, "team", "wrong-token")
    assert landed.endswith("/team/login")
    session, landed = login(web, "team", web.token(1))
    assert landed.endswith("/team/")
    page = session.get(web.url + "/team/", timeout=5).text
    assert "team1" in page and web.token(2) not in page


def test_portal_submission_is_judged_and_kept_with_its_verdict(web):
    session, _ = login(web, "team", web.token(1))
    good, own = flag_of(web.store, 2, 2, 1), flag_of(web.store, 2, 1, 1)
    token = csrf_of(session, web.url + "/team/")
    page = session.post(web.url + "/team/submit", data={"flags": f"{good}\n{own}\njunk\n", "csrf": token},
                        timeout=5).text
    assert "Accepted. 2 flag points" in page and "Denied: flag is your own" in page
    history = session.get(web.url + "/api/team/submissions", timeout=5).json()
    assert [h["accepted"] for h in history] == [True, False, False]
    assert web.store.stats()["accepted"] == 1


def test_portal_form_without_csrf_is_refused(web):
    session, _ = login(web, "team", web.token(1))
    reply = session.post(web.url + "/team/submit", data={"flags": flag_of(web.store, 2, 2, 1)}, timeout=5)
    assert reply.status_code == 400 and "CSRF" in reply.text
    assert web.store.stats().get("accepted", 0) == 0


def test_portal_shows_own_status_message_escaped(web):
    web.store.record_check(2, 1, 2, Status.CORRUPT, public="<img src=x onerror=alert(1)>", private="private-trace-77")
    session, _ = login(web, "team", web.token(1))
    page = session.get(web.url + "/team/", timeout=5).text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "<img src=x" not in page
    assert "private-trace-77" not in page


def test_pages_need_their_login(web):
    assert requests.get(web.url + "/team/", timeout=5, allow_redirects=False).status_code == 302
    assert requests.get(web.url + "/admin/", timeout=5, allow_redirects=False).status_code == 302
    session, _ = login(web, "team", web.token(1))
    assert session.get(web.url + "/admin/", timeout=5, allow_redirects=False).status_code == 302


def test_admin_pause_and_resume_through_the_api_moves_the_round_end_by_exactly_the_pause(redis_server, tmp_path):
    """Issue 9 item 3: the admin's pause and resume are requests the running ticker applies;
    a pause of P seconds makes the round end exactly P later (the round was longer by 2P)."""
    game = start_web(redis_server.url, tmp_path, round_seconds=6)
    ticker = game.start_ticker()
    auth = ("admin", ADMIN_PASSWORD)

    def act(action):
        reply = requests.post(game.url + "/admin/api/state", json={"action": action}, auth=auth, timeout=5)
        assert reply.status_code == 200, reply.text
        return time.time()

    def opened():
        return {int(e["r"]): float(e["t"]) for e in game.store.events("round") if e["type"] == "opened"}

    try:
        act("start")
        wait_until(lambda: 1 in opened(), 10, "round 1 opened")
        time.sleep(1)
        paused_at = act("pause")
        wait_until(lambda: game.store.state()["state"] == GameState.PAUSED, 5, "paused")
        reply = requests.post(game.url + "/admin/api/state", json={"action": "pause"}, auth=auth, timeout=5)
        assert reply.status_code == 409 and "paused" in reply.json()["msg"]
        time.sleep(2.5)
        pause = act("resume") - paused_at
        wait_until(lambda: 2 in opened(), 15, "round 2 opened")
        longer = opened()[2] - opened()[1] - 6
        print(f"pause {pause:.2f}s, round 1 lasted {longer:.2f}s longer")
        assert abs(longer - pause) < 0.5
        assert [e["to"] for e in game.store.events("admin") if e["type"] == "state"] == ["running", "paused", "running"]
    finally:
        ticker.kill()
        game.stop()


def test_admin_announcement_team_edit_and_service_disable(web):
    session, _ = login(web, "admin", ADMIN_PASSWORD)
    token = csrf_of(session, web.url + "/admin/")
    session.post(web.url + "/admin/do/announce", data={"text": "<b>hi</b>", "csrf": token}, timeout=5)
    assert web.store.announcements()[0]["text"] == "<b>hi</b>"
    session.post(web.url + "/admin/do/team", data={"id": "2", "name": "renamed", "address": "127.0.2.9",
                                                   "disabled": "0", "csrf": token}, timeout=5)
    session.post(web.url + "/admin/do/team", data={"name": "latecomer", "token": "late-token-123", "csrf": token},
                 timeout=5)
    session.post(web.url + "/admin/do/service", data={"id": "2", "disabled": "1", "csrf": token}, timeout=5)
    teams = requests.get(web.url + "/api/teams", timeout=5).json()
    assert {"id": 2, "name": "renamed", "address": "127.0.2.9"} in teams
    assert any(t["name"] == "latecomer" for t in teams)
    assert [s["name"] for s in requests.get(web.url + "/api/services", timeout=5).json()] == ["svc1"]
    late, landed = login(web, "team", "late-token-123")
    assert landed.endswith("/team/")
    session.post(web.url + "/admin/do/team", data={"id": "2", "disabled": "1", "csrf": token}, timeout=5)
    assert "renamed" not in [t["name"] for t in requests.get(web.url + "/api/teams", timeout=5).json()]


def test_admin_checker_log_and_rerun_is_queued_for_the_workers(web):
    web.store.record_check(2, 3, 1, Status.MUMBLE, public="bad", private="<b>stack</b>",
                           detail={"command": "python checker.py check 127.0.3.1", "duration": 1.25})
    session, _ = login(web, "admin", ADMIN_PASSWORD)
    page = session.get(web.url + "/admin/checks?team=3&service=1", timeout=5).text
    assert "&lt;b&gt;stack&lt;/b&gt;" in page and "checker.py check 127.0.3.1" in page and "1.25" in page
    reply = requests.post(web.url + "/admin/api/rerun", json={"team": 3, "service": 1},
                          auth=("admin", ADMIN_PASSWORD), timeout=5)
    assert reply.status_code == 200 and "queued" in reply.json()["msg"]
    assert [e["type"] for e in web.store.events("admin")][-1] == "rerun"


def test_admin_reset_needs_the_game_name(web):
    web.store.submit(1, [(flag_of(web.store, 2, 2, 1), 2, 1, 2)])
    auth = ("admin", ADMIN_PASSWORD)
    wrong = requests.post(web.url + "/admin/api/reset", json={"confirm": "yes"}, auth=auth, timeout=5)
    assert wrong.status_code == 409 and web.store.stats()["accepted"] == 1
    right = requests.post(web.url + "/admin/api/reset", json={"confirm": web.config.game.name}, auth=auth, timeout=5)
    assert right.json()["status"] is True
    assert web.store.stats() == {} and web.store.state()["state"] == GameState.NOT_STARTED


def test_generated_admin_password_is_logged_once_and_works(redis_server, tmp_path):
    game = start_web(redis_server.url, tmp_path, admin_hash=None)
    try:
        pattern = re.compile(r"admin password \(shown once\):\s+(\S+)")
        log = wait_until(lambda: pattern.search(game.process.log_path.read_text()), what="password in log")
        password = log.group(1)
        assert requests.get(game.url + "/admin/api/board", auth=("admin", password), timeout=5).status_code == 200
        assert game.store.web_value("admin_hash") and password not in game.store.web_value("admin_hash")
    finally:
        game.stop()


def test_admin_api_answers_deeply_nested_json_with_400_not_500(web):
    reply = requests.post(web.url + "/admin/api/announce", data=b"[" * 5000 + b"]" * 5000,
                          auth=("admin", ADMIN_PASSWORD), timeout=5)
    assert reply.status_code == 400 and reply.json()["msg"] == "body must be a JSON object"


def test_admin_api_answers_wrong_types_with_400_naming_the_field_and_changes_nothing(web):
    """Ids as lists, text as numbers, a rerun of team 0: clear answers, never a 500."""
    auth = ("admin", ADMIN_PASSWORD)
    before = (web.store.state(), web.store.overrides(), web.store.announcements())
    wrong = [
        ("service", {"id": [1]}, "id must be a whole number"),
        ("service", {"id": 1, "name": 5}, "name must be text"),
        ("rerun", {"team": [1], "service": 1}, "team must be a whole number"),
        ("rerun", {"team": 1, "service": {"a": 1}}, "service must be a whole number"),
        ("rerun", {"team": True, "service": 1}, "team must be a whole number"),
        ("announce", {"text": 42}, "text must be text"),
        ("state", {"action": ["pause"]}, "action must be text"),
        ("reset", {"confirm": 7}, "confirm must be text"),
        ("schedule", {"start": [1]}, "start: not a time"),
        ("team", {"id": {"x": 1}}, "a team id is a number"),
    ]
    for name, body, message in wrong:
        reply = requests.post(f"{web.url}/admin/api/{name}", json=body, auth=auth, timeout=5)
        assert reply.status_code == 400 and message in reply.json()["msg"], (name, body, reply.status_code, reply.text)
    for body, message in [({"team": 0, "service": 1}, "no playing team with id 0"),
                          ({"team": 5, "service": 1}, "no playing team with id 5"),  # the NOP team
                          ({"team": 1, "service": 99}, "no enabled service with id 99")]:
        reply = requests.post(f"{web.url}/admin/api/rerun", json=body, auth=auth, timeout=5)
        assert reply.status_code == 409 and message in reply.json()["msg"], reply.text
    assert (web.store.state(), web.store.overrides(), web.store.announcements()) == before


def test_a_past_stop_needs_confirmation_and_a_finished_game_can_be_reopened(redis_server, tmp_path):
    """Issue 11 item 4: a schedule that would end the game at once is refused unless
    confirmed; OVER is not for good: the admin reopens it (paused, then resumed) and the
    running ticker plays on from the next round."""
    game = start_web(redis_server.url, tmp_path, round_seconds=2)
    ticker = game.start_ticker()
    auth = ("admin", ADMIN_PASSWORD)

    def post(name, body):
        return requests.post(f"{game.url}/admin/api/{name}", json=body, auth=auth, timeout=5)

    try:
        assert post("state", {"action": "start"}).status_code == 200
        wait_until(lambda: game.store.state()["round"] >= 1, 10, "round 1 opened")
        past = time.time() - 60
        reply = post("schedule", {"stop": past})
        assert reply.status_code == 409 and "ends the game at once" in reply.json()["msg"], reply.text
        assert game.store.state()["state"] == GameState.RUNNING and game.store.schedule() == {}
        assert post("schedule", {"stop": past, "confirm": "yes"}).status_code == 400  # not a yes/no value
        reply = post("schedule", {"stop": past, "confirm": True})
        assert reply.status_code == 200, reply.text
        wait_until(lambda: game.store.state()["state"] == GameState.OVER, 10, "game over")
        over_round = game.store.state()["round"]
        assert post("state", {"action": "resume"}).json()["msg"].endswith("it is over (reopen it first)")
        assert post("reopen", {"stop": past}).status_code == 409  # a new stop must be in the future
        reply = post("reopen", {})
        assert reply.status_code == 200 and "no scheduled end" in reply.json()["msg"], reply.text
        wait_until(lambda: game.store.state()["state"] == GameState.PAUSED, 10, "reopened, paused")
        time.sleep(2.5)  # the ticker stays paused: the past stop is gone, no round opens
        assert game.store.state()["state"] == GameState.PAUSED and game.store.state()["round"] == over_round
        assert post("state", {"action": "resume"}).status_code == 200
        wait_until(lambda: game.store.state()["closed_round"] >= over_round + 1, 15, "the game plays on")
        assert game.store.state()["state"] == GameState.RUNNING
        assert post("reopen", {}).status_code == 409  # only a finished game
    finally:
        ticker.kill()
        game.stop()


def test_portal_tells_the_team_how_to_submit_with_its_own_values_and_shows_clock_times(web):
    """Issue 12 item 6: TCP ports per dialect, PUT /flags with the team's token, the flag
    format, and submission times as a clock, not epoch numbers."""
    team = web.config.teams[0]
    session, _ = login(web, "team", web.token(1))
    token = csrf_of(session, web.url + "/team/")
    session.post(web.url + "/team/submit", data={"flags": "not-a-flag", "csrf": token}, timeout=5)
    page = session.get(web.url + "/team/", timeout=5).text
    sub = web.config.submission
    assert f"X-Team-Token: {web.token(1)}" in page and f"{web.url}/flags" in page
    for port in (sub.faust_port, sub.ructf_port, sub.forcad_port):
        assert f"nc {sub.host} {port}" in page
    assert team.network in page and "[A-Z0-9]{31}=" in page
    assert re.search(r'<table id="history">.*?<td>\d\d:\d\d:\d\d</td>', page, re.S), "a clock time"


def test_the_language_chosen_before_login_is_kept_after_it(web):
    """Issue 12 item 6: ?lang=en on the login page, then logging in, stays English."""
    session = requests.Session()
    token = re.search(r'name="csrf" value="([^"]+)"',
                      session.get(web.url + "/team/login?lang=en", timeout=5).text).group(1)
    page = session.post(web.url + "/team/login", data={"token": web.token(1), "csrf": token}, timeout=5).text
    assert "Team portal" in page and "队伍中心" not in page
