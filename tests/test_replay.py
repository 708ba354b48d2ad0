"""`adrange replay`: the game replayed from its event streams equals the live history, round
by round to the last digit, from live Redis and from an export folder; the replay server
feeds the real board page, which shows the right ranking at a scrubbed round."""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
from pathlib import Path

import pytest
import requests

from deploy.redis_server import free_port
from scoreboard.afteraction.record import RecordError, from_folder, from_store, load
from scoreboard.afteraction.timeline import PastBoard, Timeline, differences
from scoreboard.effective import apply_overrides
from scoreboard.flags import FlagCodec, FlagError
from scoreboard.scoring.replay import normalize
from scoreboard.types import GameState
from scoreboard.web.board_data import BoardData
from tests.afteraction_helpers import RENAMED, ROUNDS, adrange, record_game
from tests.engine_helpers import checker, engine_game, serving, start_ticker, start_worker, wait_closed
from tests.processes import Process
from tests.targets.notes_tcp import NotesServer
from tests.web_helpers import Spectator, wait_until

ADDRESSES = "127.86.{team}.1"  # this file's loopback targets, apart from other tests'
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(params=["faust", "rating", "awd"])
def recorded(request, redis_server, tmp_path):
    return record_game(redis_server.url, tmp_path / "game", request.param)


@pytest.fixture
def faust_game(redis_server, tmp_path):
    return record_game(redis_server.url, tmp_path / "game", "faust")


def _live_counters_after(store, round_: int) -> dict:
    """The counters the close script kept for a round (the live history's source)."""
    raw = json.loads(store.redis.hget(store.keys.history, round_))
    return {tuple(int(x) for x in box.split(":")): normalize(c) for box, c in raw.items()}


def test_replay_equals_live_history_every_round(recorded):
    store = recorded.store
    effective = apply_overrides(store.config, store.overrides())
    live = store.history(effective)
    assert sorted(live) == list(range(1, ROUNDS + 1))
    for record in (from_store(store), from_folder(recorded.export)):
        timeline = Timeline(record)
        assert differences(timeline) == []
        replayed = timeline.history()
        assert replayed == live  # every round, every team: (total, rank), exact floats
        for round_, index in timeline.closes.items():  # the counters behind them, box by box
            counters = timeline.store_at(index).counters()
            scored = {box: c for box, c in counters.items() if box in _live_counters_after(store, round_)}
            assert scored == _live_counters_after(store, round_), round_
        final = PastBoard(record.config, timeline.final()).ranking()
        assert final == BoardData(store.config, store).ranking(public=False)
        assert RENAMED in [row["name"] for row in final]  # the admin's rename, as the live board shows it


def test_replay_of_a_game_played_by_the_real_processes(redis_server, tmp_path, processes):
    """Real ticker, Celery worker and checkers against loopback targets, and a real web process
    taking flags over HTTP from farms that read them off their victims' targets while rounds
    close: the replay equals the live history, and the live board's first blood."""
    config, store, path = engine_game(redis_server.url, tmp_path, teams=3, round_seconds=2,
                                      checkers=[checker("notes_checker.py")], address_scheme=ADDRESSES)
    targets = {team.id: NotesServer(ADDRESSES.format(team=team.id)) for team in config.teams}
    codec = FlagCodec(config.game.secret, config.game.flag_prefix)
    port = free_port()
    stop = threading.Event()

    def farm(attacker: int, victims: list[int]) -> None:
        while not stop.is_set():
            flags = []
            for victim in victims:
                for text in list(targets[victim].notes.values()):
                    with contextlib.suppress(FlagError):
                        codec.verify(text)
                        flags.append(text)
            if flags:
                requests.put(f"http://127.0.0.1:{port}/flags", json=flags, timeout=5,
                             headers={"X-Team-Token": config.team(attacker).token})
            time.sleep(0.1)

    with serving(list(targets.values())):
        processes.append(start_worker(path, tmp_path))
        processes.append(Process(["web", "-c", str(path), "--port", str(port)], tmp_path, "web").start(
            ("127.0.0.1", port)))
        store.set_state(GameState.RUNNING)
        processes.append(start_ticker(path, tmp_path))
        farms = [threading.Thread(target=farm, args=args) for args in ((1, [2, 3]), (2, [1, 3]))]
        for thread in farms:
            thread.start()
        try:
            wait_closed(store, 4, 60)
        finally:
            stop.set()
            for thread in farms:
                thread.join()
        store.request_state("stop", "test")
        wait_until(lambda: store.state()["state"] == GameState.OVER
                   and store.state()["closed_round"] == store.state()["round"], timeout=20, what="game over")
    captures = list(store.events("capture"))
    assert len({e["r"] for e in captures}) >= 3, "flags were taken in several rounds"
    export = tmp_path / "export"
    assert adrange("export", "-c", str(path), "-o", str(export)).returncode == 0
    done = adrange("replay", str(export), "--check")
    assert done.returncode == 0, done.stdout + done.stderr
    live = store.history(config)
    for record in (from_store(store), from_folder(export)):
        timeline = Timeline(record)
        assert timeline.history() == live
        assert timeline.final().first_bloods() == store.first_bloods()  # as the live board follower kept it


def test_export_folder_alone_rebuilds_the_scoring(faust_game):
    record = from_folder(faust_game.export)
    assert record.config.game.scoring == faust_game.config.game.scoring
    assert [(t.id, t.name) for t in record.config.playing_teams] == [
        (t.id, t.name) for t in apply_overrides(faust_game.config, faust_game.store.overrides()).playing_teams]


def test_cli_check_says_equal_and_names_a_difference(faust_game, tmp_path):
    for game in (faust_game.export, faust_game.path):
        done = adrange("replay", str(game), "--check")
        assert done.returncode == 0, done.stderr
        assert f"({ROUNDS} rounds) equal the live history" in done.stdout
    broken = tmp_path / "broken"
    shutil.copytree(faust_game.export, broken)
    captures = (broken / "events" / "capture.jsonl").read_text().splitlines()
    (broken / "events" / "capture.jsonl").write_text("\n".join(captures[:3] + captures[4:]) + "\n")
    done = adrange("replay", str(broken), "--check")
    assert done.returncode == 1
    assert "differs from the live history" in done.stderr and "round 2" in done.stderr


def test_bad_records_get_clear_errors(faust_game, tmp_path):
    with pytest.raises(RecordError, match=r"scoreboard\.json: missing"):
        load(tmp_path)
    bad = tmp_path / "bad"
    shutil.copytree(faust_game.export, bad)
    with (bad / "events" / "round.jsonl").open("a") as out:
        out.write("{not json\n")
    with pytest.raises(RecordError, match=r"round.jsonl line 13: not JSON"):
        load(bad)
    old = tmp_path / "old"
    shutil.copytree(faust_game.export, old)
    board = json.loads((old / "scoreboard.json").read_text())
    del board["setup"]
    (old / "scoreboard.json").write_text(json.dumps(board))
    with pytest.raises(RecordError, match=r"no 'setup'.*-c game\.yml"):
        load(old)
    assert Timeline(load(old, faust_game.path)).history() == faust_game.store.history(
        apply_overrides(faust_game.config, faust_game.store.overrides()))
    done = adrange("replay", str(tmp_path / "nowhere"))
    assert done.returncode == 1 and "no such game file or export folder" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture
def replay_server(faust_game):
    port = free_port()
    process = Process(["replay", str(faust_game.export), "--port", str(port), "--paused", "--speed", "1"],
                      faust_game.path.parent, "replay").start(("127.0.0.1", port))
    yield f"http://127.0.0.1:{port}", faust_game
    process.stop()


def _expected_rows(game, round_: int) -> list[tuple[str, int, float]]:
    """(name, rank, total as the board rounds it) of the live history after `round_`."""
    config = apply_overrides(game.config, game.store.overrides())
    names = {t.id: t.name for t in config.playing_teams}
    rows = sorted(game.store.history(config)[round_].items(), key=lambda kv: (kv[1][1], names[kv[0]]))
    return [(names[team], place, round(total, 2)) for team, (total, place) in rows]


def test_socketio_replay_sends_the_live_boards_messages(replay_server):
    url, game = replay_server
    spectator = Spectator(url).connect()
    try:
        spectator.wait_for("board")
        spectator.client.emit("replay", {"action": "seek", "round": 3})
        board = spectator.wait_for("board", lambda b: b["round"]["closed_round"] == 3)
        assert [(r["name"], r["rank"], r["total"]) for r in board["ranking"]] == _expected_rows(game, 3)
        assert board["history"]["rounds"] == [1, 2, 3]
        assert {k for k in board} >= {"ranking", "matrix", "attacks", "first_bloods", "announcements", "history"}
        before = len(spectator.of("replay"))
        for malformed in ({"action": "seek", "t": "nan"}, {"action": "speed", "speed": "fast"},
                          {"action": "seek", "round": [1]}, {"action": "rewind"}):
            spectator.client.emit("replay", malformed)  # ignored: the replay stays where it was
        wait_until(lambda: len(spectator.of("replay")) >= before + 4, what="answers to malformed controls")
        assert all(s["closed_round"] == 3 and s["speed"] == 1 for s in spectator.of("replay")[before:])
        spectator.client.emit("replay", {"action": "seek", "round": 0})
        spectator.wait_for("board", lambda b: b["round"]["closed_round"] == 0 and not b["attacks"])
        spectator.events.clear()
        spectator.client.emit("replay", {"action": "play"})
        spectator.wait_for("replay", lambda s: not s["playing"] and s["closed_round"] == ROUNDS, timeout=30)
        closes = [e for e in spectator.of("round") if e["type"] == "closed"]
        assert [e["closed_round"] for e in closes] == list(range(1, ROUNDS + 1))
        assert closes[-1]["history"]["rounds"] == list(range(1, ROUNDS + 1))
        assert spectator.of("attacks") and spectator.of("statuses") and len(spectator.of("first_blood")) == 2
        assert spectator.of("announcement")[0]["text"].startswith("svc2")
        last = spectator.of("ranking")[-1]["ranking"]
        assert [(r["name"], r["rank"], r["total"]) for r in last] == [
            (r["name"], r["rank"], r["total"]) for r in BoardData(game.store.config, game.store).ranking(public=False)]
    finally:
        spectator.close()


def _board_rows(page) -> list[tuple[str, int, float]]:
    """(name, rank, total) of the board page's ranking rows."""
    rows = page.eval_on_selector_all("#ranking-body tr", "rows => rows.map(r => [r.querySelector('.team-name')"
                                     ".textContent, r.querySelector('.col-rank').firstChild.textContent, "
                                     "r.querySelector('.col-total').textContent])")
    return [(name, int(place), float(total)) for name, place, total in rows]


@pytest.mark.browser
def test_board_page_shows_the_ranking_of_a_scrubbed_round(replay_server):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    url, game = replay_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url + "/?lang=en&round=5")  # opens at the end of round 5
            page.wait_for_selector(f"#replay-round option[value='{ROUNDS}']", state="attached")
            page.wait_for_function("window.adrangeReplay && window.adrangeReplay.closed_round === 5")
            page.wait_for_function("document.getElementById('round-no').textContent === '5'")
            assert _board_rows(page) == _expected_rows(game, 5)
            for round_ in (4, 2, ROUNDS):
                page.select_option("#replay-round", str(round_))
                page.wait_for_function(f"window.adrangeReplay && window.adrangeReplay.closed_round === {round_}")
                page.wait_for_function(f"document.getElementById('round-no').textContent === '{round_}'")
                assert _board_rows(page) == _expected_rows(game, round_)
            assert page.evaluate("window.pwned") is None  # the renamed team's markup stays text
            # the time scrubber: just after round 3 closed (the game's next event is ms later)
            page.evaluate("""() => { const s = document.getElementById('replay-scrub'), r = window.adrangeReplay;
                s.value = String(r.rounds[2].t - r.start); s.dispatchEvent(new Event('change')); }""")
            page.wait_for_function("window.adrangeReplay.closed_round === 3")
            page.wait_for_function("document.getElementById('round-no').textContent === '3'")
            assert _board_rows(page) == _expected_rows(game, 3)
            # play from the start to the end through the bar
            page.select_option("#replay-round", "0")
            page.wait_for_function("window.adrangeReplay.closed_round === 0")
            page.click("#replay-toggle")
            page.wait_for_function(f"!window.adrangeReplay.playing && window.adrangeReplay.closed_round === {ROUNDS}",
                                   timeout=30000)
            page.wait_for_function(f"document.getElementById('round-no').textContent === '{ROUNDS}'")
            assert _board_rows(page) == _expected_rows(game, ROUNDS)
            page.click("#replay-prev")
            page.wait_for_function(f"window.adrangeReplay.closed_round === {ROUNDS - 1}")
            page.click("button.lang[data-lang=zh]")
            assert page.locator("#replay-toggle").inner_text().endswith("播放")
            assert page.locator("[data-t=attacks]").inner_text() == "实时攻击"
        finally:
            browser.close()
