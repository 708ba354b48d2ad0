"""HTTP submission (PUT /flags) against the real web process."""

import pytest
import requests

from deploy.redis_server import free_port
from tests.conftest import game_data
from tests.game_helpers import flag_of, start_at_round
from tests.processes import Process, write_game


@pytest.fixture
def web(make_game, tmp_path, redis_server):
    config, store = make_game(teams=3)
    start_at_round(store, 2)
    data = game_data(redis_server.url, teams=3)
    data["game"]["name"] = config.game.name
    data["submission"] = {"limits": {"batch_size": 5000, "request_bytes": 400_000}}
    port = free_port()
    path = write_game(tmp_path / "game.yml", data)
    proc = Process(["web", "-c", str(path), "--port", str(port)], tmp_path, "web").start(("127.0.0.1", port))
    yield config, store, f"http://127.0.0.1:{port}"
    proc.stop()


def put(url, token, body, **kw):
    return requests.put(f"{url}/flags", json=body, headers={"X-Team-Token": token}, timeout=10, **kw)


def test_put_flags_answers_each_flag_in_order(web):
    config, store, url = web
    good, own = flag_of(store, 2, 2, 1), flag_of(store, 2, 1, 1)
    reply = put(url, config.team(1).token, [good, good, own, "junk"])
    assert reply.status_code == 200
    assert reply.json() == [
        {"flag": good, "status": True, "msg": f"[{good}] Accepted. 2 flag points"},
        {"flag": good, "status": False, "msg": f"[{good}] Denied: you already submitted this flag"},
        {"flag": own, "status": False, "msg": f"[{own}] Denied: flag is your own (Denied: invalid or own flag)"},
        {"flag": "junk", "status": False, "msg": "[junk] Denied: invalid flag (Denied: invalid or own flag)"},
    ]


def test_trailing_slash_works_too(web):
    config, store, url = web
    reply = requests.put(f"{url}/flags/", json=[], headers={"X-Team-Token": config.team(1).token}, timeout=5)
    assert reply.status_code == 200 and reply.json() == []


def test_five_thousand_flag_batch_is_answered(web):
    config, store, url = web
    flags = [flag_of(store, 2, 2 + i % 2, 1 + (i // 2) % 2, (i // 4) % 16) for i in range(64)] + ["x"] * 4936
    reply = put(url, config.team(1).token, flags)
    assert reply.status_code == 200
    body = reply.json()
    assert len(body) == 5000 and sum(r["status"] for r in body) == 64


@pytest.mark.parametrize(("token", "body", "code", "text"), [
    (None, [], 401, "invalid team token"),
    ("wrong", [], 401, "invalid team token"),
    ("team", {"flag": "x"}, 400, "JSON list of flag strings"),
    ("team", [1, 2], 400, "JSON list of flag strings"),
    ("team", ["x"] * 5001, 400, "too many flags in one request"),
])
def test_request_level_errors(web, token, body, code, text):
    config, store, url = web
    headers = {"X-Team-Token": config.team(1).token if token == "team" else token} if token else {}
    reply = requests.put(f"{url}/flags", json=body, headers=headers, timeout=10)
    assert reply.status_code == code
    assert reply.json()["status"] is False and text in reply.json()["msg"]


def test_not_json_and_too_large_bodies(web):
    config, store, url = web
    headers = {"X-Team-Token": config.team(1).token}
    bad = requests.put(f"{url}/flags", data=b"\xff\x00not json", headers=headers, timeout=5)
    assert bad.status_code == 400
    huge = requests.put(f"{url}/flags", data=b"[" + b'"x",' * 200_000 + b'"x"]', headers=headers, timeout=10)
    assert huge.status_code == 413 and "request too large" in huge.json()["msg"]
