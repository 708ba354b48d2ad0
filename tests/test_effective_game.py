"""Admin edits reach every process: the judge, TCP and HTTP submission, the portal, the
round close and other processes' effective game (issue 9, items 4, 6 and 9)."""

from __future__ import annotations

import re
import time

import pytest
import redis
import requests

from scoreboard.access import team_access
from scoreboard.config import derive_token, parse_config
from scoreboard.effective import EffectiveGame
from scoreboard.ranking import rank
from scoreboard.store import GameStore
from scoreboard.submission.sync import Submissions
from scoreboard.submission.verdicts import Verdict
from scoreboard.types import Status
from tests.game_helpers import flag_of, start_at_round
from tests.submit_helpers import LineClient, tcp_server
from tests.web_helpers import ADMIN_PASSWORD, start_web, wait_until

FAUST_GREETING = b"adrange flag submission\nOne flag per line please!\n\n"
RUCTF_GREETING = b"Enter your flags, finished with newline (or empty line to exit)\n"
FORCAD_GREETING = b"Welcome! Please, enter your team token:\n"
NOP_TEXT = "Denied: the NOP team cannot submit flags"
NOP_TEAM = 5  # game_data: teams 1-4 play, 5 is the NOP team


@pytest.fixture
def web(redis_server, tmp_path):
    game = start_web(redis_server.url, tmp_path, prepare=lambda s: start_at_round(s, 2),
                     edit=lambda d: d.update(deploy={"mode": "hosted"}))
    yield game
    game.stop()


def admin_api(web, name: str, body: dict) -> requests.Response:
    return requests.post(f"{web.url}/admin/api/{name}", json=body, auth=("admin", ADMIN_PASSWORD), timeout=5)


def put_flags(web, token: str, flags: list[str]) -> requests.Response:
    return requests.put(f"{web.url}/flags", json=flags, headers={"X-Team-Token": token}, timeout=5)


def forcad(port: int, token: str) -> tuple[LineClient, bytes]:
    """A forcad session after its token line, with the server's answer to the token."""
    client = LineClient(port)
    assert client.read_exact_text(FORCAD_GREETING) == FORCAD_GREETING
    client.send(token.encode() + b"\n")
    return client, client.line()


def forcad_once_known(port: int, token: str, timeout: float = 3) -> LineClient:
    """A forcad session for a token the server may learn only now (tried 4 times a second:
    every refusal counts towards the source's lockout)."""
    deadline = time.monotonic() + timeout
    while True:
        client, answer = forcad(port, token)
        if answer == b"Now enter your flags, one in a line:":
            return client
        assert answer == b"Invalid team token" and time.monotonic() < deadline, answer
        time.sleep(0.25)


def by_address(port: int, source: str, greeting: bytes) -> LineClient:
    client = LineClient(port, source=source)
    assert client.read_exact_text(greeting) == greeting
    return client


def reply_to(client: LineClient, flag: str) -> str:
    client.send(f"{flag}\n".encode())
    return client.line().decode()


def test_admin_added_team_submits_over_http_and_every_tcp_dialect_and_scores(web):
    with tcp_server(web.config, web.store) as ports:  # running before the team exists
        reply = admin_api(web, "team", {"name": "latecomer", "token": "late-token-123"})
        assert reply.status_code == 200 and reply.json()["msg"] == "team 6 added, token late-token-123"
        http = put_flags(web, "late-token-123", [flag_of(web.store, 2, 2, 1)])
        assert http.status_code == 200 and http.json()[0]["msg"].endswith("] Accepted. 2 flag points")

        client = forcad_once_known(ports["forcad"], "late-token-123")
        assert reply_to(client, flag_of(web.store, 2, 3, 1)).endswith("] Accepted. 2 flag points")
        faust = by_address(ports["faust"], "127.0.6.1", FAUST_GREETING)
        flag = flag_of(web.store, 2, 4, 1)
        assert reply_to(faust, flag) == f"{flag} OK Accepted. 2 flag points"
        ructf = by_address(ports["ructf"], "127.0.6.2", RUCTF_GREETING)
        flag = flag_of(web.store, 2, 2, 2)
        assert reply_to(ructf, flag) == f"[{flag}] Accepted. 2 flag points"
        stolen = flag_of(web.store, 2, 6, 1)  # the new team's own flags count for the others
        assert reply_to(by_address(ports["faust"], "127.0.1.1", FAUST_GREETING), stolen).startswith(f"{stolen} OK")

    game = EffectiveGame(web.store)
    row = next(r for r in rank(game.current(), web.store.counters()) if r.team == 6)
    assert (row.name, row.captured, row.lost) == ("latecomer", 4, 1) and row.atk > 0
    board = wait_until(lambda: next((r for r in requests.get(f"{web.url}/api/scoreboard", timeout=5)
                                     .json()["ranking"] if r["team"] == 6), None), what="team 6 on the board")
    assert board["captured"] == 4


def test_disabled_service_flags_are_denied_and_its_sla_no_longer_counts(make_game):
    config, store = make_game(teams=3)
    start_at_round(store, 2)
    game = EffectiveGame(store, max_age=0)
    subs = Submissions(store, game)
    assert subs.submit(1, [flag_of(store, 2, 2, 2)])[0].accepted
    for team in (1, 2, 3):
        for service in (1, 2):
            store.record_check(2, team, service, Status.OK)
    store.set_override("service", 2, {"disabled": True}, "admin")

    assert [r.verdict for r in subs.submit(1, [flag_of(store, 2, 3, 2), flag_of(store, 2, 3, 1)])] == \
        [Verdict.INVALID, Verdict.ACCEPTED]
    assert store.active_boxes() == ["1:1", "2:1", "3:1"]
    assert store.close_round(2, config=game.current())
    assert not {"ok", "rounds", "counted"} & set(store.redis.hgetall(store.keys.box(1, 2)))  # no SLA round
    assert store.counters()[(1, 1)]["ok"] == 1
    earned = store.counters()[(1, 2)]  # what the disabled service earned before stays; no SLA after
    assert earned and not {"ok", "rounds", "counted"} & set(earned)


def test_disabled_team_is_refused_everywhere_and_its_flags_are_invalid(web):
    session = requests.Session()
    token = re.search(r'name="csrf" value="([^"]+)"', session.get(f"{web.url}/admin/login", timeout=5).text)[1]
    session.post(f"{web.url}/admin/login", data={"password": ADMIN_PASSWORD, "csrf": token}, timeout=5)
    token = re.search(r'name="csrf" value="([^"]+)"', session.get(f"{web.url}/admin/", timeout=5).text)[1]
    with tcp_server(web.config, web.store) as ports:
        open_session, answer = forcad(ports["forcad"], web.token(2))
        assert answer == b"Now enter your flags, one in a line:"
        open_faust = by_address(ports["faust"], "127.0.2.1", FAUST_GREETING)
        # The panel's form sends the hidden "0" before the ticked box's "1".
        session.post(f"{web.url}/admin/do/team", timeout=5, data=[
            ("id", "2"), ("name", "team2"), ("address", "127.0.2.1"), ("disabled", "0"), ("disabled", "1"),
            ("csrf", token)])
        assert web.store.overrides()[("team", 2)]["disabled"] is True

        assert put_flags(web, web.token(2), [flag_of(web.store, 2, 1, 1)]).status_code == 401
        wait_until(lambda: reply_to(open_session, "junk") == "[junk] Denied: your address belongs to no team",
                   timeout=3, what="the open forcad session of the disabled team refused")
        flag = flag_of(web.store, 2, 1, 1)
        assert reply_to(open_session, flag) == f"[{flag}] Denied: your address belongs to no team"
        assert reply_to(open_faust, flag) == f"{flag} ERR Denied: your address belongs to no team"
        assert forcad(ports["forcad"], web.token(2))[1] == b"Invalid team token"
        ructf = by_address(ports["ructf"], "127.0.2.1", RUCTF_GREETING)
        assert reply_to(ructf, flag) == f"[{flag}] Denied: your address belongs to no team"
        victim = flag_of(web.store, 2, 2, 1)
        assert reply_to(by_address(ports["faust"], "127.0.1.1", FAUST_GREETING), victim) == \
            f"{victim} INV Denied: invalid flag (Denied: invalid or own flag)"
    assert put_flags(web, web.token(1), [victim]).json()[0]["msg"].endswith(
        "] Denied: invalid flag (Denied: invalid or own flag)")
    assert requests.get(f"{web.url}/api/team/status", headers={"X-Team-Token": web.token(2)},
                        timeout=5).status_code == 401
    assert web.store.stats().get("accepted", 0) == 0


def test_readdressed_team_reaches_another_process_within_a_second(web, redis_server):
    other = GameStore(parse_config(web.data), redis.Redis.from_url(redis_server.url, decode_responses=True))
    game = EffectiveGame(other)
    assert game.current().team(2).address == "127.0.2.1"
    before = game.version
    assert admin_api(web, "team", {"id": 2, "address": "10.9.9.9"}).status_code == 200
    edited = time.monotonic()
    wait_until(lambda: game.current().team(2).address == "10.9.9.9", timeout=3, what="the new address")
    assert time.monotonic() - edited < 1.5
    assert game.version != before and game.current().team(2).name == "team2"


def test_rename_keeps_the_token_and_the_ssh_password(web):
    added = admin_api(web, "team", {"name": "latecomer"}).json()["msg"]
    token = derive_token(web.config.game.secret, 6)
    assert added == f"team 6 added, token {token}"
    game = EffectiveGame(web.store, max_age=0)
    passwords = {team: team_access(game.current(), team)[0]["password"] for team in (2, 6)}
    for team in (2, 6):
        assert admin_api(web, "team", {"id": team, "name": f"renamed{team}"}).status_code == 200
    config = game.current()
    assert (config.team(2).token, config.team(6).token) == (web.token(2), token)
    for team, secret in ((2, web.token(2)), (6, token)):
        access = team_access(config, team)[0]
        assert access["password"] == passwords[team] and access["host"] == f"127.0.{team}.1"
        page = requests.get(f"{web.url}/team/", headers={"X-Team-Token": secret}, timeout=5).text
        assert f"renamed{team}" in page and passwords[team] in page


def test_nop_team_cannot_submit_over_http_or_tcp(web):
    nop_token = web.token(NOP_TEAM)
    flag = flag_of(web.store, 2, 1, 1)
    reply = put_flags(web, nop_token, [flag, "junk"])
    assert reply.status_code == 200
    assert reply.json() == [{"flag": f, "status": False, "msg": f"[{f}] {NOP_TEXT}"} for f in (flag, "junk")]
    with tcp_server(web.config, web.store) as ports:
        client, answer = forcad(ports["forcad"], nop_token)
        assert answer == b"Now enter your flags, one in a line:"
        assert reply_to(client, flag) == f"[{flag}] {NOP_TEXT}"
        assert reply_to(by_address(ports["faust"], "127.0.5.1", FAUST_GREETING), flag) == f"{flag} ERR {NOP_TEXT}"
        assert reply_to(by_address(ports["ructf"], "127.0.5.1", RUCTF_GREETING), flag) == f"[{flag}] {NOP_TEXT}"
    # each process counts its denials and adds them up about once a second
    stats = wait_until(lambda: (s := web.store.stats()).get("denied:nop_submitter") == 5 and s, what="5 denials")
    assert stats.get("accepted", 0) == 0
    assert list(web.store.events("capture")) == []


def test_save_team_refuses_bad_input_with_a_clear_message(web):
    refused = [
        ({"name": ""}, "a new team needs a name"),
        ({"name": "x" * 65}, "1 to 64 characters"),
        ({"name": "team1"}, "team name 'team1' is taken"),
        ({"name": "new", "address": "not a host!"}, "neither a host name nor an IP address"),
        ({"name": "new", "address": "999.1.1.1"}, "neither a host name nor an IP address"),
        ({"name": "new", "token": "short"}, "at least 8 characters"),
        ({"name": "new", "token": web.token(1)}, "belongs to another team"),
        ({"id": 99, "name": "ghost"}, "no team with id 99"),
        ({"id": 2, "name": "team3"}, "team name 'team3' is taken"),
        ({"id": 2, "token": "a-new-token-123"}, "token cannot be changed"),
    ]
    for body, message in refused:
        reply = admin_api(web, "team", body)
        assert reply.status_code == 409 and message in reply.json()["msg"], (body, reply.text)
    wrong_type = admin_api(web, "team", {"id": "two", "name": "x"})
    assert wrong_type.status_code == 400 and "a team id is a number" in wrong_type.json()["msg"]
    assert web.store.overrides() == {}
    assert admin_api(web, "team", {"id": 2, "address": "box2.example.org"}).status_code == 200


def test_overrides_version_moves_with_every_edit_and_never_repeats_after_a_reset(make_game):
    config, store = make_game()
    assert store.overrides_version() == 0
    first = store.set_override("team", 2, {"name": "a"}, "admin")
    assert store.overrides_version() == first and store.set_override("team", 2, {"name": "b"}, "admin") == first + 1
    game = EffectiveGame(store, max_age=0)
    assert game.current().team(2).name == "b" and game.version == first + 1
    store.reset()
    store.init()
    time.sleep(0.01)
    store.set_override("team", 3, {"name": "c"}, "admin")
    assert store.overrides_version() not in (first, first + 1)
    assert game.current().team(3).name == "c" and game.current().team(2).name == "team2"
