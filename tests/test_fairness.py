"""Lateness: a deliberately overloaded worker pool with healthy targets gives 0 team-costing
statuses. Real ticker, one real worker process, real loopback notes targets: the chains
that do not fit the round are not checked (not judged), never DOWN for their team."""

from __future__ import annotations

import time

from scoreboard.types import GameState
from tests.engine_helpers import (
    checker,
    engine_game,
    fairness,
    serving,
    start_ticker,
    start_worker,
    wait_closed,
)
from tests.targets.notes_tcp import NotesServer

TEAMS, ROUNDS, ROUND_SECONDS, TIMEOUT = 6, 4, 5, 2.0
# Apart from the other engine tests' targets (127.77.T.1) and the benchmark's (127.78.T.1).
ADDRESS_SCHEME = "127.79.{team}.1"


class SlowNotes(NotesServer):
    """Healthy, answering each command in 0.05 s (far within the timeout): a chain's time is
    set by the target, not by how fast this machine is, so the overload is real everywhere."""

    def answer(self, line: str) -> str:
        time.sleep(0.05)
        return super().answer(line)


def test_an_overloaded_worker_pool_never_costs_healthy_targets_anything(redis_server, tmp_path, processes):
    # 7 teams (NOP included) x 2 services = 14 chains a round of up to 5 actions, each taking
    # at least 0.05 s per command, for one worker process; an action needs its whole 2 s timeout
    # before the chain deadline (round end - 0.5 s), so only actions starting in the round's first
    # 2.5 s run: about half the boxes are not checked.
    checkers = [checker("notes_checker.py", timeout=TIMEOUT), checker("forcad_style.py", "cli", timeout=TIMEOUT)]
    config, store, path = engine_game(redis_server.url, tmp_path, teams=TEAMS, round_seconds=ROUND_SECONDS,
                                      checkers=checkers, address_scheme=ADDRESS_SCHEME)
    targets = [SlowNotes(ADDRESS_SCHEME.format(team=t)) for t in range(1, TEAMS + 2)]
    with serving(targets):
        processes.append(start_worker(path, tmp_path, concurrency=1))
        store.set_state(GameState.RUNNING)
        processes.append(start_ticker(path, tmp_path))
        wait_closed(store, ROUNDS, ROUNDS * ROUND_SECONDS + 120)
        for process in processes:
            process.kill()
    tally = fairness(store, store.state()["closed_round"])

    assert tally.costed == []  # no healthy target was ever blamed
    assert tally.ok > 0  # the worker did check boxes ...
    assert tally.unchecked > 0 or tally.stats.get("unstarted", 0) > 0, tally  # ... but not all of them
    assert tally.blaming == []  # a box not checked says so, and names the platform
    counters = store.counters()  # the SLA: no judged round lost
    assert counters and {box: c for box, c in counters.items() if {"down", "mumble", "corrupt", "rec"} & c.keys()} == {}
