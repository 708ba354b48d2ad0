"""Group commit of the submit script (scoreboard.store.AsyncSubmitter, the TCP server's
path to Redis) against a real redis-server: a burst of calls shares a few pipelines, and
each caller still gets its own script run's answer."""

from __future__ import annotations

import asyncio

import redis.asyncio

from scoreboard.flags import FlagCodec
from scoreboard.store import SUBMIT_PIPELINES, AsyncSubmitter
from tests.game_helpers import flag_of, start_at_round


def candidate(store, flag: str) -> tuple[str, int, int, int]:
    info = FlagCodec(store.config.game.secret).check(flag)
    assert info is not None
    return flag, info.team, info.service, info.round


def run(config, store, work):
    """Run `work(submitter)` with a submitter whose Redis connections are named "burst";
    return its result and how many such connections Redis saw open."""
    async def main():
        client = redis.asyncio.Redis.from_url(config.redis_url, decode_responses=True, client_name="burst")
        try:
            result = await work(AsyncSubmitter(store, client))
            names = [c["name"] for c in store.redis.client_list()]
        finally:
            await client.aclose()
        return result, names.count("burst")

    return asyncio.run(main())


def test_a_burst_of_farms_shares_a_few_connections_and_each_gets_its_own_answer(make_game):
    config, store = make_game(teams=4)
    start_at_round(store, 5)
    flags = [flag_of(store, r, v, s) for r in (3, 4, 5) for v in (2, 3) for s in (1, 2)]
    calls = [(1, f) for f in flags] + [(4, f) for f in flags] + [(1, flags[0])]  # the last: a duplicate

    async def burst(submitter):
        return await asyncio.gather(*(submitter.submit(team, [candidate(store, f)]) for team, f in calls))

    answers, connections = run(config, store, burst)
    by_flag: dict[str, list[str]] = {}
    for (_, flag), answer in zip(calls, answers, strict=True):
        by_flag.setdefault(flag, []).append(answer[0])
    assert {flag: sorted(got) for flag, got in by_flag.items()} == {  # faust: "A:<capture count>"
        flag: ["A:1", "A:2", "D"] if flag == flags[0] else ["A:1", "A:2"] for flag in flags}
    assert connections <= SUBMIT_PIPELINES  # one per call before: 25 connections for 25 farms
    assert store.stats()["accepted"] == 24


def test_a_caller_gone_before_its_turn_is_not_submitted_and_the_others_are(make_game):
    config, store = make_game(teams=3)
    start_at_round(store, 5)
    gone, kept = flag_of(store, 5, 2, 1), flag_of(store, 5, 2, 2)

    async def one_cancelled(submitter):
        first = asyncio.ensure_future(submitter.submit(1, [candidate(store, gone)]))
        second = asyncio.ensure_future(submitter.submit(1, [candidate(store, kept)]))
        await asyncio.sleep(0)  # both queued, the sender not yet run
        first.cancel()
        return await second, await submitter.submit(1, [candidate(store, gone)])

    (kept_answer, gone_later), _ = run(config, store, one_cancelled)
    assert kept_answer == ["A:1"] and gone_later == ["A:1"]  # the cancelled one never ran


def test_calls_survive_a_script_cache_flush(make_game):
    config, store = make_game(teams=3)
    start_at_round(store, 5)
    first, second = flag_of(store, 5, 2, 1), flag_of(store, 4, 2, 1)

    async def flushed(submitter):
        before = await submitter.submit(1, [candidate(store, first)])
        store.redis.script_flush()  # what a Redis restart without its scripts looks like
        return before, await asyncio.gather(submitter.submit(1, [candidate(store, second)]),
                                            submitter.submit(3, [candidate(store, first)]))

    (before, after), _ = run(config, store, flushed)
    assert before == ["A:1"] and after == [["A:1"], ["A:2"]]
