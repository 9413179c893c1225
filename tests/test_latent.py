"""Latent-space tools: interpolation, rendering with explicit embeddings, sharing, latent files,
GANSpace/InterFaceGAN directions (compute, save/load, CLI) and GAN inversion, on tiny models."""

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
from gan.directions import (Directions, apply_directions, compute_directions, load_directions, main as directions_main,
                            measure_attributes, save_directions, write_directions)
from gan.latent import (blend_embedding, class_embedding, interpolate, interpolate_conditioning, latent_for_seed,
                        lerp, load_latent_npy, make_gif, parse_state, render, save_latent_npy, share_state, slerp,
                        to_pil, to_png_bytes)
from gan.projection import image_to_target, project

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


@pytest.fixture(scope="module")
def cond_dirs(cond: GAN) -> Directions:
    return compute_directions(cond, n=1500, k=4, n_label=64, classifier=None)


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


# ---- directions -------------------------------------------------------------------------------
def test_measure_attributes_on_known_images() -> None:
    x = -torch.ones(2, 1, 28, 28)
    x[0, :, 4:10, 2:22] = 1.0  # a 6 x 20 white box
    a = measure_attributes(x)
    torch.testing.assert_close(a["width"], torch.tensor([20 / 28, 0.0]))
    torch.testing.assert_close(a["height"], torch.tensor([6 / 28, 0.0]))
    torch.testing.assert_close(a["area"], torch.tensor([120 / 784, 0.0]))
    torch.testing.assert_close(a["brightness"], torch.tensor([120 / 784, 0.0]))


def test_directions_are_unit_orthogonal_and_labelled(cond_dirs: Directions) -> None:
    d = cond_dirs
    assert d.names[:4] == ["PC1", "PC2", "PC3", "PC4"] and d.kinds[:4] == ["pca"] * 4
    assert {"brightness", "area"} <= set(d.names)  # InterFaceGAN boundaries for measurable attributes
    torch.testing.assert_close(d.vectors.norm(dim=1), torch.ones(len(d)), rtol=0, atol=1e-5)
    pcs = d.vectors[:4]
    off_diag = (pcs @ pcs.T - torch.eye(4)).abs().max()
    assert off_diag < 0.2, f"PCA directions are far from orthogonal (max |cos| {off_diag:.3f})"
    ev = d.meta["explained_variance"]
    assert all(a >= b for a, b in zip(ev, ev[1:])) and 0 < sum(ev) <= 1
    for name, label, eff in zip(d.names, d.labels, d.effects):
        assert label.startswith(f"{name}: ") and " at +3)" in label
        assert set(eff) >= {"brightness", "area", "width", "height"}
    # the brightness boundary really makes images brighter (measured, not assumed)
    assert d.effects[d.index["brightness"]]["brightness"] > 0
    # PCs are oriented so that + increases their main attribute
    for i in range(4):
        assert "(+" in d.labels[i]


def test_pca_directions_of_an_unconditional_model(uncond: GAN) -> None:
    d = compute_directions(uncond, n=1000, k=3, n_label=32, classifier=None)
    assert d.names[:3] == ["PC1", "PC2", "PC3"] and d.vectors.shape[1] == 16
    torch.testing.assert_close(d.vectors.norm(dim=1), torch.ones(len(d)), rtol=0, atol=1e-5)


def test_apply_directions_moves_z_along_the_named_vectors(cond_dirs: Directions) -> None:
    z = latent_for_seed(0, 16)
    z2 = apply_directions(z, cond_dirs, {"PC1": 2.0, "brightness": -1.0})
    torch.testing.assert_close(z2, z + 2 * cond_dirs.vector("PC1") - cond_dirs.vector("brightness"))
    assert torch.equal(apply_directions(z, cond_dirs, {}), z)
    with pytest.raises(KeyError, match="nope"):
        apply_directions(z, cond_dirs, {"nope": 1.0})


def test_directions_save_load_round_trip(cond: GAN, cond_dirs: Directions, tmp_path: Path) -> None:
    assert load_directions(tmp_path) is None  # a folder without directions
    cond.save_pretrained(tmp_path)
    save_directions(cond_dirs, tmp_path)
    d = load_directions(tmp_path, z_dim=16)
    assert d is not None
    assert torch.equal(d.vectors, cond_dirs.vectors)
    assert (d.names, d.labels, d.descriptions, d.kinds) == \
           (cond_dirs.names, cond_dirs.labels, cond_dirs.descriptions, cond_dirs.kinds)
    doc = json.loads((tmp_path / "directions.json").read_text())
    assert doc["directions"][0]["effects"] and doc["meta"]["generator_sha256"]
    with pytest.raises(ValueError, match="z_dim=64"):
        load_directions(tmp_path, z_dim=64)
    # directions computed for other weights are ignored, with a warning
    tiny_model(10, seed=1).save_pretrained(tmp_path)
    with pytest.warns(UserWarning, match="other generator weights"):
        assert load_directions(tmp_path) is None
    (tmp_path / "directions.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="unreadable"):
        load_directions(tmp_path)


def test_directions_cli_writes_into_the_model_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tiny_model(10).save_pretrained(tmp_path / "m")
    assert directions_main([str(tmp_path / "m"), "--n", "600", "--k", "3", "--no-classifier"]) == 0
    out = capsys.readouterr().out
    d = load_directions(tmp_path / "m")
    assert d is not None and d.names[:3] == ["PC1", "PC2", "PC3"] and d.meta["n"] == 600
    assert d.meta["classifier"] is False and "class" not in d.kinds
    assert d.labels[0] in out and "wrote" in out
    assert directions_main([str(tmp_path / "missing")]) == 2
    assert "config.json" in capsys.readouterr().err
    assert write_directions(tmp_path / "m", n=300, k=2, classifier=None) == tmp_path / "m" / "directions.json"


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


def test_classifier_paths_for_directions_and_projection(cond: GAN) -> None:
    from gan.classifier import FashionClassifier
    torch.manual_seed(0)
    clf = FashionClassifier().eval().requires_grad_(False)  # random weights: exercises the code, not the accuracy
    d = compute_directions(cond, n=600, k=2, n_label=32, classifier=clf)
    class_names = [f"class_{s}" for s in ("t_shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                                           "sneaker", "bag", "ankle_boot")]
    for c in class_names:  # every class got a boundary, or a stated reason why not
        assert c in d.names or any(s.startswith(c + " ") for s in d.meta["skipped"]), c
    for name, kind, label in zip(d.names, d.kinds, d.labels):
        if kind == "class":
            assert name in class_names and ": more " in label and "P(" in label
    assert "class_bag" in d.meta["attributes"]
    target = cond.generate(1, seed=2, labels=4)[0]
    r = project(cond, target, num_steps=20, starts=2, classifier=clf)
    with torch.no_grad():
        top3 = clf(target[None])[0].topk(3).indices.tolist()
    assert sorted(r.candidates) == sorted(top3) and r.label in top3  # candidates = the classifier's top 3
    assert r.history[-1] < r.history[0]
