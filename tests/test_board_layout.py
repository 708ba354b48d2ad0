"""Board layouts in a real chromium, measured: on a big screen (1920x1080, 1280x720) every panel,
every team row and every status cell lies inside the viewport with no page scroll; on a phone
(390x844) every status of every team is on screen sideways; empty panels say so in zh and en."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from scoreboard.types import GameState, Status
from tests.game_helpers import flag_of, start_at_round
from tests.web_helpers import start_web

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parent.parent / "test-output"
TEAMS, SERVICES, ROUNDS = 10, 4, 6
LONG_NAME = "Blue-Lotus Alliance of Very Long Team Names 蓝莲花战队"
KINDS = [Status.OK, Status.OK, Status.DOWN, Status.OK, Status.MUMBLE, Status.CORRUPT, Status.OK,
         Status.CHECKER_ERROR, Status.RECOVERING, Status.OK, Status.OK]

# Every box the page shows, with whether its centre really is on screen (not under another
# element, not clipped away by a scrolling parent): the hit test at the centre finds it.
MEASURE = """(selector) => Array.from(document.querySelectorAll(selector)).map(e => {
  const r = e.getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return {x: r.left, y: r.top, right: r.right, bottom: r.bottom, w: r.width, h: r.height,
          hit: !!hit && (e === hit || e.contains(hit)), text: e.innerText};
})"""
CHART_SIZED = """() => { const c = document.getElementById('history-chart');
  return Math.abs(c.getBoundingClientRect().height - c.parentNode.getBoundingClientRect().height) < 2; }"""
PAGE = """() => ({width: innerWidth, height: innerHeight,
  scrollWidth: document.scrollingElement.scrollWidth, scrollHeight: document.scrollingElement.scrollHeight})"""


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def _status(round_: int, team: int, service: int) -> Status:
    return KINDS[(round_ + 3 * team + 5 * service) % len(KINDS)]


def _play(store) -> None:
    """Six rounds of a 10x4 game: every kind of status, captures on every service, five closed
    rounds of history and two announcements."""
    store.set_state(GameState.RUNNING)
    for round_ in range(1, ROUNDS + 1):
        store.open_round(round_)
        for team in range(1, TEAMS + 1):
            for service in range(1, SERVICES + 1):
                store.record_check(round_, team, service, _status(round_, team, service),
                                   public=f"round {round_} check of box {team}:{service}")
        for attacker in range(1, TEAMS + 1):
            if (attacker + round_) % 3 == 0 or attacker == 1:
                for step in (1, 2):
                    victim = (attacker + step * round_) % TEAMS + 1
                    service = (attacker + step + round_) % SERVICES + 1
                    if victim != attacker:
                        result = store.submit(attacker, [(flag_of(store, round_, victim, service), victim, service,
                                                          round_)])
                        assert result[0].startswith("A"), result
        if round_ < ROUNDS:
            store.close_round(round_)
    store.add_announcement("Service svc3 restarted on every vulnbox; flags of round 4 stay valid", "admin")
    store.add_announcement("比赛将在 18:00 冻结榜单", "admin")


def _names(data: dict[str, Any]) -> None:
    data["teams"][2]["name"] = LONG_NAME
    data["teams"][5]["name"] = "复旦大学六星"


@pytest.fixture(scope="module")
def full(redis_server, tmp_path_factory):
    game = start_web(redis_server.url, tmp_path_factory.mktemp("layout"), prepare=_play, edit=_names,
                     teams=TEAMS, services=SERVICES, round_seconds=120)
    yield game
    game.stop()


@pytest.fixture
def empty(redis_server, tmp_path):
    game = start_web(redis_server.url, tmp_path, prepare=lambda s: start_at_round(s, 1), round_seconds=120)
    yield game
    game.stop()


def open_board(browser, url: str, width: int, height: int, **options: Any):
    page = browser.new_page(viewport={"width": width, "height": height}, **options)
    page.goto(url)
    page.wait_for_selector("#ranking-body tr")
    page.wait_for_function("document.getElementById('round-no').textContent !== '-'")
    page.wait_for_function("document.fonts.status === 'loaded'")
    page.wait_for_function(CHART_SIZED)  # Chart.js sizes its canvas to its box a frame later
    return page


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def boxes(page, selector: str) -> list[dict[str, Any]]:
    return page.evaluate(MEASURE, selector)


def overlap(a: dict[str, float], b: dict[str, float]) -> float:
    return max(0.0, min(a["right"], b["right"]) - max(a["x"], b["x"])) * \
        max(0.0, min(a["bottom"], b["bottom"]) - max(a["y"], b["y"]))


def inside(box: dict[str, float], width: float, height: float) -> bool:
    return (box["w"] > 0 and box["h"] > 0 and box["x"] >= -0.5 and box["y"] >= -0.5
            and box["right"] <= width + 0.5 and box["bottom"] <= height + 0.5)


def describe(name: str, found: list[dict[str, Any]]) -> str:
    return f"{name}: " + ", ".join(f"[{b['x']:.0f},{b['y']:.0f} {b['w']:.0f}x{b['h']:.0f} hit={b['hit']}]"
                                   for b in found[:6])


@pytest.mark.parametrize(("width", "height", "big", "lang"), [
    (1920, 1080, True, "en"), (1920, 1080, False, "en"), (1920, 1080, False, "zh"),
    (1280, 720, True, "en"), (1280, 720, False, "en"), (1280, 720, False, "zh")])
def test_big_screen_shows_every_panel_without_scrolling(browser, full, width, height, big, lang):
    page = open_board(browser, full.url + f"/?lang={lang}" + ("&big=1" if big else ""), width, height)
    try:
        name = f"board-layout-{width}x{height}{'-big' if big else ''}-{lang}"
        shot(page, name)
        view = page.evaluate(PAGE)
        assert view["scrollHeight"] <= height and view["scrollWidth"] <= width, (name, view)
        expected = {
            "header": (".bar", 1), "round": ("#round-no", 1), "clock": ("#countdown", 1),
            "ranking rows": ("#ranking-body tr", TEAMS), "ranking head": ("#ranking-head th", 6 + SERVICES),
            "status cells": ("#ranking-body td.cell", TEAMS * SERVICES),
            "attack feed": ("#attack-feed", 1), "newest attack": ("#attack-feed li.attack:first-child", 1),
            "attack view": ("section:has(#attack-view)", 1), "attack pairs": ("#attack-view tr:nth-child(2)", 1),
            "first bloods": ("#first-bloods li", SERVICES),
            "score chart": ("#history-chart", 1), "announcements": ("#announcements p", 2),
        }
        panels = []
        for what, (selector, count) in expected.items():
            found = boxes(page, selector)
            assert len(found) == count, (name, what, len(found))
            assert all(inside(b, width, height) and b["hit"] for b in found), (name, describe(what, found))
            if what in ("header", "attack feed", "attack view", "score chart"):
                panels.append((what, found[0]))
        for what in ("ranking rows", "first bloods", "announcements"):  # each whole list as one panel
            found = boxes(page, expected[what][0])
            panels.append((what, {"x": min(b["x"] for b in found), "y": min(b["y"] for b in found),
                                  "right": max(b["right"] for b in found),
                                  "bottom": max(b["bottom"] for b in found)}))
        for i, (first, a) in enumerate(panels):
            for second, b in panels[i + 1:]:
                assert overlap(a, b) < 1, (name, first, second, a, b)
        # every team is on screen at once: the ranking does not scroll inside its panel either
        scroller = page.evaluate("""() => { const e = document.getElementById('ranking').parentElement;
            return [e.scrollHeight, e.clientHeight, e.scrollWidth, e.clientWidth]; }""")
        assert scroller[0] <= scroller[1] + 1 and scroller[2] <= scroller[3] + 1, (name, scroller)
        # readable from the back of the room: team names and the chart are not shrunk to nothing
        size = page.evaluate("parseFloat(getComputedStyle(document.querySelector('#ranking-body .col-team')).fontSize)")
        assert size >= (16 if width >= 1920 else 12), (name, size)
        chart = boxes(page, "#history-chart")[0]
        assert chart["h"] >= 0.15 * height and chart["w"] >= 0.25 * width, (name, chart)
        assert LONG_NAME[:10] in page.locator("#ranking-body").inner_text()
    finally:
        page.close()


def test_phone_shows_every_status_of_every_team(browser, full):
    page = open_board(browser, full.url + "/?lang=en", 390, 844, is_mobile=True, has_touch=True)
    try:
        shot(page, "board-layout-390x844")
        view = page.evaluate(PAGE)
        assert view["scrollWidth"] <= 390, view
        rows = page.locator("#ranking-body tr")
        assert rows.count() == TEAMS
        services = [f"svc{i}" for i in range(1, SERVICES + 1)]
        for i in range(TEAMS):
            row = rows.nth(i)
            row.evaluate("e => e.scrollIntoView({block: 'center'})")
            team = boxes(page, f"#ranking-body tr:nth-child({i + 1}) .col-team")[0]
            assert team["w"] > 0 and team["x"] >= 0 and team["right"] <= 390 and team["hit"], (i, team)
            cells = boxes(page, f"#ranking-body tr:nth-child({i + 1}) td.cell")
            assert len(cells) == SERVICES
            for service, cell in zip(services, cells, strict=True):
                assert cell["w"] > 0 and cell["h"] > 0, (i, service, cell)
                assert cell["x"] >= 0 and cell["right"] <= 390, (i, service, cell)
                assert cell["y"] >= 0 and cell["bottom"] <= 844 and cell["hit"], (i, service, cell)
                assert service in cell["text"], (i, service, cell["text"])  # each chip names its service
            for a in range(len(cells)):
                for b in range(a + 1, len(cells)):
                    assert overlap(cells[a], cells[b]) < 1, (i, cells[a], cells[b])
        assert page.locator("#ranking-body td.cell").count() == TEAMS * SERVICES
        for selector in ("#attack-feed li.attack:first-child", "#first-bloods li", "#history-chart",
                         "#announcements p"):
            page.locator(selector).first.evaluate("e => e.scrollIntoView({block: 'center'})")
            found = boxes(page, selector)
            assert found and all(b["w"] > 0 and b["x"] >= 0 and b["right"] <= 390 for b in found), \
                describe(selector, found)
    finally:
        page.close()


PLACEHOLDERS = {"#attack-feed-empty": ("暂无攻击", "No attacks yet"),
                "#attack-view-empty": ("暂无攻击", "No attacks yet"),
                "#first-bloods-empty": ("暂无一血", "No first blood yet"),
                "#history-empty": ("暂无分数记录", "No scores yet"),
                "#announcements-empty": ("暂无公告", "No announcements")}


def test_empty_panels_show_placeholders_in_both_languages(browser, empty):
    page = open_board(browser, empty.url + "/", 1280, 720)
    try:
        assert page.locator("#attack-feed li").count() == 0
        for selector, (zh, _) in PLACEHOLDERS.items():
            found = boxes(page, selector)
            assert len(found) == 1 and inside(found[0], 1280, 720) and found[0]["hit"], describe(selector, found)
            assert found[0]["text"] == zh, (selector, found[0]["text"])
        shot(page, "board-layout-empty-zh")
        page.click("button.lang[data-lang=en]")
        for selector, (_, en) in PLACEHOLDERS.items():
            assert page.locator(selector).inner_text() == en, selector
        shot(page, "board-layout-empty-en")
        # the first capture replaces the feed's and first bloods' placeholders, live
        assert empty.store.submit(2, [(flag_of(empty.store, 1, 3, 1), 3, 1, 1)])[0].startswith("A")
        page.wait_for_selector("#attack-feed li.attack")
        page.wait_for_function("document.querySelector('#first-bloods li .attacker') !== null")
        for selector in ("#attack-feed-empty", "#attack-view-empty", "#first-bloods-empty"):
            page.wait_for_selector(selector, state="hidden")
        assert page.locator("#history-empty").is_visible() and page.locator("#announcements-empty").is_visible()
        assert "team2" in page.locator("#first-bloods").inner_text()
    finally:
        page.close()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_times_are_24_hour_clock_times_in_the_page_language(browser, full, lang):
    """A projector's browser may run in English: the board's times follow the page's language."""
    page = open_board(browser, full.url + f"/?lang={lang}", 1280, 720)
    try:
        page.wait_for_selector("#attack-feed li .time")
        times = page.eval_on_selector_all("#attack-feed li .time, #announcements .time",
                                          "els => els.map(e => e.textContent)")
        assert times and all(re.fullmatch(r"\d{2}:\d{2}:\d{2}", t.strip()) for t in times), times[:3]
    finally:
        page.close()
