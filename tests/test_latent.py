"""Latent-space tools: interpolation (two or more stops), rendering with explicit embeddings, GIF and MP4,
sharing, latent files and GAN inversion, on tiny models. Sliders (directions) are in test_directions.py."""

from __future__ import annotations

import io
import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from gan import GAN
from gan.latent import (blend_embedding, class_embedding, image_to_target, interpolate, interpolate_conditioning,
                        interpolate_stops, latent_for_seed, lerp, load_latent_npy, make_gif, make_mp4, parse_state,
                        path_frames, project, render, save_latent_npy, share_state, slerp, to_pil, to_png_bytes)

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def tiny_model(num_classes: int = 10, seed: int = 0) -> GAN:
    """A width-8 GAN whose generator has unit-variance weights, so its images vary with z (DCGAN's
    N(0, 0.02) initialisation gives near-constant grey images, which no latent tool can be tested on)."""
    model = GAN(generator={"width": 8, "z_dim": 16, "num_classes": num_classes},
                discriminator={"width": 8, "num_classes": num_classes},
                class_names=CLASSES if num_classes else None)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.generator.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2 / m.weight[0].numel()))
            elif isinstance(m, nn.ConvTranspose2d):  # stride 2, kernel 4: each output sees in_ch * 4 weights
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2 / (m.weight.shape[0] * 4)))
            elif isinstance(m, nn.Embedding):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g))
    return model.eval()


@pytest.fixture(scope="module")
def cond() -> GAN:
    return tiny_model(10)


@pytest.fixture(scope="module")
def uncond() -> GAN:
    return tiny_model(0)


# ---- interpolation ----------------------------------------------------------------------------
def test_slerp_keeps_norms_and_handles_edge_cases() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(64, generator=g)
    b = torch.randn(64, generator=g)
    b = b / b.norm() * a.norm()
    t = torch.linspace(0, 1, 11).unsqueeze(1)
    path = slerp(a.expand(11, -1), b.expand(11, -1), t)
    torch.testing.assert_close(path.norm(dim=1), a.norm().expand(11), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(path[5], lerp(a, b, 0.5))  # it is not a straight line
    # antipodal and (nearly) identical endpoints stay finite and keep the norm
    for other in (-a, a.clone(), a * (1 + 1e-7)):
        p = slerp(a.expand(5, -1), other.expand(5, -1), torch.linspace(0, 1, 5).unsqueeze(1))
        assert torch.isfinite(p).all()
        torch.testing.assert_close(p.norm(dim=1), a.norm().expand(5), rtol=1e-4, atol=1e-4)
    mid = slerp(a, -a, 0.5)
    assert abs(float(mid @ a)) < 1e-3 * float(a.norm()) ** 2  # halfway round a half circle is perpendicular
    # unequal norms: the norm is interpolated linearly
    torch.testing.assert_close(slerp(a, 3 * b, 0.5).norm(), 2 * a.norm())


@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_interpolate_hits_both_endpoints_exactly(method: str) -> None:
    z0, z1 = latent_for_seed(1, 16), latent_for_seed(2, 16)
    zs = interpolate(z0, z1, 7, method=method)
    assert zs.shape == (7, 16)
    assert torch.equal(zs[0], z0) and torch.equal(zs[-1], z1)
    assert not torch.equal(zs[3], z0)
    with pytest.raises(ValueError, match="n_frames"):
        interpolate(z0, z1, 1, method=method)
    with pytest.raises(ValueError, match="method"):
        interpolate(z0, z1, 3, method="cubic")  # type: ignore[arg-type]


def test_paths_through_several_stops_hit_every_stop() -> None:
    a, b, c = (latent_for_seed(s, 16) for s in (1, 2, 3))
    zs = interpolate_stops([a, b, c], 9, method="slerp")  # 2 legs x 4 frames + 1
    assert zs.shape == (9, 16)
    assert torch.equal(zs[0], a) and torch.equal(zs[4], b) and torch.equal(zs[8], c)
    loop = interpolate_stops([a, b, c], 10, method="lerp", loop=True)  # 3 legs x 3 + 1: back to a
    assert loop.shape == (10, 16) and torch.equal(loop[3], b) and torch.equal(loop[6], c) and torch.equal(loop[-1], a)
    torch.testing.assert_close(loop[1], lerp(a, b, 1 / 3))
    torch.testing.assert_close(interpolate_stops([a, b], 7), interpolate(a, b, 7))  # two stops: as before
    leg, t = path_frames(4, 20)  # 3 legs: 19 frames round to 3 x 6 + 1
    assert len(leg) == 19 and leg.tolist().count(2) == 7 and float(t[-1]) == 1.0
    with pytest.raises(ValueError, match="at least 2 stops"):
        interpolate_stops([a], 5)
    with pytest.raises(ValueError, match="differ in size"):
        interpolate_stops([a, torch.zeros(8)], 5)


# ---- seeds and rendering ----------------------------------------------------------------------
def test_same_seed_gives_the_same_image_as_generate(cond: GAN, uncond: GAN) -> None:
    z = latent_for_seed(123, cond.z_dim)
    assert torch.equal(z, latent_for_seed(123, cond.z_dim))
    assert not torch.equal(z, latent_for_seed(124, cond.z_dim))
    img = render(cond, z, class_embedding(cond, 8))
    torch.testing.assert_close(img, cond.generate(1, seed=123, labels=8), rtol=0, atol=1e-6)
    torch.testing.assert_close(render(uncond, latent_for_seed(5, 16, 0.7)), uncond.generate(1, seed=5, truncation=0.7),
                               rtol=0, atol=1e-6)
    # a batch with per-sample embeddings is exactly G(z, y)
    zb, yb = torch.randn(6, 16), torch.arange(6)
    with torch.no_grad():
        expected = cond.generator(zb, yb)
    torch.testing.assert_close(render(cond.generator, zb, cond.generator.embed(yb)), expected, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="class-conditional"):
        render(cond, z)
    with pytest.raises(ValueError, match="unconditional"):
        render(uncond, z, torch.zeros(16))
    with pytest.raises(ValueError, match="label=10"):
        class_embedding(cond, 10)


def test_class_morph_blends_embeddings_between_the_two_classes(cond: GAN) -> None:
    z = latent_for_seed(7, cond.z_dim)
    frames = interpolate_conditioning(cond, z, 8, 7, 5)  # bag -> sneaker
    assert frames.shape == (5, 1, 28, 28)
    torch.testing.assert_close(frames[0], cond.generate(1, seed=7, labels=8)[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(frames[-1], cond.generate(1, seed=7, labels=7)[0], rtol=0, atol=1e-6)
    mid = render(cond, z, blend_embedding(cond, 8, 7, 0.5))[0]
    torch.testing.assert_close(frames[2], mid, rtol=0, atol=1e-6)
    assert (frames[2] - frames[0]).abs().mean() > 1e-3 and (frames[2] - frames[-1]).abs().mean() > 1e-3


def test_pictures_are_crisp_pngs_and_gifs(cond: GAN, tmp_path: Path) -> None:
    img = cond.generate(1, seed=0, labels=1)[0]  # (1, 28, 28)
    im = to_pil(img, scale=4)
    assert im.size == (112, 112) and im.mode == "L"
    arr = np.asarray(im)
    assert (arr.reshape(28, 4, 28, 4) == arr[::4, ::4][:, None, :, None]).all(), "upscaling is not nearest-neighbour"
    png = to_png_bytes(img, scale=2)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and Image.open(io.BytesIO(png)).size == (56, 56)
    frames = [to_pil(f, 3) for f in interpolate_conditioning(cond, latent_for_seed(0, 16), 0, 1, 4)]
    gif = make_gif(frames, tmp_path / "morph.gif", duration_ms=50)
    with Image.open(gif) as g:
        assert g.n_frames == 4 and g.size == (84, 84)
    with pytest.raises(ValueError, match="shape"):
        to_pil(torch.zeros(2, 28, 28))


def test_mp4_export_is_a_real_h264_video(cond: GAN, tmp_path: Path) -> None:
    import av
    frames = [to_pil(f, 3) for f in interpolate_conditioning(cond, latent_for_seed(0, 16), 0, 1, 5)]  # 84 x 84
    path = make_mp4(frames, tmp_path / "morph.mp4", fps=10)
    with av.open(str(path)) as f:
        stream = f.streams.video[0]
        decoded = [fr.to_ndarray(format="gray") for fr in f.decode(stream)]
        assert stream.codec_context.name == "h264" and (stream.width, stream.height) == (84, 84)
    assert len(decoded) == 5
    first = np.asarray(frames[0], dtype=np.float32)
    assert np.abs(decoded[0].astype(np.float32) - first).mean() < 8  # the picture survives encoding
    odd = make_mp4([Image.new("L", (15, 9), 128)] * 2, tmp_path / "odd.mp4")  # odd sides are padded for yuv420p
    with av.open(str(odd)) as f:
        assert (f.streams.video[0].width, f.streams.video[0].height) == (16, 10)
    with pytest.raises(ValueError, match="same size"):
        make_mp4([Image.new("L", (8, 8)), Image.new("L", (10, 10))], tmp_path / "bad.mp4")
    assert not (tmp_path / "bad.mp4").exists()


# ---- sharing ----------------------------------------------------------------------------------
def test_share_state_round_trip_and_validation() -> None:
    s = share_state(42, 8, 0.7, {"PC1": 1.5, "width": -2.25, "PC2": 0.0})
    assert "seed=42" in s and "PC2" not in s and len(s) < 80
    st = parse_state(s, names=["PC1", "PC2", "width"], num_classes=10)
    assert st == {"seed": 42, "label": 8, "truncation": 0.7, "sliders": {"PC1": 1.5, "width": -2.25}, "notes": []}
    # a full app URL and the JSON form parse too
    assert parse_state("https://x.hf.space/?" + s)["sliders"] == {"PC1": 1.5, "width": -2.25}
    st = parse_state(json.dumps({"seed": 3, "label": None, "truncation": 1, "sliders": {"PC1": 9, "bogus": 1}}),
                     names=["PC1"], num_classes=0)
    assert st["sliders"] == {"PC1": 5.0} and st["label"] is None
    assert any("bogus" in n for n in st["notes"]) and any("PC1=9" in n and "clamped" in n for n in st["notes"])
    st = parse_state("seed=1&label=12&truncation=7", num_classes=10)
    assert st["label"] == 9 and st["truncation"] == 2.0 and len(st["notes"]) == 2
    for bad, msg in (("{not json", "not valid JSON"), ("label=3", "no seed"), ("seed=abc", "seed='abc'"),
                     ("seed=1&PC1=nan", "finite"), ("", "empty"), ("seed=1.5", "whole number"),
                     ("seed=1&seed=2", "twice"), ("[1, 2]", "query string")):
        with pytest.raises(ValueError, match=msg):
            parse_state(bad)


def test_latent_npy_round_trip_and_refusals(tmp_path: Path) -> None:
    z = latent_for_seed(9, 16)
    p = save_latent_npy(z, 3, tmp_path / "z.npy")
    z2, label = load_latent_npy(p, z_dim=16)
    assert torch.equal(z2, z) and label == 3
    save_latent_npy(z, None, tmp_path / "u.npy")
    assert load_latent_npy(tmp_path / "u.npy")[1] is None
    np.save(tmp_path / "plain.npy", z.numpy().astype(np.float64))  # a plain float array is accepted
    assert torch.allclose(load_latent_npy(tmp_path / "plain.npy")[0], z)
    np.save(tmp_path / "obj.npy", np.array([{"z": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickled/object"):
        load_latent_npy(tmp_path / "obj.npy")
    (tmp_path / "evil.npy").write_bytes(pickle.dumps({"z": [0.0] * 16}))
    with pytest.raises(ValueError, match="pickled/object"):
        load_latent_npy(tmp_path / "evil.npy")
    with pytest.raises(ValueError, match=r"expected \(32,\)"):
        load_latent_npy(p, z_dim=32)
    np.save(tmp_path / "int.npy", np.arange(16))
    with pytest.raises(ValueError, match="dtype int64"):
        load_latent_npy(tmp_path / "int.npy")
    np.savez(tmp_path / "a.npz", z=z.numpy())
    with pytest.raises(ValueError, match="npz"):
        load_latent_npy(tmp_path / "a.npz")


# ---- projection -------------------------------------------------------------------------------
def test_projection_reconstructs_a_generated_image(cond: GAN) -> None:
    target = cond.generate(1, seed=11, labels=5)[0]
    calls = []
    r = project(cond, target, num_steps=40, starts=4, classifier=None,
                progress=lambda i, n: calls.append((i, n)))
    assert r.z.shape == (16,) and r.image.shape == (1, 28, 28) and r.label in range(10)
    assert len(r.history) == 40 and calls[-1] == (40, 40) and len(calls) == 40
    assert r.history[-1] < r.history[0], "the objective did not decrease"
    random_mse = (cond.generate(64, seed=99, labels=5) - target).pow(2).mean((1, 2, 3))
    assert r.mse < float(random_mse.min()), "projection is no better than the best of 64 random samples"
    torch.testing.assert_close(r.image, render(cond, r.z, class_embedding(cond, r.label))[0], rtol=0, atol=1e-5)
    assert len(r.candidates) == 3  # three candidate classes were tried
    # with the label given, only that class is used
    r5 = project(cond, target, label=5, num_steps=20, starts=2, classifier=None)
    assert r5.label == 5 and r5.candidates == {5: pytest.approx(r5.candidates[5])}


def test_projection_of_an_unconditional_model_and_bad_input(uncond: GAN) -> None:
    target = uncond.generate(1, seed=4)[0]
    with torch.no_grad():  # works even when the caller disabled gradients
        r = project(uncond, target, num_steps=20, starts=2, classifier=None)
    assert r.label is None and r.history[-1] < r.history[0]
    with pytest.raises(ValueError, match="shape"):
        project(uncond, torch.zeros(3, 28, 28), classifier=None)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        project(uncond, torch.full((1, 28, 28), 200.0), classifier=None)
    with pytest.raises(ValueError, match="unconditional"):
        project(uncond, target, label=2, classifier=None)


def test_image_to_target_fits_and_inverts_light_backgrounds() -> None:
    a = np.full((40, 20), 255, np.uint8)  # a dark bar on a white page, taller than wide
    a[5:35, 5:15] = 0
    t = image_to_target(Image.fromarray(a))
    assert t.shape == (1, 28, 28) and -1 <= t.min() and t.max() <= 1
    assert t[0, 14, 14] > 0.9 and t[0, 14, 0] < -0.9  # object light, background (and padding) black


def test_projection_with_the_classifier_tries_its_top_3_classes(cond: GAN) -> None:
    from gan.classifier import FashionClassifier
    torch.manual_seed(0)
    clf = FashionClassifier().eval().requires_grad_(False)  # random weights: exercises the code, not the accuracy
    target = cond.generate(1, seed=2, labels=4)[0]
    r = project(cond, target, num_steps=20, starts=2, classifier=clf)
    with torch.no_grad():
        top3 = clf(target[None])[0].topk(3).indices.tolist()
    assert sorted(r.candidates) == sorted(top3) and r.label in top3  # candidates = the classifier's top 3
    assert r.history[-1] < r.history[0]
