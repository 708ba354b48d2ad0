"""`adrange report`: the after-action report as one self-contained HTML file per language
(CSS inline, charts as inline SVG, no script, opens offline) and its PDF, printed by
headless Chromium (playwright) from that very file.

Every number comes from `facts.compute`; this module only lays them out.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from . import charts
from .facts import Facts, compute
from .record import GameRecord
from .texts import text, texts
from .timeline import Timeline

TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LANGUAGES = ("zh", "en")
Progress = Callable[[str], None]


class ReportError(Exception):
    """A report that cannot be written (e.g. no Chromium for the PDF); the message says why."""


@dataclass
class Written:
    """The files of one language's report."""

    lang: str
    html: Path
    pdf: Path | None


def number(value: float | None) -> str:
    """A score as the board shows it: at most two decimals, no trailing zeros."""
    if value is None:
        return "-"
    text_ = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text_ in ("-0", "") else text_


def clock(epoch: float | None) -> str:
    """An event time as the organizers' local date and time."""
    if epoch is None:
        return "-"
    return dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None, lang: str) -> str:
    """A time span in minutes (seconds below one minute)."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return text(lang, "minutes", m=f"{seconds / 60:.1f}")


def render(facts: Facts, lang: str, record: GameRecord, progress: Progress | None = None) -> str:
    """The report in `lang` as one HTML document (`record`: where the game was read from)."""
    def t(key: str, **values: Any) -> str:
        return text(lang, key, **values)

    def step(what: str) -> None:
        if progress:
            progress(f"{lang}: {what}")

    step("charts: score over time, attack matrix")
    figures: dict[str, Any] = {"score": charts.score_over_time(facts, t), "matrix": charts.attack_matrix(facts, t),
                               "teams": {}, "services": {}}
    for team in facts.teams:
        step(f"charts: team {team.name}")
        figures["teams"][team.id] = charts.status_timeline(team, facts, t)
    for service in facts.services:
        step(f"charts: service {service.name}")
        figures["services"][service.id] = charts.exploitation(service, facts, t)
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    template = env.get_template("report.html")
    return template.render(
        facts=facts, lang=lang, tx=texts(lang), t=t, charts=figures,
        source=t(f"source.{record.origin}", where=record.where),
        generated=clock(time.time()), number=number, clock=clock, duration=lambda s: duration(s, lang),
        services={s.id: s for s in facts.services}, name=facts.team_name,
    )


def print_pdfs(pages: list[tuple[Path, Path]], chromium: str = CHROMIUM) -> None:
    """Print each (HTML file, PDF file) pair to A4 with one headless Chromium."""
    if not Path(chromium).exists():
        raise ReportError(f"no Chromium at {chromium} to print the PDF: give --chromium PATH, or --no-pdf")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for html, pdf in pages:
                page = browser.new_page()
                page.goto(html.resolve().as_uri(), wait_until="load")
                page.pdf(path=str(pdf), format="A4", print_background=True,
                         margin={"top": "12mm", "bottom": "12mm", "left": "10mm", "right": "10mm"})
                page.close()
        finally:
            browser.close()


def write_reports(record: GameRecord, folder: Path, languages: tuple[str, ...] = LANGUAGES, pdf: bool = True,
                  chromium: str = CHROMIUM, progress: Progress | None = None) -> list[Written]:
    """Write report-<game>.<lang>.html (and .pdf) into `folder` for each language."""
    if pdf and not Path(chromium).exists():  # before any work
        raise ReportError(f"no Chromium at {chromium} to print the PDF: give --chromium PATH, or --no-pdf")
    folder.mkdir(parents=True, exist_ok=True)
    if progress:
        progress("replaying the game")
    facts = compute(Timeline(record))
    written = []
    for lang in languages:
        html = folder / f"report-{facts.game}.{lang}.html"
        html.write_text(render(facts, lang, record, progress), encoding="utf-8")
        written.append(Written(lang, html, html.with_suffix(".pdf") if pdf else None))
    if pdf:
        if progress:
            progress("printing the PDF" + ("s" if len(written) > 1 else ""))
        print_pdfs([(item.html, item.pdf) for item in written if item.pdf], chromium)
    return written
