"""The Game tab in a real browser (Playwright driving Debian's chromium) on the shared app server.

Start the 2-D toy and see the heatmap and charts change, pause, step D alone and see only D's numbers move;
start Fashion-MNIST and see the sample grid change. Each game trains for a few seconds only.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app_server import CHROMIUM, ROOT
from gan.data import DEBIAN_FASHION_MNIST

playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)

ARTIFACTS = ROOT / "test-artifacts"
WAIT_MS = 90_000  # generous: CI is a busy 2-core machine


@pytest.fixture
def game(browser, app_server):
    """A page of the shared app with the Game tab open; no JavaScript errors allowed."""
    ARTIFACTS.mkdir(exist_ok=True)
    pg = browser.new_page(viewport={"width": 1400, "height": 1100})
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(app_server.url)
    pg.wait_for_load_state("load")
    pg.get_by_role("tab", name="Game").click()
    pg.wait_for_selector("#game-play", state="visible", timeout=WAIT_MS)
    yield pg
    pg.close()
    assert not errors, f"JavaScript errors on the page: {errors[:3]}"


def readout(page) -> dict[str, str]:
    """The read-out table under its headers: {'round': '12', 'D loss': '1.3462', ...}."""
    rows = page.eval_on_selector("#game-readout table", """t => [...t.rows].map(
        r => [...r.cells].map(c => c.innerText.trim()))""")
    return dict(zip(rows[0], rows[1]))


def src(page, elem: str) -> str:
    """The src of the image shown in a gr.Image (an inline data: URL), or '' when there is none."""
    return page.eval_on_selector(f"#{elem}", "el => (el.querySelector('img') || {}).src || ''")


def wait_for_round(page, more_than: int) -> dict[str, str]:
    """Wait until the read-out shows a round number above more_than; return the read-out."""
    page.wait_for_function("""(n) => { const t = document.querySelector('#game-readout table');
        return t && t.rows.length > 1 && parseInt(t.rows[1].cells[0].innerText) > n; }""",
                           arg=more_than, timeout=WAIT_MS)
    return readout(page)


def wait_until_still(page, quiet_ms: int = 1500) -> dict[str, str]:
    """The read-out once it has not changed for quiet_ms (within WAIT_MS): no tick lands any more."""
    last, waited = readout(page), 0
    while waited < WAIT_MS:
        page.wait_for_timeout(quiet_ms)
        waited += quiet_ms
        now = readout(page)
        if now == last:
            return now
        last = now
    raise AssertionError(f"the game kept training for {WAIT_MS} ms after Pause: {last}")


def wait_for_new_src(page, elem: str, old: str) -> str:
    page.wait_for_function("([id, old]) => { const i = document.querySelector('#' + id + ' img');"
                           " return i && i.src && i.src !== old; }", arg=[elem, old], timeout=WAIT_MS)
    return src(page, elem)


def test_toy_plays_pauses_and_steps_d_alone(game):
    page = game
    page.click("#game-play")
    first = wait_for_round(page, 0)
    t_first = time.monotonic()
    heat, chart = src(page, "game-main"), src(page, "game-charts")
    assert heat.startswith("data:image/png") and chart.startswith("data:image/png")
    later = wait_for_round(page, int(first["round"]))  # the timer keeps training: picture and charts move on
    tick_ms = 1000 * (time.monotonic() - t_first)  # one tick as this machine runs it now (slow when busy)
    assert wait_for_new_src(page, "game-main", heat) != heat and wait_for_new_src(page, "game-charts", chart) != chart
    page.click("#game-pause")
    # the frame of a tick running when Pause was clicked may still land: quiet for longer than a tick takes
    quiet = max(1500, int(2 * tick_ms))
    paused = wait_until_still(page, quiet)
    page.wait_for_timeout(quiet)
    assert readout(page) == paused and int(paused["round"]) >= int(later["round"])

    heat = src(page, "game-main")
    page.click("#game-step-d")
    page.wait_for_function("(n) => { const t = document.querySelector('#game-readout table');"
                           " return t && parseInt(t.rows[1].cells[1].innerText) === n; }",
                           arg=int(paused["D updates"]) + 1, timeout=WAIT_MS)
    stepped = readout(page)
    assert stepped["G updates"] == paused["G updates"] and stepped["G loss"] == paused["G loss"]
    assert stepped["D loss"] != paused["D loss"] and stepped["round"] == paused["round"]
    assert wait_for_new_src(page, "game-main", heat) != heat  # D's heatmap moved; G's points did not
    page.screenshot(path=str(ARTIFACTS / "game_toy.png"), full_page=True)


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="needs the Fashion-MNIST IDX files "
                    "(apt-get install dataset-fashion-mnist)")
def test_fashion_mode_trains_and_the_grid_changes(game):
    page = game
    page.get_by_label("Fashion-MNIST").check()
    page.click("#game-play")
    first = wait_for_round(page, 0)
    grid = src(page, "game-main")
    assert grid.startswith("data:image/png")
    wait_for_round(page, int(first["round"]))
    assert wait_for_new_src(page, "game-main", grid) != grid
    page.wait_for_selector("#game-hist img", state="visible", timeout=WAIT_MS)
    page.click("#game-pause")
    page.screenshot(path=str(ARTIFACTS / "game_fashion.png"), full_page=True)
