"""`adrange report`: the after-action report of a small recorded game has every section in
both languages, its numbers are the scoreboard's (totals, ranks, flags lost, first bloods;
read back from the HTML), it is self-contained, and its PDF has pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from pypdf import PdfReader

from deploy.export import scoreboard
from scoreboard.effective import apply_overrides
from tests.afteraction_helpers import RENAMED, ROUNDS, SERVICES, TEAMS, adrange, record_game

SECTIONS = ("summary", "final-ranking", "score-over-time", "first-bloods", "attack-matrix", "teams", "services",
            "definitions")
HEADINGS = {"zh": ("最终排名", "分数变化", "服务状态时间线", "按攻击者统计的失旗", "发起的攻击", "首次修复用时",
                   "定义"),
            "en": ("Final ranking", "Score over time", "Service status timeline", "Flags lost by attacker",
                   "Attacks made", "Time to first fix", "Definitions")}


@pytest.fixture(scope="module")
def reported(redis_server, tmp_path_factory):
    """The game (first bloods kept by a real `adrange web`), its export and its report from the folder."""
    work = tmp_path_factory.mktemp("report")
    game = record_game(redis_server.url, work / "game", "faust", first_bloods=True)
    out = work / "report"
    done = adrange("report", str(game.export), "-o", str(out))
    assert done.returncode == 0, done.stderr
    return game, out, done.stdout


def _soup(out: Path, lang: str) -> BeautifulSoup:
    return BeautifulSoup((out / f"report-{_name(out)}.{lang}.html").read_text(encoding="utf-8"), "html.parser")


def _name(out: Path) -> str:
    return next(out.glob("report-*.en.html")).name.removeprefix("report-").removesuffix(".en.html")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_report_has_every_section_in_its_language(reported, lang):
    _, out, stdout = reported
    soup = _soup(out, lang)
    assert soup.html["lang"] == lang
    for section in SECTIONS:
        assert soup.find(id=section) is not None, section
    text = soup.get_text()
    for heading in HEADINGS[lang]:
        assert heading in text, heading
    assert len(soup.select("#teams article.team")) == TEAMS
    assert len(soup.select("#services article.service")) == SERVICES
    for team in soup.select("#teams article.team"):
        assert team.select_one("figure.status-timeline svg path") is not None
        for part in ("table.lost-by-service", ".lost-by-attacker", ".attacks-made", "dd.first-bloods", "dd.first-fix"):
            assert team.select_one(part) is not None, part
        assert len(team.select("table.lost-by-service td.sla")) == SERVICES
    for service in soup.select("#services article.service"):
        assert service.select_one("figure.exploitation svg") is not None
        assert service.select_one("dd.first-blood") and service.select_one("dd.attackers")
    assert soup.select_one("#score-over-time svg") is not None and soup.select_one("#attack-matrix svg") is not None
    assert soup.select_one("#summary .verified") is not None  # the replay equals the live record
    assert f"{lang}: wrote" in stdout


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_report_numbers_are_the_scoreboards(reported, lang):
    game, out, _ = reported
    soup = _soup(out, lang)
    live = scoreboard(game.store)
    ranking = {row["team"]: row for row in live["ranking"]}
    rows = soup.select("#final-ranking tbody tr")
    assert [int(r["data-team"]) for r in rows] == [row["team"] for row in live["ranking"]]
    for tr in rows:
        row = ranking[int(tr["data-team"])]
        assert tr.select_one(".name").get_text() == row["name"]
        assert int(tr.select_one(".rank").get_text()) == row["rank"]
        assert float(tr.select_one(".total").get_text()) == row["total"]
        assert int(tr.select_one(".lost").get_text()) == row["lost"]
        assert int(tr.select_one(".captured").get_text()) == row["captured"]
    for tr in soup.select("#score-over-time table.history tbody tr"):
        team = tr["data-team"]
        for cell in tr.select("td[data-round]"):
            expected = live["history"][cell["data-round"]][team]
            assert (float(cell.get_text()), int(cell["data-rank"])) == (round(expected["total"], 2), expected["rank"])
    for article in soup.select("#teams article.team"):
        row = ranking[int(article["data-team"])]
        assert int(article.select_one("dd.lost").get_text()) == row["lost"]
        for tr in article.select("table.lost-by-service tbody tr"):
            assert int(tr.select_one("td.lost").get_text()) == row["services"][tr["data-service"]]["lost"]
    bloods = live["first_bloods"]
    assert len(bloods) == SERVICES  # kept by the real web process during the game
    for tr in soup.select("#first-bloods tbody tr"):
        blood = bloods[tr["data-service"]]
        assert (int(tr["data-attacker"]), int(tr["data-victim"]), int(tr["data-round"])) == (
            blood["a"], blood["v"], blood["r"])


def test_report_reads_the_scenario(reported):
    """What the recorded game did, as the report tells it (afteraction_helpers' story)."""
    _, out, _ = reported
    soup = _soup(out, "en")
    team3_svc1 = soup.select_one("#team-3 table.lost-by-service tr[data-service='1'] td[data-state]")
    assert (team3_svc1["data-state"], team3_svc1["data-fixed-round"]) == ("fixed", "3")
    assert "svc1: fixed from round 3" in soup.select_one("#team-3 dd.first-fix").get_text()
    assert soup.select_one("#team-1 table.lost-by-service tr[data-service='1'] td[data-state]")["data-state"] == (
        "never_lost")
    team2_svc1 = soup.select_one("#team-2 table.lost-by-service tr[data-service='1'] td[data-state]")
    assert team2_svc1["data-state"] == "not_fixed"  # lost svc1 flags to the very end
    by_attacker = {tr["data-attacker"]: int(tr.td.find_next_sibling("td").get_text())
                   for tr in soup.select("#team-1 table.lost-by-attacker tbody tr")}
    assert by_attacker == {"2": ROUNDS - 1, "4": 1}  # team2's svc2 exploit, team4's one older flag
    assert soup.select_one("#service-1 dd.attackers")["data-count"] == "2"
    assert soup.select_one("#service-1 dd.victims")["data-count"] == "3"
    assert "team1 → team2, round 1" in soup.select_one("#service-1 dd.first-blood").get_text()


def test_report_is_self_contained_and_escapes_names(reported):
    _, out, _ = reported
    for lang in ("zh", "en"):
        soup = _soup(out, lang)
        assert not soup.find_all(["script", "link", "img", "iframe", "object", "embed"])
        assert not [tag for tag in soup.find_all(True) if tag.get("src") or tag.get("href")]
        assert "url(" not in str(soup.style)
        assert RENAMED in soup.select_one("#final-ranking").get_text()  # shown as text, not markup


def test_pdf_has_pages_in_both_languages(reported):
    _, out, _ = reported
    for lang in ("zh", "en"):
        reader = PdfReader(out / f"report-{_name(out)}.{lang}.pdf")
        assert len(reader.pages) >= 1 + TEAMS + SERVICES  # each team and service starts a page
    english = PdfReader(out / f"report-{_name(out)}.en.pdf")
    assert "Final ranking" in english.pages[0].extract_text()


def test_report_from_live_redis_equals_the_folders(reported, tmp_path):
    game, out, _ = reported
    done = adrange("report", "-c", str(game.path), "-o", str(tmp_path), "--lang", "en", "--no-pdf")
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.glob("*.pdf"))
    live, folder = _soup(tmp_path, "en"), _soup(out, "en")
    for part in ("#final-ranking tbody", "#score-over-time table.history", "#first-bloods tbody", "#teams table"):
        assert [str(x) for x in live.select(part)] == [str(x) for x in folder.select(part)], part
    assert "live Redis" in live.select_one(".generated").get_text()


def test_report_errors_are_clear(reported, tmp_path):
    game, _, _ = reported
    done = adrange("report", str(game.export), "-o", str(tmp_path), "--chromium", str(tmp_path / "no-chromium"))
    assert done.returncode == 1 and "no Chromium at" in done.stderr and "--no-pdf" in done.stderr
    assert "Traceback" not in done.stderr
    done = adrange("report", str(tmp_path / "missing"))
    assert done.returncode == 1 and "no such game file or export folder" in done.stderr
    effective = apply_overrides(game.config, game.store.overrides())
    assert effective.team(4).name == RENAMED
