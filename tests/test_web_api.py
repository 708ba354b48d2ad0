"""Public, team and admin JSON APIs of the real web process, with their refusals."""

from __future__ import annotations

import datetime as dt

import pytest
import requests

from scoreboard.types import Status
from tests.game_helpers import flag_of, start_at_round
from tests.web_helpers import ADMIN_PASSWORD, start_web, wait_until

EVIL = "<script>alert('x')</script>"


def _prepare(store):
    start_at_round(store, 3)
    store.record_flag(2, 2, 1, 0, flag_of(store, 2, 2, 1), "private-id-2", "user-2-r2")
    store.record_flag(3, 2, 1, 0, flag_of(store, 3, 2, 1), "private-id-3", "user-2-r3")
    store.record_flag(3, 3, 2, 0, flag_of(store, 3, 3, 2), "private-id-x", None)
    store.record_check(3, 1, 1, Status.DOWN, public=EVIL, private="traceback: secret")
    store.submit(1, [(flag_of(store, 3, 2, 1), 2, 1, 3)])


def _evil_team(data):
    data["teams"][1]["name"] = EVIL


@pytest.fixture(scope="module")
def web(redis_server, tmp_path_factory):
    game = start_web(redis_server.url, tmp_path_factory.mktemp("api"), prepare=_prepare, edit=_evil_team)
    yield game
    game.stop()


def get(web, path, **kw):
    return requests.get(web.url + path, timeout=10, **kw)


def test_teams_and_services_without_tokens(web):
    teams = get(web, "/api/teams").json()
    assert [t["id"] for t in teams] == [1, 2, 3, 4]
    assert teams[0] == {"id": 1, "name": "team1", "address": "127.0.1.1"}
    assert teams[1]["name"] == EVIL
    assert [s["name"] for s in get(web, "/api/services").json()] == ["svc1", "svc2"]
    for path in ("/api/teams", "/api/scoreboard", "/api/ctftime", "/api/attack.json", "/api/round", "/metrics"):
        body = get(web, path).text
        assert not any(web.token(t) in body for t in range(1, 6)), path


def test_round(web):
    info = get(web, "/api/round").json()
    assert info["round"] == 3 and info["state"] == "running" and info["round_seconds"] == 5
    assert 0 <= info["remaining"] <= 5 and info["round_start"] > 0


def test_scoreboard(web):
    board = get(web, "/api/scoreboard").json()
    assert board["ranking"][0]["name"] == "team1" and board["ranking"][0]["captured"] == 1
    assert board["matrix"]["1:1"] == {"status": "DOWN", "message": EVIL, "round": 3}
    assert "secret" not in str(board) and "private-id" not in str(board)
    assert board["attacks"][0]["a"] == 1
    wait_until(lambda: get(web, "/api/scoreboard").json()["first_bloods"].get("1"), what="first blood backfill")


def test_attack_data_forcad_and_saarctf_shapes(web):
    assert get(web, "/api/client/attack_data").json() == {"svc1": {"127.0.2.1": ["user-2-r2", "user-2-r3"]},
                                                          "svc2": {}}
    saar = get(web, "/api/attack.json").json()
    assert saar["teams"][0] == {"id": 1, "name": "team1", "ip": "127.0.1.1"}
    assert saar["flag_ids"] == {"svc1": {"127.0.2.1": {"2": ["user-2-r2"], "3": ["user-2-r3"]}}, "svc2": {}}


def test_ctftime_feed(web):
    feed = get(web, "/api/ctftime").json()
    assert feed["tasks"] == ["svc1", "svc2"]
    assert feed["standings"][0] == {"pos": 1, "team": "team1", "score": feed["standings"][0]["score"]}
    scores = [s["score"] for s in feed["standings"]]
    assert [s["pos"] for s in feed["standings"]] == [1 + sum(o > x for o in scores) for x in scores]  # ties share


def test_metrics(web):
    text = get(web, "/metrics").text
    assert "adrange_round 3.0\n" in text
    assert "adrange_flags_accepted_total 1.0\n" in text
    assert 'adrange_flags_denied_total{verdict="duplicate"} 0.0\n' in text
    assert 'adrange_boxes{status="DOWN"} 1.0\n' in text
    assert 'adrange_game_state{state="running"} 1.0' in text
    assert 'adrange_dispatch_delay_seconds_bucket{le="+Inf"} 0.0' in text
    assert "adrange_chains_unstarted_total 0.0" in text


def test_team_api_needs_the_token(web):
    assert get(web, "/api/team/status").status_code == 401
    assert get(web, "/api/team/status", headers={"X-Team-Token": "nope"}).status_code == 401
    own = get(web, "/api/team/status", headers={"X-Team-Token": web.token(1)}).json()
    assert own["team"] == 1 and own["services"][0]["status"] == "DOWN"
    assert own["captures"][0]["v"] == 2
    assert get(web, "/api/team/submissions", headers={"X-Team-Token": web.token(1)}).json() == []


def test_admin_api_needs_admin(web):
    assert get(web, "/admin/api/board").status_code == 401
    assert get(web, "/admin/api/board", auth=("admin", "wrong")).status_code == 401
    truth = get(web, "/admin/api/board", auth=("admin", ADMIN_PASSWORD)).json()
    assert truth["matrix"]["1:1"]["private"] == "traceback: secret"
    log = get(web, "/admin/api/checks?team=1&service=1", auth=("admin", ADMIN_PASSWORD)).json()
    assert log[0]["private"] == "traceback: secret" and log[0]["round"] == 3
    refused = requests.post(f"{web.url}/admin/api/state", json={"action": "pause"}, timeout=5)
    assert refused.status_code == 401
    cookie_only = requests.Session()
    assert cookie_only.post(f"{web.url}/admin/api/state", json={"action": "pause"}).status_code == 401


def test_board_page_escapes_team_names(web):
    page = get(web, "/").text
    assert "<script>alert" not in page


@pytest.fixture
def frozen_web(redis_server, tmp_path):
    past = (dt.datetime.now() - dt.timedelta(seconds=5)).isoformat()

    def prepare(store):
        start_at_round(store, 2)

    game = start_web(redis_server.url, tmp_path, prepare=prepare, freeze_at=past)
    yield game
    game.stop()


def test_frozen_board_hides_later_flags_but_admin_sees_them(frozen_web):
    web = frozen_web
    web.store.submit(1, [(flag_of(web.store, 2, 2, 1), 2, 1, 2)])
    public = get(web, "/api/scoreboard").json()
    assert public["frozen"] is True and sum(r["captured"] for r in public["ranking"]) == 0
    assert public["attacks"] == []
    truth = get(web, "/admin/api/board", auth=("admin", ADMIN_PASSWORD)).json()
    assert sum(r["captured"] for r in truth["ranking"]) == 1
