"""The app's named API endpoints through gradio_client, on `python app.py` launched in a subprocess.

The model is a tiny random conditional GAN with two latent directions and no calibration, so the
app also has to cope with the optional parts it lacks (calibration, eval.json, model card).
"""

from __future__ import annotations

import io
import math
import time
from pathlib import Path

import pytest
from PIL import Image

from app_server import ROOT, make_tiny_model, start_app

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

REAL_PNG = ROOT / "assets" / "examples" / "real_bag_test18.png"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app")
    model = make_tiny_model(tmp / "model")
    srv = start_app(model, log=tmp / "server.log", env={"GAN_APP_SCRATCH": str(tmp / "scratch")})
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server):
    c = Client(server.url, verbose=False)
    yield c
    c.close()


def _png(path: str) -> Image.Image:
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return Image.open(io.BytesIO(data))


def test_api_lists_the_named_endpoints(client):
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/generate", "/interpolate", "/score", "/project"} <= set(api)
    assert "/noop" not in api  # undocumented: callable, but not advertised
    seed = api["/generate"]["parameters"][0]
    assert seed["parameter_name"] == "seed" and not seed["parameter_has_default"]
    assert all(p["parameter_has_default"] for p in api["/generate"]["parameters"][1:])


def test_generate_same_seed_same_bytes(client):
    a = client.predict(seed=3, api_name="/generate")
    b = client.predict(seed=3, api_name="/generate")
    c = client.predict(seed=4, api_name="/generate")
    assert _png(a).size == (224, 224)
    assert Path(a).read_bytes() == Path(b).read_bytes()
    assert Path(a).read_bytes() != Path(c).read_bytes()


def test_generate_class_truncation_and_sliders_change_the_image(client):
    base = Path(client.predict(seed=5, class_name="Bag", api_name="/generate")).read_bytes()
    moved = Path(client.predict(seed=5, class_name="Bag", sliders={"PC1": 3.0}, api_name="/generate")).read_bytes()
    other = Path(client.predict(seed=5, class_name="Sneaker", api_name="/generate")).read_bytes()
    trunc = Path(client.predict(seed=5, class_name="Bag", truncation=0.3, api_name="/generate")).read_bytes()
    assert len({base, moved, other, trunc}) == 4


@pytest.mark.parametrize("kwargs, words", [
    ({"seed": -1}, ["seed", "-1"]),
    ({"seed": 1, "class_name": "Hat"}, ["Hat"]),
    ({"seed": 1, "truncation": 7}, ["truncation"]),
    ({"seed": 1, "sliders": {"nope": 1.0}}, ["nope"]),
    ({"seed": 1, "sliders": {"PC1": 99}}, ["PC1"]),
])
def test_generate_bad_input_is_a_short_named_error(client, kwargs, words):
    with pytest.raises(AppError) as e:
        client.predict(api_name="/generate", **kwargs)
    msg = str(e.value)
    assert all(w in msg for w in words), msg
    assert len(msg) < 300 and "Traceback" not in msg


def test_interpolate_returns_a_gif_and_per_frame_scores(client):
    gif, strip, plot, numbers = client.predict(seed_a=1, seed_b=2, class_a="Bag", class_b="Sneaker", frames=5,
                                               method="lerp", api_name="/interpolate")
    data = Path(gif).read_bytes()
    assert data[:6] == b"GIF89a"
    im = Image.open(io.BytesIO(data))
    assert im.n_frames >= 5 and im.is_animated
    assert _png(strip).width > _png(strip).height  # a strip of frames
    _png(plot)
    assert len(numbers["p_real"]) == 5 and all(0.0 <= p <= 1.0 for p in numbers["p_real"])
    assert numbers["t"][0] == 0.0 and numbers["t"][-1] == 1.0
    assert numbers["p_real_calibrated"] is False  # the tiny model has no calibration.json


def test_interpolate_rejects_bad_frames_and_method(client):
    with pytest.raises(AppError, match="frames"):
        client.predict(seed_a=1, seed_b=2, frames=1000, api_name="/interpolate")
    with pytest.raises(AppError, match="cubic"):
        client.predict(seed_a=1, seed_b=2, method="cubic", api_name="/interpolate")


def test_score_real_png_returns_a_probability(client):
    result, seen = client.predict(image=handle_file(str(REAL_PNG)), api_name="/score")
    assert 0.0 <= result["p_real"] <= 1.0 and math.isfinite(result["logit"])
    assert result["calibrated"] is False and result["p_real"] == pytest.approx(result["p_real_raw"])
    assert result["image"] == REAL_PNG.name
    assert _png(seen).size == (224, 224)  # the 28x28 input as D sees it, upscaled


def test_score_text_file_named_png_is_a_clean_error(client, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("this is not an image")
    with pytest.raises(AppError) as e:
        client.predict(image=handle_file(str(fake)), api_name="/score")
    msg = str(e.value)
    assert "notes.png" in msg and "not an image" in msg, msg
    # the app keeps serving
    result, _ = client.predict(image=handle_file(str(REAL_PNG)), api_name="/score")
    assert 0.0 <= result["p_real"] <= 1.0


def test_project_returns_a_reconstruction(client):
    t = time.perf_counter()
    recon, info = client.predict(image=handle_file(str(REAL_PNG)), steps=6, api_name="/project")
    assert _png(recon).size == (224, 224)
    assert 0 <= info["label"] < 10 and info["class_name"] != "-"
    assert len(info["z"]) == 64 and math.isfinite(info["loss"])
    assert time.perf_counter() - t < 60
    fixed, info2 = client.predict(image=handle_file(str(REAL_PNG)), class_name="Bag", steps=4, api_name="/project")
    assert info2["class_name"] == "Bag"


def test_project_rejects_bad_steps(client):
    with pytest.raises(AppError, match="steps"):
        client.predict(image=handle_file(str(REAL_PNG)), steps=0, api_name="/project")


def test_noop_round_trip(client):
    assert client.predict(2.5, api_name="/noop") == 2.5
