"""Every verdict of the judge and the submit script, against a real redis-server."""

import threading

import pytest
import redis

from scoreboard.flags import FlagCodec
from scoreboard.scoring.audit import rescore
from scoreboard.submission.sync import Submissions
from scoreboard.submission.verdicts import Verdict
from scoreboard.types import GameState, Status
from tests.game_helpers import flag_of, start_at_round


def verdicts(subs, team, flags):
    return [r.verdict for r in subs.submit(team, flags)]


def test_each_verdict_from_a_running_game(make_game):
    config, store = make_game(teams=3)
    start_at_round(store, 5)
    subs = Submissions(store)
    fresh = flag_of(store, 5, 2, 1)
    assert verdicts(subs, 1, [fresh]) == [Verdict.ACCEPTED]
    assert verdicts(subs, 1, [fresh]) == [Verdict.DUPLICATE]
    assert verdicts(subs, 3, [fresh]) == [Verdict.ACCEPTED]
    assert verdicts(subs, 2, [fresh]) == [Verdict.OWN]
    assert verdicts(subs, 1, [flag_of(store, 2, 2, 1)]) == [Verdict.OLD]  # lifetime 3: 3,4,5 valid
    assert verdicts(subs, 1, [flag_of(store, 3, 2, 1)]) == [Verdict.ACCEPTED]
    assert verdicts(subs, 1, [flag_of(store, 5, 4, 1)]) == [Verdict.NOP]
    assert verdicts(subs, 1, ["garbage", "A" * 31 + "="]) == [Verdict.INVALID] * 2
    assert verdicts(subs, 1, [FlagCodec("other-game-secret-xx").generate(5, 2, 1)]) == [Verdict.INVALID]
    assert verdicts(subs, 1, [flag_of(store, 6, 2, 1)]) == [Verdict.INVALID]  # from the future
    assert verdicts(subs, 1, [flag_of(store, 5, 9, 1)]) == [Verdict.INVALID]  # no such team
    assert verdicts(subs, 1, [flag_of(store, 5, 2, 9)]) == [Verdict.INVALID]  # no such service


def test_state_verdicts_not_started_paused_over(make_game):
    config, store = make_game()
    subs = Submissions(store)
    flag = flag_of(store, 0, 2, 1)
    assert verdicts(subs, 1, [flag]) == [Verdict.NOT_STARTED]
    start_at_round(store, 1)
    store.set_state(GameState.PAUSED)
    assert verdicts(subs, 1, [flag_of(store, 1, 2, 1)]) == [Verdict.PAUSED]
    store.set_state(GameState.OVER)
    assert verdicts(subs, 1, [flag_of(store, 1, 2, 1)]) == [Verdict.OVER]


def test_service_up_rule_denies_a_team_whose_service_is_down(make_game):
    config, store = make_game(require_service_up=True)
    start_at_round(store, 1)
    subs = Submissions(store)
    store.record_check(1, 1, 1, Status.DOWN)
    assert verdicts(subs, 1, [flag_of(store, 1, 2, 1)]) == [Verdict.SERVICE_DOWN]
    assert verdicts(subs, 1, [flag_of(store, 1, 2, 2)]) == [Verdict.ACCEPTED]  # other service not checked yet
    store.record_check(1, 1, 1, Status.OK)
    assert verdicts(subs, 1, [flag_of(store, 1, 2, 1)]) == [Verdict.ACCEPTED]


def test_accepted_message_states_the_points(make_game):
    config, store = make_game()
    start_at_round(store, 1)
    subs = Submissions(store)
    flag = flag_of(store, 1, 2, 1)
    assert subs.submit(1, [flag])[0].text == "Accepted. 2 flag points"
    assert subs.submit(3, [flag])[0].text == "Accepted. 1.5 flag points"
    assert subs.submit(3, [flag])[0].text == "Denied: you already submitted this flag"


def test_duplicate_flag_from_many_connections_at_once_is_accepted_once(make_game, redis_server):
    config, store = make_game()
    start_at_round(store, 1)
    flags = [flag_of(store, 1, 2, 1, slot) for slot in range(8)]
    barrier = threading.Barrier(8)
    accepted = []

    def hammer():
        client = redis.Redis.from_url(redis_server.url, decode_responses=True)
        from scoreboard.store import GameStore

        subs = Submissions(GameStore(config, client))
        barrier.wait()
        for _ in range(5):
            accepted.extend(r for r in subs.submit(1, flags) if r.accepted)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(accepted) == 8
    events = list(store.events("capture"))
    assert sorted(e["f"] for e in events) == sorted(flags)
    assert store.stats()["accepted"] == 8


def test_rate_limit_denies_flags_past_the_budget(make_game):
    config, store = make_game()
    config.submission.limits.rate_per_team = 10
    start_at_round(store, 1)
    subs = Submissions(store)
    results = verdicts(subs, 1, ["junk"] * 20 + [flag_of(store, 1, 2, 1, s) for s in range(15)])
    # only flags that need the submit script count: garbage is judged whatever the rate
    assert results == [Verdict.INVALID] * 20 + [Verdict.ACCEPTED] * 10 + [Verdict.RATE_LIMITED] * 5


def test_redis_down_gives_error_verdicts_not_a_crash(make_game):
    config, store = make_game()
    start_at_round(store, 1)
    broken = Submissions(store)
    broken.store.redis = redis.Redis(port=1)  # nothing listens on port 1
    broken.store._submit = broken.store.redis.register_script("return {}")
    assert verdicts(broken, 1, [flag_of(store, 1, 2, 1), "junk"]) == [Verdict.ERROR, Verdict.INVALID]


@pytest.mark.parametrize("formula", ["faust", "rating", "awd"])
def test_every_formula_accepts_and_moves_points(make_game, formula):
    config, store = make_game(scoring={"formula": formula})
    start_at_round(store, 1)
    result = Submissions(store).submit(1, [flag_of(store, 1, 2, 1)])[0]
    assert result.accepted and result.points > 0


def test_denied_flags_are_counted_by_verdict_but_not_streamed(make_game):
    config, store = make_game()
    start_at_round(store, 5)
    subs = Submissions(store)
    flag = flag_of(store, 5, 2, 1)
    subs.submit(1, [flag, flag, "junk", "junk", flag_of(store, 5, 1, 1), flag_of(store, 1, 2, 1)])
    subs.submit(1, ["only garbage"])
    subs.history.flush()  # denials are counted in the process, written about once a second
    stats = store.stats()
    assert stats["accepted"] == 1
    assert {k: v for k, v in stats.items() if k.startswith("denied:")} == {
        "denied:duplicate": 1, "denied:invalid": 3, "denied:own": 1, "denied:old": 1}
    assert len(list(store.events("capture"))) == 1


@pytest.mark.parametrize("formula", ["faust", "rating", "awd"])
def test_a_batch_writes_each_counter_field_once_and_scores_as_flag_by_flag(make_game, formula):
    """The submit script sums a batch's counter moves and writes each (box, field) once:
    12 captures from one attacker touch 6 fields, not 2 per flag; the counters still equal
    the replay of the capture stream, and a second attacker's shifts add up the same."""
    config, store = make_game(teams=5, services=2, scoring={"formula": formula})
    start_at_round(store, 5)
    subs = Submissions(store)
    flags = [flag_of(store, r, v, s) for r in (3, 4, 5) for v in (2, 3) for s in (1, 2)]
    store.redis.config_resetstat()
    assert verdicts(subs, 1, flags) == [Verdict.ACCEPTED] * 12
    calls = store.redis.info("commandstats").get("cmdstat_hincrby", {}).get("calls", 0)
    expected = {"faust": 6 + 1, "rating": 6 + 1, "awd": 2 + 4 + 2 + 4 + 1}[formula]  # + counters.accepted
    assert calls == expected
    assert verdicts(subs, 4, [*flags[:6], flags[0]]) == [Verdict.ACCEPTED] * 6 + [Verdict.DUPLICATE]
    assert rescore(store).equal
