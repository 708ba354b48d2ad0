"""The report's charts: matplotlib figures rendered to SVG, text drawn as paths (so the
file needs no font to show them, Chinese team names included), for embedding inline.

Each function takes the `Facts` pieces it draws and the report's texts, and returns the
``<svg>`` element as text. Colours are the board's (status colours as in board.css), on
white, so that charts read on paper too.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib import font_manager
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch as LegendPatch

from .facts import Facts, ServiceFacts, TeamFacts, status_name

log = logging.getLogger("adrange.report")
Text = Callable[..., str]  # texts.text bound to a language: t(key, **values)

TEAM_COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324",
               "#469990", "#808000", "#000075", "#a9a9a9"]
STATUS_COLORS = {"OK": "#1f9d55", "RECOVERING": "#2c7a7b", "CORRUPT": "#b7791f", "MUMBLE": "#d69e2e",
                 "DOWN": "#c53030", "CHECKER_ERROR": "#6b46c1", "UNCHECKED": "#cbd5e0"}
STATUS_ORDER = list(STATUS_COLORS)
CJK_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "Microsoft YaHei", "SimHei")
CJK_FILE_HINTS = ("notosanscjk", "sourcehansans", "wqy", "simhei", "msyh")


@functools.cache
def _fonts() -> list[str]:
    """DejaVu Sans, then the first Chinese font on this machine (matplotlib falls back per glyph)."""
    known = {f.name for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in known:
            return ["DejaVu Sans", family]
    for path in font_manager.findSystemFonts():
        if any(hint in path.lower().replace("-", "").replace("_", "") for hint in CJK_FILE_HINTS):
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError):
                continue
            known = {f.name for f in font_manager.fontManager.ttflist}
            for family in CJK_FAMILIES:
                if family in known:
                    return ["DejaVu Sans", family]
    log.warning("no Chinese font found for the charts: Chinese names show as boxes in them")
    return ["DejaVu Sans"]


def _figure(width: float, height: float) -> tuple[plt.Figure, plt.Axes]:
    plt.rcParams.update({"font.family": _fonts(), "font.size": 10, "svg.fonttype": "path", "text.parse_math": False,
                         "axes.spines.top": False, "axes.spines.right": False})
    return plt.subplots(figsize=(width, height), layout="constrained")


def _svg(fig: plt.Figure) -> str:
    out = io.StringIO()
    fig.savefig(out, format="svg")
    plt.close(fig)
    text = out.getvalue()
    return text[text.index("<svg"):]


def score_over_time(facts: Facts, t: Text) -> str:
    """Every team's total after each round (a line per team, in final-ranking order)."""
    fig, ax = _figure(9, 4.2)
    rounds = facts.rounds
    for i, team in enumerate(facts.teams):
        totals = [facts.history.get(r, {}).get(team.id, (None, 0))[0] for r in rounds]
        ax.plot(rounds, totals, marker="o", markersize=3, linewidth=1.8, label=team.name,
                color=TEAM_COLORS[i % len(TEAM_COLORS)])
    ax.set_xlabel(t("round"))
    ax.set_ylabel(t("score"))
    ax.grid(alpha=0.3)
    if rounds:
        ax.set_xticks(rounds if len(rounds) <= 30 else rounds[:: max(1, len(rounds) // 20)])
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return _svg(fig)


def status_timeline(team: TeamFacts, facts: Facts, t: Text) -> str:
    """One row per service, one cell per round, coloured by the status its close counted."""
    services = facts.services
    rounds = facts.rounds
    fig, ax = _figure(9, 0.5 + 0.42 * len(services))
    codes = [[team.statuses.get(s.id, {}).get(r) for r in rounds] for s in services]
    grid = [[len(STATUS_ORDER) if code is None else STATUS_ORDER.index(status_name(code)) for code in row]
            for row in codes]  # white: the box was not played that round
    cmap = ListedColormap([*STATUS_COLORS.values(), "#ffffff"])
    extent = (rounds[0] - 0.5, rounds[-1] + 0.5, len(services) - 0.5, -0.5) if rounds else None
    ax.imshow(grid, aspect="auto", cmap=cmap, vmin=0, vmax=len(STATUS_ORDER), interpolation="nearest",
              extent=extent)
    ax.set_yticks(range(len(services)), [s.name for s in services])
    ax.set_xlabel(t("round"))
    if rounds:
        ax.set_xticks(rounds if len(rounds) <= 30 else rounds[:: max(1, len(rounds) // 20)])
    seen = {status_name(code) for per in team.statuses.values() for code in per.values()}
    handles = [LegendPatch(color=color, label=t(f"status.{name}")) for name, color in STATUS_COLORS.items()
               if name in seen]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=8)
    return _svg(fig)


def attack_matrix(facts: Facts, t: Text) -> str:
    """Flags each attacker (row) stole from each victim (column), all services together."""
    teams = facts.teams
    index = {team.id: i for i, team in enumerate(teams)}
    counts = [[0] * len(teams) for _ in teams]
    for team in teams:
        for (victim, _service), n in team.attacks.items():
            if victim in index:
                counts[index[team.id]][index[victim]] += n
    size = max(3.5, 0.55 * len(teams) + 2)
    fig, ax = _figure(size + 1, size)
    image = ax.imshow(counts, cmap="Reds", vmin=0)
    names = [team.name for team in teams]
    ax.set_xticks(range(len(teams)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(teams)), names)
    ax.set_xlabel(t("victim"))
    ax.set_ylabel(t("attacker"))
    top = max((max(row) for row in counts), default=0) or 1
    for i, row in enumerate(counts):
        for j, n in enumerate(row):
            if n:
                ax.text(j, i, str(n), ha="center", va="center", color="white" if n > top / 2 else "black", fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8, label=t("flags"))
    return _svg(fig)


def exploitation(service: ServiceFacts, facts: Facts, t: Text) -> str:
    """Teams exploiting the service and teams losing its flags, per round; fixes marked."""
    rounds = facts.rounds
    fig, ax = _figure(9, 3)
    ax.bar(rounds, [service.attackers_per_round.get(r, 0) for r in rounds], color="#c53030", alpha=0.75,
           label=t("attackers_per_round"))
    ax.plot(rounds, [service.victims_per_round.get(r, 0) for r in rounds], color="#2b6cb0", marker="o",
            markersize=3, label=t("victims_per_round"))
    for patch in service.patches:
        if patch.fixed_round is not None:
            ax.axvline(patch.fixed_round - 0.5, color="#1f9d55", linestyle="--", linewidth=1)
            ax.text(patch.fixed_round - 0.45, ax.get_ylim()[1] * 0.95, facts.team_name(patch.team), color="#1f9d55",
                    fontsize=8, va="top")
    ax.set_xlabel(t("round"))
    ax.yaxis.get_major_locator().set_params(integer=True)
    if rounds:
        ax.set_xticks(rounds if len(rounds) <= 30 else rounds[:: max(1, len(rounds) // 20)])
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=8)
    return _svg(fig)
