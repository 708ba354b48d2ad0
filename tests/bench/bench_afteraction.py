"""Replay and after-action report of a game of some size.

Plays `--teams` teams x `--services` services x `--rounds` rounds through the store's
scripts (each attacker steals about half of the other teams' flags of each service every
round, all boxes checked, each round closed), then times: reading the record from Redis,
replaying every round (and comparing with the live history), one replay jump to the
middle of the game (what a scrubbing spectator waits for), the report's numbers, the HTML
of both languages and the two PDFs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from scoreboard.afteraction import report
from scoreboard.afteraction.facts import compute
from scoreboard.afteraction.record import from_store
from scoreboard.afteraction.timeline import PastBoard, Timeline, differences
from scoreboard.types import GameState, Status
from tests.bench.common import bench, bench_game
from tests.game_helpers import flag_of

console = Console(stderr=True)


def play(store, teams: int, services: int, rounds: int) -> int:
    store.set_state(GameState.RUNNING)
    accepted = 0
    for round_ in range(1, rounds + 1):
        store.open_round(round_)
        for attacker in range(1, teams + 1):
            candidates = [(flag_of(store, round_, victim, service), victim, service, round_)
                          for victim in range(1, teams + 1) for service in range(1, services + 1)
                          if victim != attacker and (attacker * 7 + victim * 3 + service + round_) % 2]
            accepted += sum(1 for answer in store.submit(attacker, candidates) if answer.startswith("A"))
        for team in range(1, teams + 1):
            for service in range(1, services + 1):
                store.record_check(round_, team, service, Status.DOWN if (team + service + round_) % 6 == 0
                                   else Status.OK)
        store.close_round(round_)
    return accepted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--teams", type=int, default=20)
    parser.add_argument("--services", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    with bench_game(args.teams, args.services, flag_lifetime=5) as (_config, store, work):
        started = time.monotonic()
        accepted = play(store, args.teams, args.services, args.rounds)
        console.print(f"played {args.rounds} rounds, {accepted} captures in {time.monotonic() - started:.1f}s")
        bench("afteraction_captures", accepted, "flags")

        started = time.monotonic()
        record = from_store(store)
        bench("afteraction_read_record_seconds", time.monotonic() - started, "s")

        started = time.monotonic()
        timeline = Timeline(record)
        found = differences(timeline)
        bench("replay_all_rounds_seconds", time.monotonic() - started, "s")
        assert not found, found[:5]

        started = time.monotonic()
        middle = timeline.closes[args.rounds // 2]
        PastBoard(record.config, timeline.store_at(middle)).snapshot(public=True)
        bench("replay_jump_to_middle_seconds", time.monotonic() - started, "s")

        started = time.monotonic()
        facts = compute(timeline)
        bench("report_facts_seconds", time.monotonic() - started, "s")

        out = Path(work) / "report"
        out.mkdir()
        pages = []
        started = time.monotonic()
        for lang in ("zh", "en"):
            html = out / f"report.{lang}.html"
            html.write_text(report.render(facts, lang, record), encoding="utf-8")
            pages.append((html, html.with_suffix(".pdf")))
        bench("report_html_both_languages_seconds", time.monotonic() - started, "s")
        bench("report_html_kib", pages[0][0].stat().st_size / 1024, "KiB")

        started = time.monotonic()
        report.print_pdfs(pages)
        bench("report_pdf_both_languages_seconds", time.monotonic() - started, "s")


if __name__ == "__main__":
    main()
