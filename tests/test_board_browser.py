"""The board page in a real chromium: live ranking, attack feed, status colours, zh/en, pause."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from scoreboard.types import GameState, Status
from tests.game_helpers import flag_of, start_at_round
from tests.web_helpers import ADMIN_PASSWORD, start_web

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parent.parent / "test-output"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def web(redis_server, tmp_path):
    def edit(data):
        data["teams"][2]["name"] = "<script>window.pwned=1</script>"
    game = start_web(redis_server.url, tmp_path, prepare=lambda s: start_at_round(s, 2), edit=edit,
                     round_seconds=60)
    yield game
    game.stop()


@pytest.fixture
def page(browser, web):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(web.url + "/")
    page.wait_for_selector("#ranking-body tr")
    yield page
    page.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_board_shows_ranking_and_escapes_team_names(page):
    rows = page.locator("#ranking-body tr")
    assert rows.count() == 4
    assert "<script>window.pwned=1</script>" in page.locator("#ranking-body").inner_text()
    assert page.evaluate("window.pwned") is None
    shot(page, "board")


def test_submitted_flag_moves_ranking_and_feed_without_reload(page, web):
    page.evaluate("window.notReloaded = true")
    flag = flag_of(web.store, 2, 1, 1)
    reply = requests.put(f"{web.url}/flags", json=[flag], headers={"X-Team-Token": web.token(4)}, timeout=5)
    assert reply.json()[0]["status"] is True
    page.wait_for_function("document.querySelector('#ranking-body tr .col-team').textContent === 'team4'",
                           timeout=5000)
    page.wait_for_selector("#attack-feed li.attack")
    assert "team4" in page.locator("#attack-feed").inner_text()
    assert "team4" in page.locator("#first-bloods").inner_text()
    assert page.evaluate("window.notReloaded") is True
    shot(page, "board-after-flag")


def test_status_change_recolours_its_cell(page, web):
    cell = page.locator('td[data-box="2:1"]')
    web.store.record_check(2, 2, 1, Status.DOWN, public="connection refused <b>x</b>")
    page.wait_for_function("document.querySelector('td[data-box=\"2:1\"]').dataset.status === 'DOWN'",
                           timeout=5000)
    assert "status-DOWN" in cell.get_attribute("class")
    assert cell.get_attribute("title") == "connection refused <b>x</b>"
    colour = cell.evaluate("c => getComputedStyle(c).backgroundColor")
    web.store.record_check(2, 2, 1, Status.OK, public="")
    page.wait_for_function("document.querySelector('td[data-box=\"2:1\"]').dataset.status === 'OK'",
                           timeout=5000)
    assert cell.evaluate("c => getComputedStyle(c).backgroundColor") != colour
    cell.click()
    assert "team2 / svc1" in page.locator("#cell-message").inner_text()


def test_language_switch(page):
    assert page.locator("#ranking-head th.col-team").inner_text() == "队伍"  # zh first (web.language zh)
    page.click("button.lang[data-lang=en]")
    assert page.locator("#ranking-head th.col-team").inner_text() == "Team"
    assert page.locator("[data-t=attacks]").inner_text() == "Live attacks"
    page.click("button.lang[data-lang=zh]")
    assert page.locator("[data-t=attacks]").inner_text() == "实时攻击"


def test_admin_pause_stops_the_countdown(page, web):
    ticker = web.start_ticker()  # the clock's owner applies the admin's pause
    try:
        page.wait_for_function("document.getElementById('countdown').textContent !== '--:--'")
        requests.post(f"{web.url}/admin/api/state", json={"action": "pause"}, auth=("admin", ADMIN_PASSWORD),
                      timeout=5).raise_for_status()
        page.wait_for_function("document.getElementById('state').classList.contains('paused')", timeout=10000)
        first = page.locator("#countdown").inner_text()
        time.sleep(2.2)
        assert page.locator("#countdown").inner_text() == first
        assert web.store.state()["state"] == GameState.PAUSED
        shot(page, "board-paused")
    finally:
        ticker.kill()


def test_big_screen_and_phone_layouts(browser, web):
    big = browser.new_page(viewport={"width": 1920, "height": 1080})
    big.goto(web.url + "/?big=1&lang=en")
    big.wait_for_selector("#ranking-body tr")
    assert "big" in big.locator("body").get_attribute("class")
    assert big.locator("[data-t=attacks]").inner_text() == "Live attacks"
    shot(big, "board-big")
    big.close()
    phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone.goto(web.url + "/")
    phone.wait_for_selector("#ranking-body tr")
    assert phone.locator("#ranking-head th.col-atk").is_hidden()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 420
    shot(phone, "board-phone")
    phone.close()
