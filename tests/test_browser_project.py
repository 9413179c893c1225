"""The Project tab in a real browser: a result on load, and a user's garment edited with the sliders.

The edit test runs on the shipped model (its encoder, tuned copies of G and fitted sliders); the on-load test
on the shared tiny app with the event queue refused, so that what shows comes from start-up.
"""

from __future__ import annotations

import base64
import io
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app_server import CHROMIUM, ROOT

pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)

ARTIFACTS = ROOT / "test-artifacts"
GARMENT = ROOT / "assets" / "examples" / "real_sneaker_test9.png"
FEW_SECONDS = 15_000


def _pixels(page, selector: str) -> np.ndarray:
    """The 28x28 grey image behind an <img> (a data: URL or a served 224x224 PNG), as floats in [0, 1]."""
    src = page.eval_on_selector(selector, "el => el.src")
    data = base64.b64decode(src.split(",", 1)[1]) if src.startswith("data:") else page.request.get(src).body()
    im = Image.open(io.BytesIO(data)).convert("L")
    return np.asarray(im, dtype=np.float32)[::im.width // 28, ::im.width // 28] / 255.0


def _loaded(page, selector: str) -> None:
    page.wait_for_function("sel => { const i = [...document.querySelectorAll(sel + ' img')]; "
                           "return i.length > 0 && i.every(x => x.complete && x.naturalWidth > 0); }",
                           arg=selector, timeout=60_000)


def test_project_tab_shows_a_result_on_load(browser, app_server):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    try:
        page.route("**/gradio_api/queue/join*", lambda route: route.abort())  # nothing may come from an event
        page.goto(app_server.url)
        page.wait_for_load_state("load")
        page.get_by_role("tab", name="Project").click(timeout=FEW_SECONDS)
        page.wait_for_function("() => (document.querySelector('#proj-result')?.innerText || '')"
                               ".includes('Best match for')", timeout=FEW_SECONDS)
        assert "real_dress" in page.inner_text("#proj-result")
        for sel in ("#proj-target", "#proj-recon", "#proj-examples"):
            page.wait_for_function("sel => { const i = [...document.querySelectorAll(sel + ' img')]; "
                                   "return i.length > 0 && i.every(x => x.complete && x.naturalWidth > 0); }",
                                   arg=sel, timeout=FEW_SECONDS)
        assert page.locator("#proj-examples img").count() >= 5  # real garments and the photo-like shots
        page.screenshot(path=str(ARTIFACTS / "on_load_project.png"), full_page=True)
    finally:
        page.close()


def test_edit_in_generate_moves_the_uploaded_garment(browser, shipped_app_server):
    """Upload a sneaker, project it, open it in Generate: the image there is the user's garment (the tuned copy
    of G draws it), and moving an attribute slider changes that garment."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1300, "height": 1400})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(shipped_app_server.url)
        page.wait_for_selector("#gen-image img", timeout=60_000)
        page.get_by_role("tab", name="Project").click()
        page.set_input_files("#proj-file input[type=file]", str(GARMENT))
        page.click("#proj-btn")
        page.wait_for_function("() => (document.querySelector('#proj-result')?.innerText || '')"
                               ".includes('real_sneaker_test9')", timeout=60_000)
        text = page.inner_text("#proj-result")
        rms = float(re.search(r"pixel RMS error ([0-9.]+)% of full scale", text).group(1))
        assert "Sneaker" in text and "tuned copy of G" in text and rms <= 8.0, text
        _loaded(page, "#proj-recon")
        recon = _pixels(page, "#proj-recon img")
        page.click("#proj-edit")
        page.get_by_text("with the copy of G tuned to it").wait_for(timeout=30_000)  # Generate's pinned-latent note
        _loaded(page, "#gen-image")
        garment = np.asarray(Image.open(GARMENT).convert("L"), dtype=np.float32) / 255.0
        shown = _pixels(page, "#gen-image img")
        assert np.abs(shown - recon).max() <= 2 / 255  # Generate draws the projection itself
        assert np.sqrt(((shown - garment) ** 2).mean()) <= 0.08  # ... which is the user's garment
        before = page.eval_on_selector("#gen-image img", "el => el.src")
        slider = page.locator("[id^=dir-]:visible input[type=range]").first
        slider.focus()
        for _ in range(20):  # +2.0: keyboard steps fire the same 'input' events as a drag
            page.keyboard.press("ArrowRight")
        page.wait_for_function("(old) => document.querySelector('#gen-image img').src !== old", arg=before,
                               timeout=30_000)
        deadline = time.monotonic() + 30  # the first new image may answer an early keypress: wait for the last
        while True:
            _loaded(page, "#gen-image")
            moved = _pixels(page, "#gen-image img")
            change = np.abs(moved - shown)
            if change.mean() > 0.005 or time.monotonic() > deadline:
                break
            page.wait_for_timeout(500)
        assert change.mean() > 0.005  # the garment changed ...
        assert np.sqrt(((moved - garment) ** 2).mean()) < 0.25  # ... and is still the user's sneaker, edited
        page.screenshot(path=str(ARTIFACTS / "browser_project_edit.png"), full_page=True)
        assert not errors, f"JavaScript errors on the page: {errors[:3]}"
    finally:
        page.close()
