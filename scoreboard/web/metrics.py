"""Prometheus metrics of a game, read from Redis at each scrape (prometheus_client).

Every process writes its figures to the game's Redis (the submit script its verdict
counts, workers their dispatch delays and action durations, the ticker its unstarted and
unfinished chains), so any web node can answer ``/metrics`` for the whole platform.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)

from ..store import DELAY_BUCKETS, GameStore
from ..submission.verdicts import Verdict
from ..types import Status

ROUND_FIGURES = ("planned", "released", "started", "late", "cut", "unstarted", "unfinished")


class GameCollector:
    """Collects one game's metrics from its store."""

    def __init__(self, store: GameStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        store = self.store
        state, stats, engine = store.state(), store.stats(), store.engine_counters()
        yield _gauge("adrange_round", "Current round.", state["round"])
        yield _gauge("adrange_closed_round", "Last closed round.", state["closed_round"])
        game_state = GaugeMetricFamily("adrange_game_state", "1 for the current game state.", labels=["state"])
        for name in ("not_started", "running", "paused", "over"):
            game_state.add_metric([name], int(state["state"].value == name))
        yield game_state
        yield CounterMetricFamily("adrange_flags_accepted", "Accepted flags.", value=stats.get("accepted", 0))
        denied = CounterMetricFamily("adrange_flags_denied", "Denied flags by verdict.", labels=["verdict"])
        for verdict in Verdict:
            if verdict is not Verdict.ACCEPTED:
                denied.add_metric([verdict.value], stats.get("denied:" + verdict.value, 0))
        yield denied
        yield CounterMetricFamily("adrange_portal_submissions", "Flags submitted through the team portal.",
                                  value=stats.get("portal_submitted", 0))
        boxes = GaugeMetricFamily("adrange_boxes", "Boxes per latest checker status.", labels=["status"])
        statuses = Counter(status.name for status in store.live_statuses().values())
        for status in Status:
            boxes.add_metric([status.name], statuses.get(status.name, 0))
        yield boxes
        yield from _connections(stats)
        yield from self._engine(engine, state["closed_round"])

    def _engine(self, engine: dict[str, float], closed: int) -> Iterator[Metric]:
        buckets = [(f"{b:g}", engine.get(f"delay_le:{b:g}", 0.0)) for b in DELAY_BUCKETS]
        count = engine.get("delay_count", 0.0)
        yield HistogramMetricFamily("adrange_dispatch_delay_seconds",
                                    "Seconds from a chain's release by the ticker to its start on a worker.",
                                    buckets=[*buckets, ("+Inf", count)], sum_value=engine.get("delay_sum", 0.0))
        for kind in ("unstarted", "unfinished"):
            yield CounterMetricFamily(f"adrange_chains_{kind}", f"Chains {kind} at their round's close "
                                      "(not checked: never the team's fault).", value=engine.get(f"chains_{kind}", 0))
        actions = SummaryMetricFamily("adrange_checker_action_seconds", "Checker action durations.",
                                      labels=["service", "action"])
        for name, total in sorted(engine.items()):
            if name.startswith("action_sum:"):
                service, action = name.removeprefix("action_sum:").split(":")
                actions.add_metric([service, action], engine.get(f"action_count:{service}:{action}", 0), total)
        yield actions
        figures = GaugeMetricFamily("adrange_last_round_chains", "Chains of the last closed round, by fate.",
                                    labels=["kind"])
        stats = self.store.round_stats(closed) if closed else {}
        for kind in ROUND_FIGURES:
            figures.add_metric([kind], stats.get(kind, 0.0))
        yield figures


def _connections(stats: dict[str, int]) -> Iterator[Metric]:
    """The connection budgets' refusals, cut connections and accept() errors of the TCP
    submission servers and web nodes (each process adds its own to the game's counters)."""
    refused = CounterMetricFamily("adrange_connections_refused", "Connections refused by a budget.",
                                  labels=["server", "reason"])
    timeouts = CounterMetricFamily("adrange_connections_timed_out", "Connections cut at a deadline.",
                                   labels=["server", "kind"])
    errors = CounterMetricFamily("adrange_accept_errors", "accept() failures (out of files).", labels=["server"])
    for name, value in sorted(stats.items()):
        server, _, rest = name.partition("_")
        if server not in ("tcp", "web"):
            continue
        kind, _, label = rest.partition(":")
        if kind == "refused":
            refused.add_metric([server, label], value)
        elif kind == "timeout":
            timeouts.add_metric([server, label], value)
        elif kind == "accept_errors":
            errors.add_metric([server], value)
    yield from (refused, timeouts, errors)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def render(store: GameStore) -> bytes:
    """The Prometheus text exposition of the game's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GameCollector(store))  # type: ignore[arg-type]
    return generate_latest(registry)
