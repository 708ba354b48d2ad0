"""Team portal and admin panel over real HTTP: logins, CSRF, submissions, game control."""

from __future__ import annotations

import re
import signal
import string
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests

from deploy.redis_server import free_port
from scoreboard.store import REQUESTS
from scoreboard.submission.history import CHANNELS, KEEP, team_history
from scoreboard.submission.sync import Submissions
from scoreboard.submission.verdicts import Verdict
from scoreboard.types import GameState, Status
from scoreboard.web.admin import ENGINE_FIGURES
from scoreboard.web.i18n import TEXTS, text
from tests.game_helpers import flag_of, start_at_round
from tests.processes import Process
from tests.submit_helpers import LineClient, tcp_server
from tests.web_helpers import ADMIN_PASSWORD, start_web, wait_until

GREETINGS = {"faust": b"adrange flag submission\nOne flag per line please!\n\n",
             "ructf": b"Enter your flags, finished with newline (or empty line to exit)\n",
             "forcad": b"Welcome! Please, enter your team token:\n"}


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
    assert text("verdict.accepted", "zh", {"points": 2}) in page and text("verdict.own", "zh") in page  # game: zh
    english = session.get(web.url + "/team/?lang=en", timeout=5).text
    assert "Accepted. 2 flag points" in english and "Denied: flag is your own (Denied: invalid or own flag)" in english
    history = session.get(web.url + "/api/team/submissions", timeout=5).json()
    assert [(h["accepted"], h["channel"]) for h in history] == [(True, "portal"), (False, "portal"), (False, "portal")]
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


def tcp_session(dialect: str, port: int, token: str, source: str = "127.0.1.7") -> LineClient:
    """A session of `dialect` as team 1 (by source address, or by token for forcad), past its greeting."""
    client = LineClient(port, source=source)
    assert client.read_exact_text(GREETINGS[dialect]) == GREETINGS[dialect]
    if dialect == "forcad":
        client.send(token.encode() + b"\n")
        client.line()
    return client


def send_lines(client: LineClient, lines: list[str]) -> list[str]:
    """Send lines in one write; their replies."""
    client.send("".join(f"{line}\n" for line in lines).encode())
    return [client.line().decode() for _ in lines]


def history_rows(page: str) -> list[tuple[str, str, str, str]]:
    """(time, channel, flag, verdict) of each row of the portal's history table."""
    table = re.search(r'<table id="history">(.*?)</table>', page, re.S).group(1)
    return re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td><code>([^<]*)</code></td><td>([^<]*)</td></tr>", table)


def test_portal_history_lists_every_channel_with_its_verdict(web):
    """Issue 12: the portal's history lists what the team sent over each TCP dialect, PUT
    /flags and the form, denials included, with channel, verdict and a clock time; only the
    team's own."""
    store, token = web.store, web.token(1)
    good, other, own, third = (flag_of(store, 2, 2, 1), flag_of(store, 2, 3, 1), flag_of(store, 2, 1, 2),
                               flag_of(store, 2, 4, 2))
    with tcp_server(web.config, store) as ports:
        faust = send_lines(tcp_session("faust", ports["faust"], token), [good, "not-a-flag"])
        assert faust == [f"{good} OK Accepted. 2 flag points",
                         "not-a-flag INV Denied: invalid flag (Denied: invalid or own flag)"]
        send_lines(tcp_session("ructf", ports["ructf"], token), [own])
        send_lines(tcp_session("forcad", ports["forcad"], token), [good])
        reply = requests.put(web.url + "/flags", json=[other, "junk-http"], headers={"X-Team-Token": token}, timeout=5)
        assert [r["status"] for r in reply.json()] == [True, False]
        session, _ = login(web, "team", token)
        session.post(web.url + "/team/submit", data={"flags": third, "csrf": csrf_of(session, web.url + "/team/")},
                     timeout=5)
        history = wait_until(lambda: (h := session.get(web.url + "/api/team/submissions", timeout=5).json())
                             and len(h) == 7 and h, 5, "7 entries (TCP and HTTP within about a second)")
    assert {(h["channel"], h["flag"], h["verdict"]) for h in history} == {
        ("faust", good, "accepted"), ("faust", "not-a-flag", "invalid"), ("ructf", own, "own"),
        ("forcad", good, "duplicate"), ("http", other, "accepted"), ("http", "junk-http", "invalid"),
        ("portal", third, "accepted")}
    assert history[0]["channel"] == "portal" and history == sorted(history, key=lambda h: -h["t"])
    rows = history_rows(session.get(web.url + "/team/?lang=en", timeout=5).text)
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d", when) for when, *_ in rows), rows
    shown = {(channel, flag): verdict for _, channel, flag, verdict in rows}
    assert shown[("TCP faust", "not-a-flag")] == "Denied: invalid flag (Denied: invalid or own flag)"
    assert shown[("TCP ructf", own)] == "Denied: flag is your own (Denied: invalid or own flag)"
    assert shown[("TCP forcad", good)] == "Denied: you already submitted this flag"
    assert shown[("TCP faust", good)].startswith("Accepted.") and shown[("HTTP", other)].startswith("Accepted.")
    assert shown[("HTTP", "junk-http")] == "Denied: invalid flag (Denied: invalid or own flag)"
    assert ("portal form", third) in shown
    theirs = requests.get(web.url + "/api/team/submissions", headers={"X-Team-Token": web.token(2)}, timeout=5)
    assert theirs.json() == []


def test_history_stays_bounded_under_a_flood_and_costs_no_redis_call_per_batch(web):
    """Issue 12: a flood keeps the newest KEEP entries per team, in Redis as in a process's
    buffer, and the flag path writes the history at most about once a second, not per batch."""
    store, key = web.store, web.store.keys.submissions(1)

    def lpush_calls() -> int:
        return int(store.redis.info("commandstats").get("cmdstat_lpush", {}).get("calls", 0))

    def flags() -> list[str]:
        return [h["flag"] for h in team_history(store, 1)]

    with tcp_server(web.config, store) as ports:
        client = tcp_session("faust", ports["faust"], web.token(1))
        before, started = lpush_calls(), time.monotonic()
        for batch in range(30):  # 30 batches answered one after the other
            assert len(send_lines(client, [f"G{batch}-{i}" for i in range(100)])) == 100
        batches_took = time.monotonic() - started
        wait_until(lambda: "G29-99" in flags(), 5, "the flood in the history")
        assert lpush_calls() - before <= batches_took + 2, "one history write per flush, not per batch"
        reply = requests.put(web.url + "/flags", json=[f"H-{i}" for i in range(150)],
                             headers={"X-Team-Token": web.token(1)}, timeout=5)
        assert reply.status_code == 200
        wait_until(lambda: "H-149" in flags(), 5, "the HTTP flood in the history")
    assert store.redis.llen(key) == KEEP  # newest batch first, each batch in its own order
    assert flags() == [f"H-{i}" for i in range(150)] + [f"G29-{i}" for i in range(50, 100)]
    subs = Submissions(store)  # one process's buffer holds the newest KEEP per team, whatever comes
    for batch in range(10):
        subs.submit(2, [f"B{batch}-{i}" for i in range(500)], channel="http")
    assert subs.history.pending() == KEEP
    subs.history.flush()
    assert [h["flag"] for h in team_history(store, 2)] == [f"B9-{i}" for i in range(300, 500)]


def test_history_is_written_when_the_processes_are_stopped(redis_server, tmp_path):
    """What was buffered when SIGTERM came is written before the web and submit-server exit."""
    faust = free_port()
    game = start_web(redis_server.url, tmp_path, prepare=lambda s: start_at_round(s, 2),
                     edit=lambda d: d.update(submission={"faust_port": faust, "ructf_port": None,
                                                         "forcad_port": None}))
    submit = Process(["submit-server", "-c", str(game.path)], tmp_path, "submit").start(("127.0.0.1", faust))
    try:
        send_lines(tcp_session("faust", faust, game.token(1)), ["tcp-junk"])
        requests.put(game.url + "/flags", json=["http-junk"], headers={"X-Team-Token": game.token(1)}, timeout=5)
        submit.stop()
        game.stop()
        assert submit.proc.returncode == 0 and game.process.proc.returncode == -signal.SIGTERM
        assert {h["flag"] for h in team_history(game.store, 1)} == {"tcp-junk", "http-junk"}
    finally:
        submit.kill()
        game.stop()


# -- languages --------------------------------------------------------------------------------
_SKIPPED = {"code", "pre", "script", "style"}  # code samples: commands, tokens, flags, JSON


class _Visible(HTMLParser):
    """The text a reader sees: text nodes (outside code samples) and placeholders."""

    def __init__(self) -> None:
        super().__init__()
        self.skipping = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.skipping += tag in _SKIPPED
        self.parts += [value for name, value in attrs if name in ("placeholder", "title") and value]

    def handle_endtag(self, tag: str) -> None:
        self.skipping -= tag in _SKIPPED

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


# Latin words a Chinese page may show: protocol, dialect and format names, the language switch.
ALLOWED = {"TCP", "HTTP", "JSON", "ISO", "IP", "NOP", "ssh", "flag", "faust", "ructf", "forcad", "English"}


def english_words(page: str, names: set[str]) -> set[str]:
    """Latin words in the visible text of `page` that are not allowed identifiers: URLs,
    words with digits, dots or underscores (names, numbers, keys), team and service names."""
    parser = _Visible()
    parser.feed(page)
    text = re.sub(r"\S*(://|/)\S*", " ", " ".join(parser.parts))  # URLs and paths
    tokens = re.findall(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*", text)
    return {w for w in tokens if w.isascii() and w.isalpha() and w not in ALLOWED and w not in names}


def test_admin_panel_portal_and_logins_in_chinese_show_no_english(web):
    """Issue 12: in zh the pages show no English beyond identifiers, whatever the panel
    shows (a pending request, a schedule, a notice, an error, a finished game's reopen form)."""
    names = {web.config.game.name} | {t.name for t in web.config.teams} | {s.name for s in web.config.services}
    for path in ("/team/login?lang=zh", "/admin/login?lang=zh"):
        assert english_words(requests.get(web.url + path, timeout=5).text, names) == set(), path
    admin, _ = login(web, "admin", ADMIN_PASSWORD)
    token = csrf_of(admin, web.url + "/admin/?lang=zh")
    web.store.set_schedule(time.time() + 3600, None, "test", no_stop=True)
    web.store.record_check(2, 1, 1, Status.MUMBLE, public="", private="trace")
    pages = []
    for action, form in [("state", {"action": "pause"}), ("announce", {"text": ""}),
                         ("team", {"id": "2", "name": "team2", "disabled": "0"})]:
        pages.append(admin.post(f"{web.url}/admin/do/{action}", data={**form, "csrf": token}, timeout=5).text)
    assert "已请求暂停" in pages[0] and "公告需要内容" in pages[1] and "队伍 2 已保存" in pages[2]
    web.store.set_state(GameState.OVER)
    pages.append(admin.get(web.url + "/admin/", timeout=5).text)
    assert 'id="btn-reopen"' in pages[-1] and 'id="pending"' in pages[-1]
    pages.append(admin.get(web.url + "/admin/checks?team=1&service=1", timeout=5).text)
    team, _ = login(web, "team", web.token(1))
    requests.put(web.url + "/flags", json=[flag_of(web.store, 2, 2, 1)], headers={"X-Team-Token": web.token(1)},
                 timeout=5)
    flags = f"{flag_of(web.store, 2, 2, 1)}\n{flag_of(web.store, 2, 1, 1)}\njunk\n"
    pages.append(team.post(web.url + "/team/submit", data={"flags": flags, "csrf": csrf_of(team, web.url + "/team/")},
                           timeout=5).text)
    assert 'id="submit-result"' in pages[-1] and "网页表单" in pages[-1]
    for page in pages:
        assert english_words(page, names) == set()


# Every value a computed key of the templates (t('prefix' + value)) or the admin's messages
# (Message(f"prefix{value}")) can take; a new computed key must be added here.
COMPUTED = {
    "state.": [s.value for s in GameState],
    "action.": list(REQUESTS),
    "verdict.": [v.value for v in Verdict],
    "channel.": list(CHANNELS),
    "admin.engine.": list(ENGINE_FIGURES),
    "admin.sessions.": ["revoke", "rotate"],
    "admin.schedule.": ["start", "stop"],
    "admin.is.": [s.value for s in GameState],
}
VARIABLES = {  # t(expression) of the templates: the keys it can be
    "box.status": [s.name for s in Status] + ["RECOVERING"],
    "cell.status": [s.name for s in Status] + ["RECOVERING"],
    "item.status_name": [s.name for s in Status],
    "title_key": ["portal", "admin"],
    "field": ["token", "password"],
}
WEB = Path(__file__).resolve().parent.parent / "scoreboard" / "web"


def test_every_text_the_pages_and_the_admin_use_exists_in_both_languages():
    """Issue 12: each key the templates and admin.py use is in the table in zh and en, with
    the same fields in both."""
    used: set[str] = set()
    for template in (WEB / "templates").glob("*.html"):
        if template.name == "report.html":  # the after-action report has its own table: the next test
            continue
        for call in re.findall(r"\bt\(([^()]*)\)", template.read_text()):
            argument = call.split(",")[0].strip()
            if literal := re.fullmatch(r"'([^']+)'", argument):
                used.add(literal.group(1))
            elif computed := re.fullmatch(r"'([^']+)'\s*[+~].*", argument):
                used.update(computed.group(1) + value for value in COMPUTED[computed.group(1)])
            else:
                used.update(VARIABLES[argument])
    for source in WEB.glob("*.py"):
        for key in re.findall(r'\b(?:Message|t)\(\s*(f?"[^"]+")', source.read_text()):
            if key.startswith("f"):
                prefix = key[2:].split("{")[0]
                used.update(prefix + value for value in COMPUTED[prefix])
            else:
                used.add(key.strip('"'))
    assert sorted(used - set(TEXTS)) == []
    fields = string.Formatter()
    for key, (zh, en) in TEXTS.items():
        assert zh and en, key
        assert {f[1] for f in fields.parse(zh) if f[1]} == {f[1] for f in fields.parse(en) if f[1]}, key


def test_every_text_the_after_action_report_uses_exists_in_both_languages():
    from scoreboard.afteraction.texts import TEXTS as REPORT_TEXTS

    page = (WEB / "templates" / "report.html").read_text()
    used = {*re.findall(r"\bt\('([^']+)'", page), *re.findall(r"\btx\.(\w+)", page)}
    assert used and sorted(used - set(REPORT_TEXTS)) == []
    fields = string.Formatter()
    for key, (zh, en) in REPORT_TEXTS.items():
        assert zh and en, key
        assert {f[1] for f in fields.parse(zh) if f[1]} == {f[1] for f in fields.parse(en) if f[1]}, key
