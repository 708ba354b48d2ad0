"""`adrange rescore` (recompute from the event streams, compare, repair) and `adrange export`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
import redis

from scoreboard.config import parse_config
from scoreboard.ranking import rank
from scoreboard.scoring.audit import rescore
from scoreboard.scoring.replay import replay
from scoreboard.store import GameStore
from scoreboard.submission.sync import Submissions
from scoreboard.types import Status
from tests.conftest import game_data
from tests.game_helpers import flag_of, start_at_round
from tests.processes import ROOT, write_game

TEAMS = 3


@pytest.fixture(params=["faust", "rating", "awd"])
def played(request, redis_server, tmp_path):
    """A game file and its store after three rounds of captures and checks."""
    data = game_data(redis_server.url, teams=TEAMS, services=2, scoring={"formula": request.param})
    config = parse_config(data)
    store = GameStore(config, redis.Redis.from_url(redis_server.url, decode_responses=True))
    store.init()
    subs = Submissions(store)
    start_at_round(store, 1)
    for round_ in (1, 2, 3):
        if round_ > 1:
            store.open_round(round_)
        for attacker in range(1, TEAMS + 1):
            victims = [v for v in range(1, TEAMS + 1) if v != attacker and (v + round_) % 3]
            subs.submit(attacker, [flag_of(store, round_, v, s) for v in victims for s in (1, 2)])
        for team in range(1, TEAMS + 1):
            for service in (1, 2):
                store.record_check(round_, team, service, Status.OK if (team + service + round_) % 4 else Status.DOWN)
        store.close_round(round_)
    return write_game(tmp_path / "game.yml", data), config, store


def _adrange(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deploy.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _corrupt(store: GameStore) -> None:
    """What a bug or a hand edit could do: a counter off, a field lost, a box emptied."""
    store.redis.hincrby(store.keys.box(1, 1), "captured" if store.config.game.scoring.formula != "faust" else "a:1", 3)
    store.redis.hdel(store.keys.box(2, 2), "ok")
    store.redis.delete(store.keys.box(3, 1))


def test_equal_game_audits_clean(played):
    _, _, store = played
    audit = rescore(store)
    assert audit.equal and not audit.repaired
    assert audit.captures == store.redis.xlen(store.keys.stream("capture")) > 0 and audit.closes == 3


def test_differences_are_named_and_repaired(played):
    _, config, store = played
    truth = {row.team: row.total for row in rank(config, store.counters())}
    _corrupt(store)
    audit = rescore(store)
    assert {d.box for d in audit.differences} == {(1, 1), (2, 2), (3, 1)}
    assert audit.differences[1].fields["ok"][1] > 0 == audit.differences[1].fields["ok"][0]
    assert audit.totals and not audit.repaired
    repaired = rescore(store, repair=True)
    assert repaired.repaired and len(repaired.differences) == 3
    assert rescore(store).equal
    assert {row.team: row.total for row in rank(config, store.counters())} == truth


def test_repair_while_flags_keep_coming_loses_none(played):
    _, config, store = played
    store.open_round(4)
    _corrupt(store)
    stop = threading.Event()
    accepted = []

    def farm() -> None:
        subs, slot = Submissions(store), 0
        while not stop.is_set():
            slot += 1
            flags = [flag_of(store, 4, 2, 1, slot=slot % 16), flag_of(store, 4, 3, 2, slot=slot // 16 % 16)]
            results = subs.submit(1, flags)
            accepted.extend(r for r in results if r.accepted)

    thread = threading.Thread(target=farm)
    thread.start()
    try:
        for _ in range(5):
            rescore(store, repair=True, attempts=200)
    finally:
        stop.set()
        thread.join()
    assert accepted
    assert rescore(store).equal
    rebuilt = replay(config.game.scoring, store.events("capture"), store.events("round"))
    assert rank(config, rebuilt) == rank(config, store.counters())


def test_cli_rescore_exits_1_on_differences_and_0_once_repaired(played):
    path, _, store = played
    assert _adrange("rescore", "-c", str(path)).returncode == 0
    _corrupt(store)
    found = _adrange("rescore", "-c", str(path))
    assert found.returncode == 1 and "differences" in found.stdout and "--repair" in found.stdout
    fixed = _adrange("rescore", "-c", str(path), "--repair")
    assert fixed.returncode == 0 and "repaired 3 boxes" in fixed.stdout, fixed.stdout + fixed.stderr
    assert rescore(store).equal


def test_export_writes_scoreboard_ctftime_and_every_event(played, tmp_path):
    path, config, store = played
    out = tmp_path / "record"
    done = _adrange("export", "-c", str(path), "-o", str(out))
    assert done.returncode == 0, done.stderr
    board = json.loads((out / "scoreboard.json").read_text())
    ranked = rank(config, store.counters())
    assert [(r["name"], r["rank"]) for r in board["ranking"]] == [(r.name, r.rank) for r in ranked]
    assert [r["total"] for r in board["ranking"]] == [pytest.approx(r.total, abs=0.01) for r in ranked]
    assert set(board["history"]) == {"1", "2", "3"}
    assert board["history"]["3"] == {str(r.team): {"total": r.total, "rank": r.rank} for r in ranked}
    feed = json.loads((out / "ctftime.json").read_text())
    assert feed["standings"][0] == {"pos": 1, "team": ranked[0].name, "score": board["ranking"][0]["total"]}
    for stream in ("capture", "round", "check", "flag", "admin"):
        lines = (out / "events" / f"{stream}.jsonl").read_text().splitlines()
        assert [json.loads(line)["_id"] for line in lines] == [e["_id"] for e in store.events(stream)]
    assert len((out / "events" / "capture.jsonl").read_text().splitlines()) > 0


def test_rescore_says_when_redis_does_not_answer(tmp_path):
    data = game_data("redis://:pw@127.0.0.1:1/0")
    failed = _adrange("rescore", "-c", str(write_game(tmp_path / "game.yml", data)))
    assert failed.returncode == 1 and "does not answer" in failed.stderr and "Traceback" not in failed.stderr
