"""The app in a real browser (Playwright driving Debian's chromium): sliders, share links, Score, Interpolate.

Screenshots go to test-artifacts/.  The model is a tiny random GAN unless GAN_TEST_MODEL_DIR names a
model folder (that is how the README screenshots are made from the shipped model).
"""

from __future__ import annotations

import base64
import os
import re
import time
import urllib.parse
from pathlib import Path

import pytest

from app_server import CHROMIUM, ROOT, start_app

playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)

ARTIFACTS = ROOT / "test-artifacts"
EXAMPLE = ROOT / "assets" / "examples" / "real_sneaker_test9.png"


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    """The shared app (conftest.app_server), or one serving GAN_TEST_MODEL_DIR when that is set."""
    model = os.environ.get("GAN_TEST_MODEL_DIR")
    if not model:
        yield request.getfixturevalue("app_server")
        return
    tmp = tmp_path_factory.mktemp("app-browser")
    srv = start_app(model, log=tmp / "server.log", env={"GAN_APP_SCRATCH": str(tmp / "scratch")})
    yield srv
    srv.stop()


@pytest.fixture
def page(browser, server):
    ARTIFACTS.mkdir(exist_ok=True)
    pg = browser.new_page(viewport={"width": 1300, "height": 1000})
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.errors = errors
    yield pg
    pg.close()
    assert not errors, f"JavaScript errors on the page: {errors[:3]}"


def _open(page, server, query: str = "") -> None:
    page.goto(server.url + query)
    page.wait_for_selector("#gen-image img", timeout=60_000)


def _src(page, selector: str) -> str:
    return page.eval_on_selector(selector, "el => el.src")


def _image_bytes(page, src: str) -> bytes:
    """The bytes behind an <img> src: an inline data: URL (the live slider path) or a served file."""
    if src.startswith("data:"):
        return base64.b64decode(src.split(",", 1)[1])
    response = page.request.get(src)
    assert response.ok, (src, response.status)
    return response.body()


def _images_loaded(page, selector: str) -> None:
    """Wait until every <img> under selector has loaded and decoded (instead of sleeping before a screenshot)."""
    page.wait_for_function("(sel) => { const imgs = [...document.querySelectorAll(sel + ' img')]; "
                           "return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0); }",
                           arg=selector, timeout=30_000)


def test_dragging_a_slider_changes_the_image(page, server):
    _open(page, server)
    serving = page.inner_text("#serving")
    assert "Serving: local folder" in serving  # the header says which model is served, and from where
    before = _src(page, "#gen-image img")
    slider = page.locator("#dir-0 input[type=range]")
    slider.focus()
    for _ in range(8):  # keyboard steps fire the same 'input' events as a drag
        page.keyboard.press("ArrowRight")
    page.wait_for_function("(old) => document.querySelector('#gen-image img').src !== old", arg=before,
                           timeout=30_000)
    assert slider.input_value() == "0.8"
    _images_loaded(page, "#gen-image")
    page.screenshot(path=str(ARTIFACTS / "browser_generate_slider.png"))
    # the live image travels inline as a small PNG, not as a file the browser must fetch
    src = _src(page, "#gen-image img")
    assert src.startswith("data:image/png;base64,") and len(src) < 20_000
    # reset brings back the first image
    page.click("#reset")
    page.wait_for_function("(old) => document.querySelector('#gen-image img').src === old", arg=before,
                           timeout=30_000)


def _attribute_slider(server) -> tuple[str, str]:
    """(name, a class it acts on) of the first attribute slider the server lists on /directions."""
    from gradio_client import Client
    c = Client(server.url, verbose=False)
    sliders = c.predict(api_name="/directions")
    c.close()
    names = [s["name"] for s in sliders]
    attrs = [s for s in sliders if s["kind"] == "attribute"]
    assert attrs, f"no attribute slider on this model: {names}"
    return attrs[0]["name"], (attrs[0]["classes"] or ["Bag"])[0]


def test_dragging_an_attribute_slider_keeps_the_class(page, server):
    _open(page, server)
    name, garment = _attribute_slider(server)
    page.locator("#class input").fill(garment)  # a class the slider acts on; moving it must not change the class
    page.keyboard.press("Enter")
    page.wait_for_function("(c) => document.querySelector('#class input').value === c", arg=garment,
                           timeout=30_000)
    elem = page.locator(f"label:has-text('{name}:')").first.evaluate("el => el.closest('[id^=dir-]').id")
    before = _src(page, "#gen-image img")
    slider = page.locator(f"#{elem} input[type=range]")
    slider.focus()
    for _ in range(15):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("(old) => document.querySelector('#gen-image img').src !== old", arg=before,
                           timeout=30_000)
    page.wait_for_function("() => document.querySelector('#gen-image img').src.startsWith('data:')", timeout=30_000)
    value = slider.input_value()
    assert value == "1.5" and page.locator("#class input").input_value() == garment
    # the image settles on the one /generate makes for the same seed, the same class and the moved slider (on a
    # busy machine the first new image can be an intermediate value's, and the last key press's follows it)
    from gradio_client import Client
    c = Client(server.url, verbose=False)
    same = Path(c.predict(seed=42, class_name=garment, sliders={name: 1.5}, api_name="/generate")).read_bytes()
    c.close()
    deadline = time.monotonic() + 30
    while True:
        _images_loaded(page, "#gen-image")
        shown = _image_bytes(page, _src(page, "#gen-image img"))
        if shown == same or time.monotonic() > deadline:
            break
        page.wait_for_timeout(250)
    assert shown == same
    assert page.locator("#class input").input_value() == garment
    page.screenshot(path=str(ARTIFACTS / "browser_attribute_slider.png"))


def test_class_morph_moves_g_class_input_and_shows_the_reading(page, server):
    _open(page, server, "?seed=42&label=0")
    page.wait_for_function("() => document.querySelector('#class input').value === 'T-shirt/top'", timeout=30_000)
    page.click("text=Class morph (changes the class)")
    page.locator("#morph-to input").fill("Bag")
    page.keyboard.press("Enter")
    before = _src(page, "#gen-image img")
    slider = page.locator("#morph-amount input[type=range]")
    slider.focus()
    for _ in range(20):  # 0 -> 1: all the way to a Bag
        page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('#morph-reading').innerText.includes('100% Bag')",
                           timeout=30_000)
    assert "The classifier reads:" in page.inner_text("#morph-reading")
    assert _src(page, "#gen-image img") != before
    from gradio_client import Client
    c = Client(server.url, verbose=False)
    bag = Path(c.predict(seed=42, class_name="Bag", api_name="/generate")).read_bytes()
    c.close()
    _images_loaded(page, "#gen-image")
    assert _image_bytes(page, _src(page, "#gen-image img")) == bag  # the far end is the other class exactly
    page.click("#reset")
    page.wait_for_function("(old) => document.querySelector('#gen-image img').src === old", arg=before,
                           timeout=30_000)


def _classifier_reading(png: Path) -> str:
    """The metric classifier's class for a /generate PNG (28x28 shown x8, nearest neighbour: every 8th pixel)."""
    import numpy as np
    import torch
    from PIL import Image
    from gan.classifier import load_classifier
    from gan.data import FASHION_MNIST_CLASSES
    a = np.asarray(Image.open(png).convert("L"))[::8, ::8].astype(np.float32)
    x = torch.from_numpy(a).div(127.5).sub(1).reshape(1, 1, 28, 28)
    with torch.no_grad():
        return FASHION_MNIST_CLASSES[int(load_classifier()(x).argmax(1))]


def test_pullover_lists_its_attribute_sliders_and_one_keeps_the_class(browser, shipped_app_server):
    """On the shipped model: picking Pullover lists only the sliders that act on it (at least three attribute
    sliders, each with its measured effect); moving one changes the image and the classifier still reads a
    Pullover (checked through /generate with the same seed and slider, as the tab renders it)."""
    from gradio_client import Client
    page = browser.new_page(viewport={"width": 1300, "height": 1400})
    try:
        _open(page, shipped_app_server)
        page.locator("#class input").fill("Pullover")
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.querySelector('#class input').value === 'Pullover'", timeout=30_000)
        page.wait_for_function("() => [...document.querySelectorAll('[id^=dir-]')].some(e => "
                               "e.innerText.includes('for Pullover at +3'))", timeout=30_000)
        c = Client(shipped_app_server.url, verbose=False)
        listed = c.predict(api_name="/directions")
        acting = [s["name"] for s in listed if s["kind"] == "attribute" and "Pullover" in (s["classes"] or [])]
        shown = page.eval_on_selector_all("[id^=dir-]", "els => els.filter(e => e.offsetParent !== null)"
                                                          ".map(e => e.innerText)")
        attrs_shown = [t for t in shown if "for Pullover at +3" in t]
        assert len(attrs_shown) >= 3 and len(attrs_shown) == len(acting), shown
        hidden = [s["name"] for s in listed if s["classes"] and "Pullover" not in s["classes"]]
        assert not any(t.startswith(f"{h}:") for h in hidden for t in shown), (hidden, shown)  # no silent sliders
        name = acting[0]
        elem = page.locator(f"label:has-text('{name}:')").first.evaluate("el => el.closest('[id^=dir-]').id")
        before = _src(page, "#gen-image img")
        slider = page.locator(f"#{elem} input[type=range]")
        slider.focus()
        for _ in range(20):
            page.keyboard.press("ArrowRight")
        page.wait_for_function("(old) => document.querySelector('#gen-image img').src !== old", arg=before,
                               timeout=30_000)
        assert slider.input_value() == "2" and page.locator("#class input").input_value() == "Pullover"
        _images_loaded(page, "#gen-image")
        page.screenshot(path=str(ARTIFACTS / "browser_pullover_sliders.png"))
        seed = int(page.locator("#seed input").input_value())
        moved = Path(c.predict(seed=seed, class_name="Pullover", sliders={name: 2.0}, api_name="/generate"))
        still = Path(c.predict(seed=seed, class_name="Pullover", api_name="/generate"))
        c.close()
        assert _image_bytes(page, _src(page, "#gen-image img")) == moved.read_bytes() != still.read_bytes()
        assert _classifier_reading(moved) == _classifier_reading(still) == "Pullover"
    finally:
        page.close()


def _downloads(page) -> list[str]:
    """The hrefs of the Interpolate tab's download links (the GIF and the MP4)."""
    return page.eval_on_selector_all("#interp-files a", "els => els.map(e => e.href)")


def _interpolate(page) -> list[str]:
    """Press Interpolate and wait for the new path's downloads (the tab shows a default path until then)."""
    page.wait_for_selector("#interp-files a", timeout=60_000)
    before = _downloads(page)
    page.click("#interpolate-btn")
    page.wait_for_function("(old) => { const now = [...document.querySelectorAll('#interp-files a')].map(e => e.href);"
                           " return now.length > 0 && now.every(h => !old.includes(h)); }", arg=before,
                           timeout=120_000)
    page.wait_for_function("() => { const i = document.querySelector('#interp-gif img'); "
                           "return i && i.src.endsWith('.gif'); }", timeout=60_000)
    return _downloads(page)


def test_interpolating_through_three_stops_gives_a_gif_and_an_mp4(page, server):
    _open(page, server)
    page.click("button[role=tab]:has-text('Interpolate')")
    page.click("#mode-C label:has-text('seed')")
    page.click("#interp-loop input")
    links = _interpolate(page)
    mp4 = _image_bytes(page, next(h for h in links if h.endswith(".mp4")))
    assert mp4[4:8] == b"ftyp"  # an MP4 container
    gif = _image_bytes(page, next(h for h in links if h.endswith(".gif")))
    assert gif[:6] == b"GIF89a"
    assert gif == _image_bytes(page, _src(page, "#interp-gif img"))  # the animation shown is the GIF offered
    page.screenshot(path=str(ARTIFACTS / "browser_interpolate_three_stops.png"), full_page=True)


def test_share_link_restores_the_view(page, server):
    from gradio_client import Client
    c = Client(server.url, verbose=False)
    from gan.latent import load_directions
    first = load_directions(server.model_dir).names[0]  # the served model's first slider: #dir-0
    _open(page, server, "?" + urllib.parse.urlencode({"seed": 77, "label": 8, "truncation": 0.5, first: 2}))
    page.wait_for_function("() => document.querySelector('#seed input').value === '77'", timeout=30_000)
    assert page.locator("#dir-0 input[type=range]").input_value() == "2"
    assert page.locator("#truncation input[type=range]").input_value() == "0.5"
    # ... and shows exactly the image /generate returns for that state
    _images_loaded(page, "#gen-image")
    restored = _image_bytes(page, _src(page, "#gen-image img"))
    api = Path(c.predict(seed=77, class_name="Bag", truncation=0.5, sliders={first: 2}, api_name="/generate"))
    other = Path(c.predict(seed=77, class_name="Bag", truncation=0.5, api_name="/generate"))
    c.close()
    assert restored == api.read_bytes() and restored != other.read_bytes()


def _score_result_names(page, *names: str) -> str:
    """Wait until the Score tab's result names every file in names (it shows scored examples until then)."""
    page.wait_for_function("(names) => { const r = document.querySelector('#score-result');"
                           " return r && names.every(n => r.innerText.includes(n)); }", arg=list(names),
                           timeout=60_000)
    return page.inner_text("#score-result")


def test_uploading_an_image_shows_a_score(page, server):
    _open(page, server)
    page.click("button[role=tab]:has-text('Score')")
    assert EXAMPLE.name not in page.inner_text("#score-result")
    page.set_input_files("#score-files input[type=file]", str(EXAMPLE))  # scored as it arrives: no button press
    text = _score_result_names(page, EXAMPLE.name)
    m = re.search(r"P\(real\) = ([0-9.]+)", text)
    assert m and 0.0 <= float(m.group(1)) <= 1.0, text
    assert EXAMPLE.name in text
    _images_loaded(page, "#score-seen")
    page.screenshot(path=str(ARTIFACTS / "browser_score.png"), full_page=True)


def test_score_tab_tells_a_generated_png_from_a_real_image(browser, critic_app_server, tmp_path):
    from gradio_client import Client
    c = Client(critic_app_server.url, verbose=False)
    generated = tmp_path / "generated_seed3.png"
    generated.write_bytes(Path(c.predict(seed=3, api_name="/generate")).read_bytes())
    c.close()
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1300, "height": 1100})
    try:
        _open(page, critic_app_server)
        page.click("button[role=tab]:has-text('Score')")
        assert "critic" in page.inner_text("#score-intro").lower()
        page.set_input_files("#score-files input[type=file]", [str(EXAMPLE), str(generated)])
        text = _score_result_names(page, EXAMPLE.name, generated.name)
        verdicts = dict(re.findall(r"([\w.]+\.png): (real|generated) \(", text))
        assert verdicts == {EXAMPLE.name: "real", generated.name: "generated"}, text
        assert "2 images: 1 looks real, 1 looks generated" in text and "game's discriminator" in text
        _images_loaded(page, "#score-seen")
        page.screenshot(path=str(ARTIFACTS / "browser_score_critic.png"), full_page=True)
    finally:
        page.close()


def test_score_tab_calls_another_gans_sample_generated(browser, shipped_app_server):
    """The shipped model's Score tab, on a sample of a GAN it never made (a DCGAN of the zoo's test split)."""
    other = sorted((ROOT / "assets" / "examples").glob("other_gan_dcgan*.png"))
    if not other or not (ROOT / "checkpoints" / "detector.json").is_file():
        pytest.skip("needs the zoo's example images and the shipped detector")
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1300, "height": 1100})
    try:
        _open(page, shipped_app_server)
        page.click("button[role=tab]:has-text('Score')")
        page.set_input_files("#score-files input[type=file]", [str(other[0]), str(EXAMPLE)])
        page.click("#score-btn")
        page.wait_for_function("(n) => (document.querySelector('#score-result')?.innerText || '').includes(n)",
                               arg=other[0].name, timeout=60_000)
        text = page.inner_text("#score-result")
        verdicts = dict(re.findall(r"([\w.]+\.png): (real|generated|unlike the data) \(", text))
        assert verdicts == {other[0].name: "generated", EXAMPLE.name: "real"}, text
        assert "Decided by" in text, text
        page.screenshot(path=str(ARTIFACTS / "browser_score_other_gan.png"), full_page=True)
    finally:
        page.close()


def test_bad_upload_shows_a_short_error(page, server, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("not an image at all")
    _open(page, server)
    page.click("button[role=tab]:has-text('Score')")
    page.set_input_files("#score-files input[type=file]", str(fake))  # the upload itself is checked
    toast = page.wait_for_selector("[data-testid='toast-body']", timeout=30_000)
    assert "notes.png: not an image" in toast.inner_text()
    page.screenshot(path=str(ARTIFACTS / "browser_score_error.png"))


def test_interpolation_gives_a_gif(page, server):
    _open(page, server)
    page.click("button[role=tab]:has-text('Interpolate')")
    page.fill("#seed-B input", "7")
    links = _interpolate(page)
    gif = page.request.get(_src(page, "#interp-gif img"))
    assert gif.ok and gif.body()[:6] == b"GIF89a"
    assert any(h.endswith(".gif") for h in links)
    _images_loaded(page, "#interp-gif")
    page.screenshot(path=str(ARTIFACTS / "browser_interpolate.png"), full_page=True)


def test_generate_to_interpolation_endpoint(page, server):
    _open(page, server, "?seed=5&label=1")
    page.wait_for_function("() => document.querySelector('#seed input').value === '5'", timeout=30_000)
    page.click("text=Use as endpoint A")
    page.wait_for_selector("#mode-A input[value=pinned]:checked", timeout=30_000)
    _images_loaded(page, "#pin-A")  # the pinned latent's preview, hidden until something is pinned
    _interpolate(page)


def test_projecting_an_upload_finds_a_latent_and_class(page, server):
    """The Project tab end to end: upload a real bag, run the projector, see the reconstruction and its class (the
    tab opens with a dress projected at start-up, so the result names the upload)."""
    _open(page, server)
    page.click("button[role=tab]:has-text('Project')")
    page.set_input_files("#proj-file input[type=file]", str(ROOT / "assets" / "examples" / "real_bag_test18.png"))
    page.click("#proj-btn")
    page.wait_for_function("() => (document.querySelector('#proj-result')?.innerText || '')"
                           ".includes('Best match for real_bag_test18.png')", timeout=120_000)
    text = page.inner_text("#proj-result")
    m = re.search(r"pixel RMS error ([0-9.]+)% of full scale", text)
    assert m and 0.0 < float(m.group(1)) < 100.0, text
    _images_loaded(page, "#proj-recon")
    # outputs fade in when an event ends: wait for the page's CSS animations and transitions to finish
    page.wait_for_function("() => document.getAnimations().every(a => a.playState !== 'running')", timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "browser_project.png"))
