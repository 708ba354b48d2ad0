"""The round engine end to end: real ticker and Celery worker processes, real Redis, real
loopback targets. Each box's status comes from what its target really does."""

from __future__ import annotations

import os
import re
import signal
import time

from scoreboard.types import GameState, Status
from tests.engine_helpers import (
    ADDRESS_SCHEME,
    AmnesiacNotes,
    ForgetfulNotes,
    checker,
    engine_game,
    pool_children,
    serving,
    start_ticker,
    start_worker,
    wait_closed,
    wait_until,
)
from tests.targets.notes_tcp import NotesServer


def host(team: int) -> str:
    return ADDRESS_SCHEME.format(team=team)


def test_every_box_gets_the_status_its_target_earns(redis_server, tmp_path, processes):
    # Teams: 1 ok, 2 stopped, 3 liar, 4 loses flags, 5 keeps only the newest note, 6 silent; 7 is NOP.
    # Rounds long enough that even the silent targets' checks (a whole 1 s timeout each) end
    # while a next action could still start: their failures are judged.
    config, store, path = engine_game(redis_server.url, tmp_path, teams=6, round_seconds=6, checkers=[
        checker("notes_checker.py"), checker("buggy_checker.py"), checker("forcad_style.py", "cli")])
    liar, silent = NotesServer(host(3)), NotesServer(host(6))
    liar.mode, silent.mode = "liar", "silent"
    targets = [NotesServer(host(1)), liar, ForgetfulNotes(host(4)), AmnesiacNotes(host(5)), silent,
               NotesServer(host(7))]
    with serving(targets):
        processes.append(start_worker(path, tmp_path))
        store.set_state(GameState.RUNNING)
        processes.append(start_ticker(path, tmp_path))
        wait_closed(store, 2, 40)

    expected = {1: Status.OK, 2: Status.DOWN, 3: Status.MUMBLE, 4: Status.CORRUPT, 5: Status.OK,
                6: Status.DOWN, 7: Status.OK}
    for service in (1, 3):  # native and CLI protocol agree
        first = store.round_statuses(1)
        assert {t: first[(t, service)] for t in expected} == expected, (service, first)
        second = store.round_statuses(2)
        assert second[(5, service)] == Status.RECOVERING  # its round-1 flag is gone
        assert second[(1, service)] == Status.OK
    assert all(store.round_statuses(1)[(t, 2)] == Status.CHECKER_ERROR for t in expected)  # checker bug

    details = store.check_details(1)
    ok = details[(1, 1)]["detail"]
    assert [a["action"] for a in ok["actions"]] == ["check", "put", "get"]
    assert all(a["command"] and a["duration"] >= 0 for a in ok["actions"]) and ok["duration"] > 0
    assert [a["action"] for a in details[(2, 1)]["detail"]["actions"]] == ["check"]
    assert details[(6, 3)]["public"] == "checker did not finish in 1s"  # CLI checker killed at its timeout
    assert "ZeroDivisionError" in details[(1, 2)]["private"]
    second_ok = store.check_details(2)[(1, 1)]["detail"]["actions"]
    assert [(a["action"], a.get("round")) for a in second_ok][-1] == ("get", 1)  # round 1's flag read back

    flag = store.placed_flags(1)[(1, 1, 0)]
    assert flag["flag"] in targets[0].notes.values()
    # Closing counted each playing box once per round; the NOP team is never counted.
    counters = store.counters()
    assert counters[(1, 1)]["ok"] == 2 and counters[(2, 1)]["down"] == 2 and counters[(1, 2)]["error"] == 2
    assert not any(team == 7 for team, _ in counters)

    # The engine's figures reach /metrics: dispatch delays, action durations per service.
    from scoreboard.web.metrics import render

    text = render(store).decode()
    delays = re.search(r'adrange_dispatch_delay_seconds_count (\S+)', text)
    assert delays and float(delays.group(1)) >= 7
    assert re.search(r'adrange_checker_action_seconds_count\{action="check",service="1"\} [1-9]', text)
    stats = store.round_stats(1)
    assert stats["planned"] == 7 * 3 and stats["released"] == 21 and stats["started"] == 21


def test_a_killed_worker_process_costs_nothing_and_the_round_still_closes(redis_server, tmp_path, processes):
    # The round leaves time for Celery to replace the killed pool processes and deliver the
    # chain again even on a loaded machine (a chain lost in a round's last moment is DOWN).
    config, store, path = engine_game(redis_server.url, tmp_path, teams=1, round_seconds=10,
                                      checkers=[checker("notes_checker.py", timeout=2.5)])
    silent = NotesServer(host(1))
    silent.mode = "silent"  # the chain hangs in check long enough to be killed
    with serving([silent, NotesServer(host(2))]):
        worker = start_worker(path, tmp_path, concurrency=2)
        processes.append(worker)
        store.set_state(GameState.RUNNING)
        processes.append(start_ticker(path, tmp_path))
        wait_until(lambda: (1, 1) in store.chain_marks(1), 10)
        for child in pool_children(worker.proc.pid):
            os.kill(child, signal.SIGKILL)
        wait_closed(store, 1, 25)
    record = store.check_details(1)[(1, 1)]
    assert record["status"] == Status.CHECKER_ERROR, record
    assert "lost" in record["private"]
    assert store.counters()[(1, 1)] == {"error": 1, "rounds": 1}  # not judged: no SLA lost


def test_without_workers_every_box_gets_checker_error_and_the_round_closes(redis_server, tmp_path, processes):
    config, store, path = engine_game(redis_server.url, tmp_path, teams=2, round_seconds=1,
                                      checkers=[checker("notes_checker.py", timeout=None)])
    store.set_state(GameState.RUNNING)
    processes.append(start_ticker(path, tmp_path))
    wait_closed(store, 1, 10)
    details = store.check_details(1)
    expected = {(t, 1): "not checked this round (platform)" for t in (1, 2, 3)}
    assert {box: d["public"] for box, d in details.items()} == expected


def test_awd_file_mode_without_a_box_is_checker_error_with_a_note(redis_server, tmp_path, processes):
    config, store, path = engine_game(redis_server.url, tmp_path, teams=1, round_seconds=3,
                                      checkers=[checker("notes_checker.py")], service={"flag_mode": "file"})
    with serving([NotesServer(host(1)), NotesServer(host(2))]):
        processes.append(start_worker(path, tmp_path, concurrency=2))
        store.set_state(GameState.RUNNING)
        processes.append(start_ticker(path, tmp_path))
        wait_closed(store, 1, 15)
    record = store.check_details(1)[(1, 1)]
    assert record["status"] == Status.CHECKER_ERROR
    assert "flag file not written" in record["private"]
    assert [a["action"] for a in record["detail"]["actions"]] == ["check"]
    assert store.placed_flags(1) == {}


def test_admin_rerun_replaces_the_box_result_in_the_open_round(redis_server, tmp_path, processes):
    from scoreboard.check_requests import request_rerun

    config, store, path = engine_game(redis_server.url, tmp_path, teams=1, round_seconds=60,
                                      checkers=[checker("notes_checker.py")])
    with serving([NotesServer(host(1))]):
        store.set_state(GameState.RUNNING)
        store.open_round(1)
        store.record_check(1, 1, 1, Status.DOWN, "checker did not finish")
        processes.append(start_worker(path, tmp_path, concurrency=1))
        request_rerun(config, 1, 1, 1)  # what the admin's "check now" sends
        wait_until(lambda: store.round_statuses(1).get((1, 1)) == Status.OK, 30)
    assert [a["action"] for a in store.check_details(1)[(1, 1)]["detail"]["actions"]] == ["check", "put", "get"]


def test_eno_checker_service_runs_through_the_round_engine(redis_server, tmp_path, processes):
    from deploy.redis_server import free_port
    from tests.targets.eno_service import EnoService

    eno_host, eno_port = "127.77.90.1", free_port("127.77.90.1")
    eno = EnoService(eno_host, eno_port)
    eno.info["havocVariants"] = 1  # no stalling havoc variant: every round can be OK
    eno.start()
    config, store, path = engine_game(redis_server.url, tmp_path, teams=1, round_seconds=4, checkers=[
        {"protocol": "eno", "url": f"http://{eno_host}:{eno_port}/", "timeout": 2}])
    try:
        with serving([NotesServer(host(1)), NotesServer(host(2))]):
            processes.append(start_worker(path, tmp_path))
            store.set_state(GameState.RUNNING)
            processes.append(start_ticker(path, tmp_path))
            wait_closed(store, 2, 20)
    finally:
        eno.stop()
    for round_ in (1, 2):
        assert store.round_statuses(round_) == {(1, 1): Status.OK, (2, 1): Status.OK}, store.check_details(round_)
    actions = store.check_details(2)[(1, 1)]["detail"]["actions"]
    assert [a["action"] for a in actions] == ["check", "put", "get", "get"]  # round 1's flag read back
    placed = store.placed_flags(1)[(1, 1, 0)]
    assert placed["public"].startswith("note ")  # ENO attackInfo is the public attack data
    methods = {t["method"] for t in eno.tasks}
    assert {"havoc", "putflag", "getflag"} <= methods


def test_released_chains_expire_at_their_round_end_and_a_reset_makes_them_stale(redis_server, tmp_path, processes):
    """Issue 9 item 7: Celery read the epoch round end as "seconds from now" (year 2083), so
    chains queued before an admin reset acted in the new game."""
    import datetime as dt
    import json

    from checker.ticker import Ticker
    from scoreboard.check_requests import queue_name

    config, store, path = engine_game(redis_server.url, tmp_path, teams=2, round_seconds=20,
                                      checkers=[checker("notes_checker.py")])
    store.set_state(GameState.RUNNING)

    def open_and_release_all() -> None:
        ticker = Ticker(config, store)
        ticker.step(time.time())
        state = store.state()
        ticker.release(config, 1, state["round_start"], state["run"], time.time() + 100)

    open_and_release_all()
    round_end = store.state()["round_start"] + 20
    queued = [json.loads(raw) for raw in store.redis.lrange(queue_name(config), 0, -1)]
    assert len(queued) == 3  # two teams and the NOP team
    for message in queued:
        expires = dt.datetime.fromisoformat(message["headers"]["expires"]).timestamp()
        assert abs(expires - round_end) < 1, message["headers"]["expires"]
    old_run = store.state()["run"]

    store.reset()  # the admin's reset, then the game starts again
    store.init()
    assert store.state()["run"] != old_run
    store.set_state(GameState.RUNNING)
    open_and_release_all()
    with serving([NotesServer(host(t)) for t in (1, 2, 3)]):
        processes.append(start_worker(path, tmp_path))
        wait_until(lambda: len(store.round_statuses(1)) == 3, 30)
        time.sleep(1)  # the six messages have all been taken by now
    assert set(store.round_statuses(1).values()) == {Status.OK}
    assert {attempts for attempts, _ in store.chain_marks(1).values()} == {1}  # the old chains never ran


def test_chains_that_start_while_the_game_is_paused_are_not_checked(redis_server, tmp_path, processes):
    """An admin pauses because something is wrong: queued chains must not judge teams then."""
    from checker.ticker import Ticker

    config, store, path = engine_game(redis_server.url, tmp_path, teams=2, round_seconds=20,
                                      checkers=[checker("notes_checker.py")])
    store.set_state(GameState.RUNNING)
    ticker = Ticker(config, store)
    ticker.step(time.time())
    state = store.state()
    ticker.release(config, 1, state["round_start"], state["run"], time.time() + 100)
    store.set_state(GameState.PAUSED)
    with serving([NotesServer(host(t)) for t in (1, 2, 3)]):
        processes.append(start_worker(path, tmp_path))
        wait_until(lambda: len(store.round_statuses(1)) == 3, 30)
    details = store.check_details(1)
    assert {d["status"] for d in details.values()} == {Status.CHECKER_ERROR}
    assert all(d["private"] == "the game is paused" and "platform" in d["public"] for d in details.values())


def test_a_failure_is_judged_only_when_a_success_would_have_been(redis_server, tmp_path):
    """A CHECK that times out when PUT could no longer start would be judged DOWN, while the
    same CHECK succeeding would leave the round unchecked: late chains would count only
    their failures. Both outcomes are judged on the same terms."""
    from checker.chain import run_chain

    config, store, path = engine_game(redis_server.url, tmp_path, teams=1, round_seconds=10,
                                      checkers=[checker("notes_checker.py", timeout=1)])
    silent = NotesServer(host(1))
    silent.mode = "silent"
    store.set_state(GameState.RUNNING)
    store.open_round(1)
    with serving([silent]):
        late = run_chain(config, store, 1, 1, 1, time.time() + 1.6)  # check ends at +1.0: no 1 s left for put
        early = run_chain(config, store, 1, 1, 1, time.time() + 5)
    assert late.status == Status.CHECKER_ERROR and late.public == "not checked this round (platform)"
    assert "would not have had its whole timeout" in late.private
    assert early.status == Status.DOWN
