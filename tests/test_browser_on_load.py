"""A visitor's first look: every tab shows a result as soon as the page loads, before anyone presses a button.

The page runs with the app's event queue blocked (every /queue/join is refused), so what shows can only come
from values computed once at start-up, never from an event the page would have to wait for.  Each result must
appear within FEW_SECONDS of the page's load event.  (The Project tab has its own test.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app_server import CHROMIUM, ROOT

pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)

ARTIFACTS = ROOT / "test-artifacts"
FEW_SECONDS = 15_000  # ms from the page's load event; headroom for a busy 2-core CI machine
ONE_LINE = """sel => [...document.querySelectorAll(sel)].map(el => { const r = document.createRange();
    r.selectNodeContents(el); return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; })"""


@pytest.fixture
def first_look(browser, app_server):
    """A fresh page of the shared app, loaded with every event refused; open(tab) shows a tab."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route("**/gradio_api/queue/join*", lambda route: route.abort())  # no event can deliver anything
    page.goto(app_server.url)
    page.wait_for_load_state("load")

    def open_tab(name: str) -> None:
        page.get_by_role("tab", name=name).click(timeout=FEW_SECONDS)

    page.open_tab = open_tab
    yield page
    page.close()
    assert not errors, f"JavaScript errors on the page: {errors[:3]}"


def _loaded(page, selector: str, count: int = 1) -> None:
    """Wait until selector holds at least count <img> elements, each loaded and decoded."""
    page.wait_for_function("([sel, n]) => { const imgs = [...document.querySelectorAll(sel + ' img')];"
                           " return imgs.length >= n && imgs.every(i => i.complete && i.naturalWidth > 0); }",
                           arg=[selector, count], timeout=FEW_SECONDS)


def test_generate_shows_an_image_on_load(first_look):
    page = first_look
    _loaded(page, "#gen-image")


def test_interpolate_shows_the_default_path_on_load(first_look):
    page = first_look
    page.open_tab("Interpolate")
    _loaded(page, "#interp-gif")
    assert page.eval_on_selector("#interp-gif img", "el => el.src").endswith(".gif")
    links = page.eval_on_selector_all("#interp-files a", "els => els.map(e => e.href)")
    assert sorted(Path(h).suffix for h in links) == [".gif", ".mp4"], links  # downloads, not a second player
    gif = page.request.get(next(h for h in links if h.endswith(".gif")))
    assert gif.ok and gif.body()[:6] == b"GIF89a"
    assert page.locator("#interp-mp4, video").count() == 0  # one animation on the page
    page.screenshot(path=str(ARTIFACTS / "on_load_interpolate.png"), full_page=True)


def test_score_shows_scored_examples_on_load(first_look):
    page = first_look
    page.open_tab("Score")
    page.wait_for_selector("#score-result h3", timeout=FEW_SECONDS)
    assert "P(real) =" in page.inner_text("#score-result h3")
    _loaded(page, "#score-seen", count=2)  # a real test image and one of this model's samples
    page.wait_for_selector("#score-table th", timeout=FEW_SECONDS)
    table = page.inner_text("#score-table")
    assert "real_" in table and "generated_" in table, table
    headers = page.eval_on_selector_all("#score-table th .header", "els => els.map(e => e.innerText.trim())")
    assert headers[:4] == ["image", "verdict", "by", "P(real)"] and len(headers) == 10, headers
    assert set(page.evaluate(ONE_LINE, "#score-table th .header")) == {1}  # no header wraps at this width
    assert "vs real" in page.inner_text("#score-legend")  # the legend explains the short headers
    page.screenshot(path=str(ARTIFACTS / "on_load_score.png"), full_page=True)


def test_game_shows_the_starting_position_on_load(first_look):
    page = first_look
    page.open_tab("Game")
    _loaded(page, "#game-main")
    _loaded(page, "#game-charts")
    assert "starting position" in page.inner_text("#game-readout")


def test_model_shows_its_summary_on_load(first_look):
    page = first_look
    page.open_tab("Model")
    page.wait_for_selector("#model-summary", timeout=FEW_SECONDS)
    assert "Model:" in page.inner_text("#model-summary")
