"""The round clock: lease and standby, pause/resume/stop, restarts, game start and end.

Real ticker processes and a real Redis; no worker is needed (boxes nobody checked close as
CHECKER_ERROR "checker did not run"), which also makes the close counts easy to prove.
"""

from __future__ import annotations

import datetime as dt
import random
import time

import pytest

from checker.round_plan import (
    LATE_TOLERANCE,
    RECORD_MARGIN,
    chain_room,
    missing_result,
    next_round_start,
    release_plan,
    spread_window,
)
from scoreboard.config import Service
from scoreboard.types import GameState, Status
from tests.engine_helpers import checker, engine_game, round_events, start_ticker, wait_closed, wait_until

ROUND = 1.0


@pytest.fixture
def game(redis_server, tmp_path):
    """A running-ready 2-team game (+ NOP) with 1 s rounds, and the tickers a test starts."""
    config, store, path = engine_game(redis_server.url, tmp_path, teams=2, round_seconds=ROUND,
                                      checkers=[checker("notes_checker.py", timeout=None)])
    tickers = []

    def ticker(name: str = "ticker"):
        process = start_ticker(path, tmp_path, name)
        tickers.append(process)
        return process

    yield store, ticker
    for process in tickers:
        process.kill()


def assert_rounds_exact(store) -> None:
    """Rounds opened 1, 2, 3, ... and each closed exactly once, in order; SLA counted once per close."""
    events = round_events(store)
    opened = [r for kind, r in events if kind == "opened"]
    closed = [r for kind, r in events if kind == "closed"]
    assert opened == list(range(1, len(opened) + 1))
    assert closed == list(range(1, len(closed) + 1))
    assert store.counters()[(1, 1)] == {"error": len(closed), "rounds": len(closed)}


def holder_pid(store) -> int | None:
    holder = store.ticker_lease_holder()
    return int(holder.split(":")[1]) if holder else None


# -- pure clock rules ---------------------------------------------------------------
def test_a_slightly_late_ticker_keeps_the_cadence_and_a_very_late_one_restarts_the_clock():
    assert next_round_start(100, 60, 160.5) == 160
    assert next_round_start(100, 60, 160 + LATE_TOLERANCE * 60 - 1) == 160
    assert next_round_start(100, 60, 400) == 400  # missed rounds are not replayed


def test_chain_releases_are_spread_interleaved_and_leave_room_for_the_expected_chain():
    assert spread_window(60, 3) == 30
    assert spread_window(60, 45) == pytest.approx(15 - RECORD_MARGIN)
    assert spread_window(2, 5) == 0
    service = Service(name="s", checker={"protocol": "cli", "path": "c.py", "timeout": 10})
    assert chain_room(service, []) == 50.5  # nothing learned yet: the whole budget of 5 actions
    assert chain_room(service, [0.2, 0.4]) == pytest.approx(11.1)  # + last action's timeout + slack
    assert chain_room(service, [40]) == 50.5
    boxes = [(team, service, 30.0) for service in (1, 2, 3) for team in range(1, 101)]
    plan = release_plan(boxes, random.Random(1))
    offsets = [offset for offset, _, _ in plan]
    assert offsets == sorted(offsets) and min(offsets) >= 0 and max(offsets) <= 30.001
    assert max(offsets) - min(offsets) > 25
    # With no room to spread (window 0) services are interleaved, not queued one after another.
    tight = release_plan([(team, service, 0.0) for service in (1, 2) for team in range(1, 21)], random.Random(2))
    first_half = [service for _, _, service in tight[:20]]
    assert 5 <= first_half.count(2) <= 15


def test_a_box_without_result_is_never_the_teams_fault():
    for attempts, deadline in [(0, 0), (1, 101), (1, 50)]:  # never started, still running, worker lost
        status, public, _ = missing_result(attempts, deadline, 100)
        assert status == Status.CHECKER_ERROR and "platform" in public


# -- processes ----------------------------------------------------------------------
def test_only_one_ticker_is_active_and_the_standby_takes_over_after_kill_9(game):
    store, ticker = game
    store.set_state(GameState.RUNNING)
    first = ticker("first")
    wait_until(lambda: holder_pid(store) == first.proc.pid, 10)
    second = ticker("second")
    wait_closed(store, 2, 10)
    assert holder_pid(store) == first.proc.pid
    first.kill()
    killed_at = time.monotonic()
    wait_until(lambda: holder_pid(store) == second.proc.pid, 10)
    assert time.monotonic() - killed_at < 6  # "within a few seconds": lease 1.5 s plus polling
    reached = store.state()["round"]
    wait_closed(store, reached + 1, 10)
    assert_rounds_exact(store)


def test_pause_stops_the_clock_and_resume_gives_the_round_exactly_its_paused_time(redis_server, tmp_path):
    config, store, path = engine_game(redis_server.url, tmp_path, teams=2, round_seconds=3,
                                      checkers=[checker("notes_checker.py")])
    store.request_state("start", "test")
    process = start_ticker(path, tmp_path)
    try:
        wait_until(lambda: store.state()["round"] == 2, 10)
        round_start = store.state()["round_start"]
        asked = time.time()
        store.request_state("pause", "test")
        wait_until(lambda: store.state()["state"] == GameState.PAUSED, 3)
        time.sleep(2.5)
        assert store.state()["round"] == 2 and store.state()["closed_round"] == 1
        pause = time.time() - asked
        store.request_state("resume", "test")
        wait_closed(store, 2, 10)
        opened = {int(e["r"]): float(e["t"]) for e in store.events("round") if e["type"] == "opened"}
        assert abs(opened[3] - (round_start + 3 + pause)) < 0.5
        assert_rounds_exact(store)
    finally:
        process.kill()


def test_the_ticker_survives_a_redis_restart_and_goes_on(tmp_path):
    """Issue 9 item 10: a standalone ticker waits out a Redis restart instead of exiting."""
    from deploy.redis_server import RedisServer

    (tmp_path / "redis").mkdir()
    server = RedisServer(directory=tmp_path / "redis").start()
    try:
        config, store, path = engine_game(server.url, tmp_path, teams=1, round_seconds=1,
                                          checkers=[checker("notes_checker.py", timeout=None)])
        store.request_state("start", "test")
        process = start_ticker(path, tmp_path)
        wait_until(lambda: store.state()["closed_round"] >= 1, 10)
        server.kill()
        time.sleep(3)
        assert process.proc.poll() is None, process.log_path.read_text()[-2000:]
        server.start()
        reached = wait_until(lambda: _closed(store), 20)
        wait_closed(store, reached + 2, 20)
        assert process.proc.poll() is None
        assert "Traceback" not in process.log_path.read_text()
        assert_rounds_exact(store)
        process.kill()
    finally:
        server.cleanup()


def _closed(store) -> int | None:
    try:
        return store.state()["closed_round"] or None
    except Exception:
        return None


def test_stop_closes_the_current_round_and_the_ticker_waits_for_a_reopen(game):
    """The ticker does not exit at game over (under `adrange run` it was restarted every few
    seconds forever): it stays, so an admin's reopen takes effect."""
    store, ticker = game
    store.set_state(GameState.RUNNING)
    process = ticker()
    wait_until(lambda: store.state()["round"] == 2, 10)
    store.request_state("stop", "test")
    wait_until(lambda: store.state()["state"] == GameState.OVER, 3)
    wait_until(lambda: store.state()["closed_round"] == store.state()["round"], 3)
    time.sleep(1.5)
    assert process.proc.poll() is None and "waiting in case an admin reopens it" in process.log_path.read_text()
    assert_rounds_exact(store)


def test_a_ticker_restarted_mid_round_continues_that_round_on_its_clock(redis_server, tmp_path):
    config, store, path = engine_game(redis_server.url, tmp_path, teams=2, round_seconds=4,
                                      checkers=[checker("notes_checker.py")])
    store.set_state(GameState.RUNNING)
    first = start_ticker(path, tmp_path, "first")
    second = None
    try:
        wait_until(lambda: store.state()["round"] == 2, 10)
        first.stop()  # SIGTERM: a restart (kill -9 is the standby test's case)
        before = store.state()
        second = start_ticker(path, tmp_path, "second")
        wait_closed(store, 2, 10)
        opened = {int(e["r"]): float(e["t"]) for e in store.events("round") if e["type"] == "opened"}
        assert opened[2] == before["round_start"]
        assert opened[3] == pytest.approx(before["round_start"] + 4)  # round 3 on round 2's clock
        assert_rounds_exact(store)
    finally:
        first.kill()
        if second:
            second.kill()


def test_a_ticker_back_after_a_long_outage_skips_to_now_without_replaying_rounds(game):
    store, ticker = game
    store.set_state(GameState.RUNNING)
    first = ticker("first")
    wait_until(lambda: store.state()["round"] == 2, 10)
    first.kill()
    time.sleep(4 * ROUND)
    back = time.time()
    ticker("second")
    wait_until(lambda: store.state()["round"] == 3, 5)
    assert store.state()["round_start"] >= back - 0.1  # round 3 starts when the ticker is back
    assert store.state()["closed_round"] == 2
    assert_rounds_exact(store)


def test_the_game_starts_and_ends_at_the_times_in_the_game_file(redis_server, tmp_path):
    now = dt.datetime.now(dt.UTC)
    config, store, path = engine_game(redis_server.url, tmp_path, teams=1, round_seconds=ROUND,
                                      checkers=[checker("notes_checker.py", timeout=None)],
                                      start=(now + dt.timedelta(seconds=1)).isoformat(),
                                      end=(now + dt.timedelta(seconds=3.5)).isoformat())
    process = start_ticker(path, tmp_path)
    try:
        assert store.state()["state"] == GameState.NOT_STARTED
        wait_until(lambda: store.state()["state"] == GameState.OVER, 8)
        wait_until(lambda: store.state()["closed_round"] == store.state()["round"], 3)
        assert store.state()["closed_round"] == store.state()["round"] == 3
        assert store.check_details(3)[(1, 1)]["public"] == "game ended"
    finally:
        process.kill()
