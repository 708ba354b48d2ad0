"""Exact scoring: hand-checked examples per formula and live == recompute on random games."""

import math
import random

import pytest

from scoreboard.ranking import rank
from scoreboard.scoring.replay import replay
from scoreboard.submission.sync import Submissions
from scoreboard.types import GameState, Status
from tests.game_helpers import flag_of, start_at_round


def scores(config, store):
    return {row.team: row for row in rank(config, store.counters())}


def recomputed(config, store):
    counters = replay(config.game.scoring, store.events("capture"), store.events("round"))
    return counters, {row.team: row for row in rank(config, counters)}


def test_faust_attack_defense_and_sla_by_hand(make_game):
    config, store = make_game(teams=3, services=1)
    start_at_round(store, 1)
    subs = Submissions(store)
    flag = flag_of(store, 1, 3, 1)
    subs.submit(1, [flag])
    subs.submit(2, [flag])
    subs.submit(1, [flag_of(store, 1, 2, 1)])
    store.record_check(1, 1, 1, Status.OK)
    store.record_check(1, 2, 1, Status.RECOVERING)
    store.record_check(1, 3, 1, Status.CHECKER_ERROR)
    store.close_round(1)
    s = scores(config, store)
    root3 = math.sqrt(3)
    assert s[1].atk == pytest.approx((1 + 1 / 2) + (1 + 1))
    assert s[2].atk == pytest.approx(1 + 1 / 2)
    assert s[3].defense == pytest.approx(-(2**0.75))
    assert s[2].defense == pytest.approx(-1)
    assert s[1].sla == pytest.approx(1 * root3)
    assert s[2].sla == pytest.approx(0.5 * root3)
    assert s[3].sla == 0  # CHECKER_ERROR costs nothing and earns nothing
    assert [r.team for r in rank(config, store.counters())] == [1, 2, 3]


def test_rating_moves_points_from_victim_to_attacker(make_game):
    config, store = make_game(teams=2, services=1, scoring={"formula": "rating"})
    start_at_round(store, 1)
    Submissions(store).submit(1, [flag_of(store, 1, 2, 1)])
    s = scores(config, store)
    assert s[1].atk == 1025 and s[2].atk == 975  # equal teams move scale/2 = 25
    store.record_check(1, 1, 1, Status.OK)
    store.record_check(1, 2, 1, Status.DOWN)
    store.close_round(1)
    s = scores(config, store)
    assert s[1].total == 1025 and s[2].total == 0


def test_awd_round_points_are_shared_and_down_points_go_to_up_boxes(make_game):
    config, store = make_game(teams=3, services=1, scoring={"formula": "awd"})
    start_at_round(store, 1)
    subs = Submissions(store)
    subs.submit(1, [flag_of(store, 1, 3, 1)])
    subs.submit(2, [flag_of(store, 1, 3, 1)])
    second = subs.submit(1, [flag_of(store, 1, 3, 1, slot=1)])[0]
    assert second.accepted and second.points == 0  # same box, same round: no more points
    for team, status in [(1, Status.OK), (2, Status.OK), (3, Status.MUMBLE)]:
        store.record_check(1, team, 1, status)
    store.close_round(1)
    s = scores(config, store)
    assert s[1].total == 10000 + 50 + 25 and s[2].total == 10000 + 50 + 25
    assert s[3].total == 10000 - 100 - 50
    assert sum(r.total - 10000 for r in s.values()) == 0  # zero-sum


def test_close_round_twice_counts_once(make_game):
    config, store = make_game(teams=2, services=1)
    start_at_round(store, 1)
    store.record_check(1, 1, 1, Status.OK)
    assert store.close_round(1) is True
    assert store.close_round(1) is False
    assert store.counters()[(1, 1)]["ok"] == 1
    assert [e["type"] for e in store.events("round")].count("closed") == 1


def test_open_round_is_idempotent_and_never_goes_back(make_game):
    config, store = make_game()
    start_at_round(store, 3)
    assert store.open_round(3) is False and store.open_round(2) is False
    assert store.state()["round"] == 3
    assert store.open_round(4) is True and store.state()["round"] == 4


def test_state_machine_refuses_bad_moves(make_game):
    from scoreboard.store import StateError

    config, store = make_game()
    with pytest.raises(StateError, match="not_started to paused"):
        store.set_state(GameState.PAUSED)
    store.set_state(GameState.RUNNING)
    store.set_state(GameState.OVER)
    with pytest.raises(StateError):
        store.set_state(GameState.RUNNING)
    assert [e["to"] for e in store.events("admin")] == ["running", "over"]


def play_random_game(store, config, seed, rounds=8):
    rng = random.Random(seed)
    subs = Submissions(store)
    teams = [t.id for t in config.teams]
    playing = [t.id for t in config.playing_teams]
    services = [s.id for s in config.services]
    store.set_state(GameState.RUNNING)
    statuses = list(Status)
    for r in range(1, rounds + 1):
        store.open_round(r)
        for _ in range(rng.randint(20, 60)):
            attacker = rng.choice(playing)
            flags = [flag_of(store, rng.randint(max(0, r - 4), r), rng.choice(teams), rng.choice(services),
                             rng.randint(0, 2)) for _ in range(rng.randint(1, 5))]
            subs.submit(attacker, flags)
        for team in playing:
            for service in services:
                if rng.random() < 0.9:
                    store.record_check(r, team, service, rng.choice(statuses))
        if r > 1:
            store.close_round(r - 1)
            if rng.random() < 0.3:
                store.close_round(r - 1)  # a crash-restart closing again changes nothing


@pytest.mark.parametrize("formula", ["faust", "rating", "awd"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_recompute_from_events_equals_live_to_the_last_digit(make_game, formula, seed):
    config, store = make_game(teams=6, services=3, scoring={"formula": formula})
    play_random_game(store, config, seed)
    live = scores(config, store)
    counters, again = recomputed(config, store)
    assert counters == store.counters()
    assert store.stats()["accepted"] > 50
    for team, row in live.items():
        assert (row.total, row.atk, row.defense, row.sla) == (
            again[team].total, again[team].atk, again[team].defense, again[team].sla)
