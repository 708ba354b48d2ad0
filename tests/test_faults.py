"""Crashes mid-game: kill -9 of the TCP submission server, a web process, Redis itself, the
ticker and a Celery worker, each restarted, while farms keep submitting over every dialect.

After each restart: every flag that got an "Accepted" reply is in the capture stream
exactly once, live scores equal a recompute from the event streams, and the outage each
client saw is printed (run with ``pytest -s``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from scoreboard.types import GameState, Status
from tests.engine_helpers import (
    ADDRESS_SCHEME,
    checker,
    engine_game,
    round_events,
    serving,
    start_ticker,
    start_worker,
    wait_checked_ok,
    wait_closed,
    wait_until,
)
from tests.fault_helpers import TCP_DIALECTS, Traffic, check_ledger, lost_replies, next_round, start_platform
from tests.targets.notes_tcp import NotesServer

DOWN_FOR = 1.0  # seconds a killed process stays dead before its restart


@pytest.fixture
def fired(tmp_path):
    """A running game with farms submitting over faust, ructf, forcad and HTTP."""
    platform = start_platform(tmp_path)
    traffic = Traffic.start(platform)
    try:
        traffic.wait_answered(100)
        yield platform, traffic
    finally:
        traffic.stop()
        platform.stop()


def crash_and_restart(traffic: Traffic, what: str, kill: Callable[[], None],
                      restart: Callable[[], None]) -> dict[str, float]:
    """Kill, wait `DOWN_FOR`, restart, wait for every client to submit again; print and
    return the outage each client saw."""
    killed = time.monotonic()
    kill()
    time.sleep(DOWN_FOR)
    restart()
    restarted = time.monotonic() - killed
    traffic.wait_answered(100)
    outages = traffic.outages_since(killed)
    seen = ", ".join(f"{kind} {seconds:.2f}s" for kind, seconds in outages.items())
    print(f"\nFAULT {what}: dead {restarted:.2f}s until listening again; outage seen by clients: {seen}; "
          f"replies lost then answered duplicate on resubmit: {lost_replies(traffic)}; "
          f"first error: {traffic.reasons_since(killed)}")
    return outages


def test_killed_submit_server_loses_no_accepted_flag_and_http_is_untouched(fired):
    platform, traffic = fired
    outages = crash_and_restart(traffic, "kill -9 submit-server", platform.submit.kill, platform.restart_submit)
    assert all(outages[d] >= DOWN_FOR * 0.8 for d in TCP_DIALECTS)
    assert outages["http"] == 0
    check_ledger(platform, traffic)
    next_round(platform)
    traffic.wait_answered(50)
    check_ledger(platform, traffic)


def test_killed_web_process_loses_no_accepted_flag_and_tcp_is_untouched(fired):
    platform, traffic = fired
    outages = crash_and_restart(traffic, "kill -9 web", platform.web.kill, platform.restart_web)
    assert outages["http"] >= DOWN_FOR * 0.8
    assert all(outages[d] == 0 for d in TCP_DIALECTS)
    check_ledger(platform, traffic)


def test_killed_redis_loses_no_accepted_flag_and_every_client_resumes(fired):
    platform, traffic = fired
    next_round(platform)
    before = check_ledger(platform, traffic)
    outages = crash_and_restart(traffic, "kill -9 redis-server (appendfsync always)",
                                platform.redis.kill, platform.redis.start)
    assert all(seconds >= DOWN_FOR * 0.8 for seconds in outages.values())
    after = check_ledger(platform, traffic)
    assert after > before
    next_round(platform)  # round close works on the reloaded data set
    traffic.wait_answered(50)
    check_ledger(platform, traffic)


def test_every_process_killed_in_turn_keeps_the_ledger_exact(fired):
    platform, traffic = fired
    crash_and_restart(traffic, "in turn: submit-server", platform.submit.kill, platform.restart_submit)
    next_round(platform)
    crash_and_restart(traffic, "in turn: web", platform.web.kill, platform.restart_web)
    next_round(platform)
    crash_and_restart(traffic, "in turn: redis-server", platform.redis.kill, platform.redis.start)
    next_round(platform)
    captures = check_ledger(platform, traffic)
    accepted = sum(len(c.accepted) for c in traffic.clients)
    assert captures == accepted + sum(lost_replies(traffic).values())


# -- the round engine ----------------------------------------------------------------------

def assert_rounds_consecutive(store) -> list[tuple[str, int]]:
    """Round events alternate opened N / closed N for N = 1, 2, ... with nothing repeated or skipped."""
    events = round_events(store)
    expected = [(kind, n) for n in range(1, len(events) // 2 + 2) for kind in ("opened", "closed")]
    assert events == expected[: len(events)], events
    return events


def test_ticker_killed_and_restarted_late_neither_repeats_nor_skips_a_round(redis_server, tmp_path):
    config, store, path = engine_game(redis_server.url, tmp_path, teams=2, round_seconds=1,
                                      checkers=[checker("notes_checker.py", timeout=None)])
    store.set_state(GameState.RUNNING)
    ticker = start_ticker(path, tmp_path)
    try:
        wait_closed(store, 2, 15)
        wait_until(lambda: store.state()["round"] > store.state()["closed_round"], 5)  # mid-round
        ticker.kill()
        killed_at, stuck_round = time.time(), store.state()["round"]
        time.sleep(3.5)  # three rounds' time passes with no ticker
        restarted = time.time()
        ticker.start()
        wait_closed(store, stuck_round + 2, 20)
    finally:
        ticker.kill()
    events = assert_rounds_consecutive(store)
    opened = {int(e["r"]): float(e["t"]) for e in store.events("round") if e["type"] == "opened"}
    late = opened[stuck_round + 1]
    assert late >= restarted - 0.1  # the missed time is skipped, not replayed as short rounds
    assert opened[stuck_round + 2] - late == pytest.approx(config.game.round_seconds, abs=0.35)
    closes = sum(1 for kind, _ in events if kind == "closed")
    assert store.counters()[(1, 1)]["error"] == closes  # every closed round counted once
    print(f"\nFAULT kill -9 ticker in round {stuck_round}: down {restarted - killed_at:.2f}s; "
          f"round {stuck_round} closed and round {stuck_round + 1} opened "
          f"{late - restarted:.2f}s after the restart (lease expiry); {closes} rounds, none twice")


def test_worker_killed_mid_round_the_round_still_closes_and_checks_resume(redis_server, tmp_path):
    config, store, path = engine_game(redis_server.url, tmp_path, teams=2, round_seconds=2,
                                      checkers=[checker("notes_checker.py")])
    targets = [NotesServer(ADDRESS_SCHEME.format(team=t)) for t in (1, 2, 3)]
    with serving(targets):
        worker = start_worker(path, tmp_path, concurrency=2)
        ticker = start_ticker(path, tmp_path)
        try:
            store.set_state(GameState.RUNNING)
            wait_checked_ok(store, 0, 30)
            victim_round = store.state()["round"]
            worker.kill()  # the whole worker: its main process and its prefork pool
            wait_closed(store, victim_round + 1, 15)  # rounds close with nobody checking
            orphaned = store.round_statuses(victim_round + 1)
            assert all(s == Status.CHECKER_ERROR for s in orphaned.values()), orphaned  # not the teams' fault
            worker = start_worker(path, tmp_path, concurrency=2, name="worker2")
            resumed = wait_checked_ok(store, store.state()["round"], 30)
        finally:
            ticker.kill()
            worker.kill()
    assert_rounds_consecutive(store)
    print(f"\nFAULT kill -9 worker in round {victim_round}: round {victim_round + 1} closed with "
          f"CHECKER_ERROR for every box; checks OK again from round {resumed}")
