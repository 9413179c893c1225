"""The app's named API endpoints through gradio_client, on `python app.py` launched in a subprocess.

The model is a tiny random conditional GAN with two latent directions and no calibration, so the
app also has to cope with the optional parts it lacks (calibration, eval.json, model card).
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
from PIL import Image

from app_server import ROOT, make_tiny_model

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

REAL_PNG = ROOT / "assets" / "examples" / "real_bag_test18.png"


def _png(path: str) -> Image.Image:
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return Image.open(io.BytesIO(data))


def test_api_lists_the_named_endpoints(client):
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/generate", "/interpolate", "/interpolate_path", "/score", "/project", "/directions"} <= set(api)
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


def test_interpolate_through_three_stops_exports_gif_and_mp4(client):
    av = pytest.importorskip("av")
    gif, mp4, strip, plot, numbers = client.predict(seeds=[1, 2, 3], classes=["Bag", "Sneaker", "Coat"], frames=10,
                                                    loop=True, api_name="/interpolate_path")
    assert numbers["stops"] == ["A", "B", "C", "A"] and numbers["t"][0] == 0 and numbers["t"][-1] == 3
    n = len(numbers["t"])  # 10 frames rounded to 3 legs x 3 + 1
    assert n == 10 and numbers["t"][3] == 1 and numbers["t"][6] == 2
    with Image.open(gif) as im:
        assert im.n_frames == n - 1  # a loop: the last frame (A again) is not repeated
    with av.open(mp4) as f:
        stream = f.streams.video[0]
        assert stream.codec_context.name == "h264" and sum(1 for _ in f.decode(stream)) == n - 1
    _png(strip), _png(plot)
    # /interpolate keeps its four outputs and old parameters; more stops are optional extras
    gif2, _, _, numbers2 = client.predict(seed_a=1, seed_b=2, class_a="Bag", class_b="Sneaker", frames=9,
                                          more_seeds=[3], more_classes=["Coat"], api_name="/interpolate")
    assert numbers2["stops"] == ["A", "B", "C"] and numbers2["t"][-1] == 2 and Path(gif2).read_bytes()[:6] == b"GIF89a"
    with pytest.raises(AppError, match="2 seeds but 1 classes|2 seeds"):
        client.predict(seeds=[1, 2], classes=["Bag", "Coat", "Dress"], api_name="/interpolate_path")


def test_directions_lists_what_the_generate_tab_shows(client):
    sliders = client.predict(api_name="/directions")
    shown = [c["props"]["label"] for c in client.config["components"]  # the page's layout, as the browser gets it
             if str(c.get("props", {}).get("elem_id", "")).startswith("dir-")]
    assert [s["label"] for s in sliders] and sorted(s["label"] for s in sliders) == sorted(shown)
    for s in sliders:
        assert s["range"] == [-5.0, 5.0] and s["measured_at"] == 3.0 and s["kind"] in ("pca", "attribute")
        assert set(s) >= {"name", "kind", "label", "classes", "effects_sd", "class_kept"}
    png = client.predict(seed=3, sliders={sliders[0]["name"]: 2.0}, api_name="/generate")  # the names /generate takes
    _png(png)


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


def test_score_without_a_critic_falls_back_to_the_game_discriminator(client):
    result, _ = client.predict(image=handle_file(str(REAL_PNG)), api_name="/score")
    assert result["scorer"] == "discriminator" and result["critic_p_real"] is None and result["critic_logit"] is None
    assert result["d_p_real"] == pytest.approx(result["p_real"]) and result["d_logit"] == pytest.approx(result["logit"])
    assert result["verdict"] == ("real" if result["p_real"] >= 0.5 else "generated")


def test_score_returns_the_critic_and_the_game_discriminator(critic_app_server):
    c = Client(critic_app_server.url, verbose=False)
    fake_png = c.predict(seed=3, api_name="/generate")
    real, _ = c.predict(image=handle_file(str(REAL_PNG)), api_name="/score")
    fake, _ = c.predict(image=handle_file(fake_png), api_name="/score")
    for r in (real, fake):
        assert r["scorer"] == "critic" and r["calibrated"] is True and r["verdict"] in ("real", "generated")
        assert r["p_real"] == pytest.approx(r["critic_p_real"]) and r["logit"] == pytest.approx(r["critic_logit"])
        assert 0.0 <= r["d_p_real"] <= 1.0 and math.isfinite(r["d_logit"]) and r["d_p_real"] != r["p_real"]
        for old in ("p_real_raw", "p_real_calibrated", "percentile_real", "percentile_fake", "label_used",
                    "pred_name", "ood", "ood_reason", "preprocessing", "image"):
            assert old in r, old
    assert real["verdict"] == "real" and fake["verdict"] == "generated", (real["p_real"], fake["p_real"])
    _, _, _, numbers = c.predict(seed_a=1, seed_b=2, frames=3, api_name="/interpolate")
    assert numbers["scorer"] == "critic" and numbers["p_real"] == numbers["critic_p_real"]
    assert len(numbers["critic_logit"]) == len(numbers["d_p_real"]) == 3
    c.close()


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
    recon, info = client.predict(image=handle_file(str(REAL_PNG)), steps=6, api_name="/project")
    assert _png(recon).size == (224, 224)
    assert 0 <= info["label"] < 10 and info["class_name"] != "-"
    assert len(info["z"]) == 64 and math.isfinite(info["loss"])
    assert info["method"] == "auto" and info["stage"] == "tune" and info["tuned"]  # no encoder: z optimised, G tuned
    assert 0.0 <= info["rms"] < 1.0 and info["stages"]["optimise"]["steps"] == 6
    fixed, info2 = client.predict(image=handle_file(str(REAL_PNG)), class_name="Bag", steps=4, api_name="/project")
    assert info2["class_name"] == "Bag"
    _, only_z = client.predict(image=handle_file(str(REAL_PNG)), steps=4, method="optimise", api_name="/project")
    assert only_z["stage"] == "optimise" and not only_z["tuned"]
    with pytest.raises(AppError, match="needs an encoder"):
        client.predict(image=handle_file(str(REAL_PNG)), method="encoder", api_name="/project")


def test_project_rejects_bad_steps(client):
    with pytest.raises(AppError, match="steps"):
        client.predict(image=handle_file(str(REAL_PNG)), steps=0, api_name="/project")


def test_noop_round_trip(client):
    assert client.predict(2.5, api_name="/noop") == 2.5


GENERATE_CASES = [dict(seed=s, class_name=c, truncation=t, sliders=sl) for s, c, t, sl in [
    (1, "random", 1.0, {}), (2, "Bag", 0.7, {}), (3, "Sneaker", 1.0, {"PC1": 2.0}), (4, "3", 1.3, {"brightness": -1.5}),
    (5, "Dress", 0.5, {"PC1": -3.0, "brightness": 1.0}), (1, "random", 1.0, {}), (6, "Coat", 1.0, {}),
    (7, "0", 0.9, {}),
]] * 3


def test_concurrent_generate_requests_are_batched_and_match_single_calls(server, client):
    """24 clients at once: Gradio batches them into shared forward passes; each gets the image of a single call."""
    from concurrent.futures import ThreadPoolExecutor
    single = [Path(client.predict(api_name="/generate", **kw)).read_bytes() for kw in GENERATE_CASES[:8]]

    def call(kw: dict) -> bytes:
        c = Client(server.url, verbose=False)
        try:
            return Path(c.predict(api_name="/generate", **kw)).read_bytes()
        finally:
            c.close()
    with ThreadPoolExecutor(len(GENERATE_CASES)) as pool:
        together = list(pool.map(call, GENERATE_CASES))
    assert together == single * 3
    assert single[0] == single[5] and len(set(single)) == 7
    dep = next(d for d in client.config["dependencies"] if d.get("api_name") == "generate")
    assert dep["batch"] is True and dep["max_batch_size"] > 1


def test_generate_file_is_served_in_place_without_a_cache_copy(server, client):
    """/generate's PNG is served from the app's served folder (a Gradio static path), not copied into the cache;
    the URL it names gives the very bytes a gradio_client call downloads."""
    import httpx
    r = httpx.post(f"{server.url}gradio_api/call/generate", json={"data": [5, "Bag", 1.0, {}]}, timeout=60)
    event_id = r.json()["event_id"]
    lines = httpx.get(f"{server.url}gradio_api/call/generate/{event_id}", timeout=60).text.splitlines()
    (out,) = json.loads(next(ln[5:] for ln in lines if ln.startswith("data:")))
    path = Path(out["path"])
    assert path.is_relative_to((server.scratch / "served").resolve()) and path.is_file()
    assert out["url"].startswith(server.url) and out["url"].endswith(path.name)
    served = httpx.get(out["url"], timeout=60)
    assert served.status_code == 200 and served.content == path.read_bytes()
    assert served.content == Path(client.predict(seed=5, class_name="Bag", api_name="/generate")).read_bytes()
    private = server.scratch.resolve() / "private" / "x.png"  # beside the served folder, not in it
    private.parent.mkdir(exist_ok=True)
    private.write_bytes(served.content)
    assert httpx.get(f"{server.url}gradio_api/file={private}", timeout=60).status_code == 403


def test_generate_batch_function_returns_the_single_call_images(tmp_path):
    """The function Gradio calls with a batch gives, per request, the bytes of the single-request path."""
    from gan.app.context import load_context
    from gan.app.endpoints import Api
    folder = make_tiny_model(tmp_path / "model")
    api = Api(load_context(local_dir=str(folder)))
    cases = GENERATE_CASES[:8]
    (files,) = api.generate_batch(*[[kw[k] for kw in cases] for k in ("seed", "class_name", "truncation", "sliders")])
    assert len(files) == len(cases)
    for f, kw in zip(files, cases):
        assert Path(f.path).read_bytes() == Path(api.generate(**kw).path).read_bytes()
    with pytest.raises(Exception, match="Hat"):  # one bad request in a batch: the error names it
        api.generate_batch([1, 2], ["Bag", "Hat"], [1.0, 1.0], [{}, {}])


def test_heavy_endpoints_share_one_concurrency_limit(tmp_path):
    """Every endpoint that can take seconds queues in one group; /generate, /score and the others stay apart."""
    import gradio as gr
    from gan.app.context import load_context
    from gan.app.endpoints import register_api
    folder = make_tiny_model(tmp_path / "model")
    with gr.Blocks() as demo:
        register_api(load_context(local_dir=str(folder)), heavy=dict(concurrency_limit=1, concurrency_id="heavy"))
    deps = {f.api_name: f for f in demo.fns.values()}
    heavy = {n for n, f in deps.items() if f.concurrency_id == "heavy"}
    assert heavy == {"interpolate", "interpolate_path", "project"} and deps["project"].concurrency_limit == 1
    assert deps["generate"].batch and deps["generate"].max_batch_size > 1
    assert len({deps[n].concurrency_id for n in ("generate", "score", "interpolate")}) == 3


@pytest.mark.slow
def test_short_load_test_has_no_errors(server):
    import sys
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from serve_load import run_load
    res = run_load(server.url, clients=10, seconds=15, score_fraction=0.3)
    assert res["errors"] == 0, res["error_kinds"]
    assert res["generate"]["n"] > 0 and res["score"]["n"] > 0
    # the app still answers normally afterwards
    c = Client(server.url, verbose=False)
    assert _png(c.predict(seed=1, api_name="/generate")).size == (224, 224)
    c.close()


# ---- in-process checks of gan.app (no server) ---------------------------------------------------
def test_unconditional_model_without_optional_parts(tmp_path):
    import torch
    from gan import GAN
    from gan.app.context import load_context
    from gan.app.generate import generate_view, make_view
    from gan.app.inputs import class_choices
    from gan.app.interpolate import endpoint_from_seed, interpolate_path
    from gan.app.model_tab import model_summary_markdown
    from gan.app.project import project_input
    from gan.app.score import score_inputs
    torch.manual_seed(0)
    GAN(generator={"width": 8}, discriminator={"width": 8}).save_pretrained(tmp_path)
    (tmp_path / "calibration.json").write_text('{"version": 999}')  # stale: must be skipped with a note
    ctx = load_context(local_dir=str(tmp_path))
    assert ctx.directions is None and ctx.calibration is None and ctx.eval_metrics is None
    assert "999" in ctx.notes["calibration"] and "python -m gan.scoring" in ctx.notes["calibration"]
    assert class_choices(ctx) == []
    view = make_view(ctx, 3, "random", 0.8)
    assert view.label is None
    assert generate_view(ctx, view).image.size == (224, 224)
    path = interpolate_path(ctx, endpoint_from_seed(ctx, 1), endpoint_from_seed(ctx, 2), 4, "lerp")
    assert path.frames.shape == (4, 1, 28, 28) and len(path.p_real) == 4
    assert path.class_probs is None or path.class_probs.shape == (4, 10)
    rep = score_inputs(ctx, [str(REAL_PNG)], neighbours=False, saliency=False)
    assert rep.results[0]["calibrated"] is False and rep.results[0]["label_used"] is None
    proj = project_input(ctx, str(REAL_PNG), steps=3)
    assert proj.endpoint.label is None
    md = model_summary_markdown(ctx)
    assert "unconditional" in md and "score calibration" in md


def test_share_string_and_npy_restore_the_same_image(tmp_path):
    from gan.app.context import load_context
    from gan.app.generate import export_view, generate_view, make_view, view_from_npy, view_from_share
    from gan.app.inputs import AppInputError
    make_tiny_model(tmp_path / "m")
    ctx = load_context(local_dir=str(tmp_path / "m"))
    view = make_view(ctx, 11, "Coat", 0.7, {"PC1": -1.5})
    ex = export_view(ctx, view)
    assert "seed=11" in ex.query and "label=4" in ex.query and "PC1=-1.5" in ex.query
    restored, notes = view_from_share(ctx, "https://example.org/?" + ex.query)
    assert notes == []
    same = lambda a, b: a.tobytes() == b.tobytes()  # noqa: E731
    original = generate_view(ctx, view).image
    assert same(generate_view(ctx, restored).image, original)
    assert same(generate_view(ctx, view_from_npy(ctx, ex.npy)).image, original)
    assert same(Image.open(ex.png).convert("L"), original)
    with pytest.raises(AppInputError, match="seed"):
        view_from_share(ctx, "label=3")


def test_model_card_and_metrics_table(tmp_path):
    from gan.app.context import load_context
    from gan.app.model_tab import class_metrics_markdown, metrics_markdown, metrics_rows, model_card_markdown
    make_tiny_model(tmp_path)
    (tmp_path / "README.md").write_text("---\nlicense: mit\ntags: [gan]\n---\n# Card\n![samples](samples.png)\n"
                                        "![remote](https://example.org/x.png)\ntext\n")
    (tmp_path / "eval.json").write_text('{"fid": 12.3456, "per_class": {"Bag": {"fid": 20.5}}, "n": 5000}')
    ctx = load_context(local_dir=str(tmp_path))
    card = model_card_markdown(ctx)
    assert card.startswith("# Card") and "license: mit" not in card
    assert "](samples.png)" not in card and "https://example.org/x.png" in card
    assert metrics_rows(ctx) == [["fid", "12.35"], ["per_class.Bag.fid", "20.5"], ["n", "5000"]]
    assert "| this model | 12.35 |" in metrics_markdown(ctx)  # rendered by gan.evalreport, as in the model card
    # the evaluator's format: the model's row next to the reference rows, and a per-class table
    ev = {"metrics": {"fid": 9.5, "precision": 0.7}, "references": {"train": {"fid": 0.1, "precision": 0.9}},
          "class_fid": {"Bag": 11.0, "Coat": 8.25}, "coverage": {"Bag": 0.5, "Coat": 0.5},
          "memorization": {"verdict": "no closer than real test images"}}
    (tmp_path / "eval.json").write_text(json.dumps(ev))
    ctx = load_context(local_dir=str(tmp_path))
    md = metrics_markdown(ctx)
    assert "9.50" in md and "real train images" in md and "no closer than real test images" in md
    assert "| Coat | 8.25 | 0.5 |" in class_metrics_markdown(ctx)
