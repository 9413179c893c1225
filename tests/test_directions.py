"""Sliders: garment attributes, GANSpace / SeFa / conditional InterFaceGAN directions, files and CLI, on tiny models."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from gan import GAN, Generator, GeneratorConfig
from gan.latent import (Directions, apply_directions, compute_directions, latent_for_seed, load_directions,
                        measure_attributes, save_directions, slider_info, write_directions)
from gan.latent.attributes import ATTRIBUTES, Reference, applicable_classes, class_auc, reference
from gan.latent.cli import directions_main
from gan.latent.effects import shift_effects
from gan.latent.fitting import constrained_direction
from gan.latent.principal import gan_space, sefa
from test_latent import CLASSES, tiny_model

QUICK = dict(n=1200, k=3, n_tune=32, iters=3, classifier=None)
ATTRS = ["brightness", "width", "height"]


class BoxGenerator(Generator):
    """A tiny 'generator' that draws a soft box: width, height and brightness are smooth functions of z.

    Entangled on purpose, as in real GANs: z2 widens the box more than z0 does and also brightens it, so
    a plain boundary normal for width brightens it too, and a conditional direction much less.
    Its first layer is the DCGAN one, so GANSpace and SeFa run on it too.
    """

    def forward_with_embedding(self, z: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        w = 0.25 + 0.5 * torch.sigmoid(0.6 * z[:, 0] + z[:, 2])  # (B,) fraction of the side
        h = 0.25 + 0.5 * torch.sigmoid(z[:, 1] + 0.3 * z[:, 3])
        b = 0.3 + 0.6 * torch.sigmoid(z[:, 2])
        r = torch.arange(28, dtype=torch.float32) - 13.5
        rows = torch.sigmoid(20 * (h[:, None] * 14 - r.abs()))  # (B, 28)
        cols = torch.sigmoid(20 * (w[:, None] * 14 - r.abs()))
        return (b[:, None, None] * rows[:, :, None] * cols[:, None, :]).unsqueeze(1) * 2 - 1  # (B, 1, 28, 28)


def box_model() -> GAN:
    model = GAN(generator={"width": 8, "z_dim": 8, "num_classes": 10}, discriminator={"width": 8, "num_classes": 10},
                class_names=CLASSES)
    model.generator = BoxGenerator(GeneratorConfig(width=8, z_dim=8, num_classes=10))
    return model.eval()


@pytest.fixture(scope="module")
def cond() -> GAN:
    return box_model()


@pytest.fixture(scope="module")
def dirs(cond: GAN) -> Directions:
    return compute_directions(cond, attributes=ATTRS, **QUICK)


# ---- attributes -------------------------------------------------------------------------------
def _canvas(n: int = 1) -> torch.Tensor:
    return -torch.ones(n, 1, 28, 28)


def test_attributes_on_drawn_garments() -> None:
    x = _canvas(4)
    x[0, :, 4:10, 2:22] = 1.0  # a 6 x 20 white box
    x[1, :, 4:10, 2:22] = 0.0  # the same box at half intensity
    x[2, :, 2:26, 8:20] = 1.0  # trousers: two legs with a gap in the lower half
    x[2, :, 14:26, 13:15] = -1.0
    x[3, :, 20:26, 0:28] = 1.0  # a shoe: low toe on the left, tall back on the right
    x[3, :, 8:26, 21:28] = 1.0
    a = measure_attributes(x)
    torch.testing.assert_close(a["width"][:2], torch.tensor([20 / 28, 20 / 28]))
    torch.testing.assert_close(a["height"][:2], torch.tensor([6 / 28, 6 / 28]))
    torch.testing.assert_close(a["area"][:2], torch.tensor([120 / 784, 120 / 784]))
    torch.testing.assert_close(a["brightness"][:2], torch.tensor([1.0, 0.5]))  # of the garment, not the canvas
    assert a["texture"][0] == 0 and a["contrast"][0] < 1e-6  # a plain box has neither pattern nor tones
    assert a["legs"][2] > 0.1 and a["legs"][0] == 0  # the gap between the legs, none in a box
    assert a["heel"][3] > 0.5 and abs(float(a["heel"][0])) < 1e-6  # back much taller than toe; a box is flat
    empty = measure_attributes(_canvas())
    assert all(torch.isfinite(v).all() and float(v[0]) == 0 for v in empty.values())  # blank: zeros, not NaN
    with pytest.raises(ValueError, match="unknown attribute"):
        measure_attributes(x, ["sparkle"])


def test_texture_and_contrast_tell_fine_patterns_from_large_tones() -> None:
    x = _canvas(2)
    x[0, :, 4:24, 4:24] = 0.6
    x[0, :, 4:24:2, 4:24] = 1.0  # fine stripes: high texture, tones even out over 5x5
    x[1, :, 4:24, 4:14] = 1.0  # two large tone blocks: high contrast, little texture
    x[1, :, 4:24, 14:24] = -0.2
    a = measure_attributes(x)
    assert a["texture"][0] > 2 * a["texture"][1]
    assert a["contrast"][1] > 2 * a["contrast"][0]


def test_sleeves_of_a_long_sleeved_top_are_longer_than_a_t_shirts() -> None:
    x = _canvas(2)
    for i in range(2):
        x[i, :, 2:26, 9:19] = 1.0  # torso
    x[0, :, 2:8, 2:26] = 1.0  # T-shirt: sleeves only at the shoulders
    x[1, :, 2:25, 2:7] = 1.0  # pullover: sleeves hang down beside the torso
    x[1, :, 2:25, 21:26] = 1.0
    x[1, :, 2:5, 2:26] = 1.0
    s = measure_attributes(x, ["sleeve"])["sleeve"]
    assert s[1] > 0.8 and s[0] < 0.4


def test_a_camisoles_neckline_is_deeper_than_a_crew_necks_and_a_dark_collar_is_not_an_opening() -> None:
    x = _canvas(3)
    x[:, :, 2:26, 8:20] = 1.0  # three plain tops
    x[1, :, 2:9, 11:17] = -1.0  # a camisole: open between its straps down to row 9
    x[2, :, 2:9, 11:17] = -0.9  # a dark collar (x = 0.05, under the silhouette's threshold but not background)
    s = measure_attributes(x, ["neckline"])["neckline"]
    assert s[0] == 0 and s[2] == 0 and s[1] == pytest.approx(5 * 7 / 5 / 24)  # 7 of the 24 rows, in 5 columns
    assert applicable_classes("neckline", CLASSES) == [0, 3, 6]


def test_reference_sd_is_pooled_within_class_and_classes_follow_names() -> None:
    x = _canvas(40)
    for i in range(40):  # class 0 narrow boxes, class 1 wide boxes; within each class widths vary by 2 px
        w = (6 if i < 20 else 18) + (i % 2) * 2
        x[i, :, 5:20, 2:2 + w] = 1.0
    y = torch.tensor([0] * 20 + [1] * 20)
    ref = reference(x, y, ["T-shirt/top", "Trouser"], "drawn")
    assert isinstance(ref, Reference) and ref.sd["width"] == pytest.approx(1 / 28, rel=0.1)  # not the 12 px gap
    assert "legs" in ref.sd and "heel" not in ref.sd  # no shoe class here
    assert applicable_classes("legs", CLASSES) == [1] and applicable_classes("heel", CLASSES) == [5, 7, 9]
    assert class_auc(measure_attributes(x)["width"], y, ["T-shirt/top", "Trouser"], ("T-shirt/top",),
                     ("Trouser",)) == 1.0
    assert set(ATTRIBUTES) >= {"brightness", "area", "width", "height", "contrast", "texture", "sleeve", "legs",
                               "heel", "handle", "neckline"}


# ---- directions ---------------------------------------------------------------------------------
def test_directions_are_unit_length_and_deterministic(cond: GAN, dirs: Directions) -> None:
    torch.testing.assert_close(dirs.vectors.norm(dim=1), torch.ones(len(dirs)), rtol=0, atol=1e-5)
    if dirs.class_vectors is not None:  # unit in z, or unit in z and the whitened class input together
        norms = dirs.class_vectors.norm(dim=2)
        if dirs.class_embedding is not None:
            from gan.latent.space import embedding_spread
            norms = (norms ** 2 + (dirs.class_embedding / embedding_spread(cond.generator)).norm(dim=2) ** 2).sqrt()
        assert ((norms - 1).abs() < 1e-5)[dirs.class_scales != 0].all() and (norms[dirs.class_scales == 0] == 0).all()
    again = compute_directions(cond, attributes=ATTRS, **QUICK)
    assert again.names == dirs.names and again.labels == dirs.labels
    # equal up to float rounding: CPU BLAS kernels may sum in another order from one call to the next
    torch.testing.assert_close(again.vectors, dirs.vectors, rtol=0, atol=1e-4)
    torch.testing.assert_close(again.scales, dirs.scales, rtol=1e-4, atol=1e-6)


def test_a_fitted_attribute_slider_moves_its_attribute_more_than_the_others(cond: GAN, dirs: Directions) -> None:
    assert {"brightness", "width", "height"} <= set(dirs.names), dirs.meta["skipped"]
    ref = Reference(dirs.meta["reference"]["sd"], {}, {}, "stored")
    z = torch.stack([latent_for_seed(1000 + s, cond.z_dim) for s in range(64)])  # fresh seeds, not the tuning batch
    for name in ("brightness", "width", "height"):
        cls = dirs.classes(name) or list(range(10))  # the classes the slider acts on, in turn
        y = torch.tensor([cls[i % len(cls)] for i in range(64)])
        eff = shift_effects(cond.generator, z, y, 3 * dirs.steps(name, y, 64), None, ref, CLASSES)
        others = {b: abs(v) for b, v in eff.sd.items() if b != name}
        assert eff.sd[name] >= 0.8 and max(others.values()) <= 0.6 * eff.sd[name], (name, eff.sd)
    # the plain boundary normal of width brightens the box about as much; the conditional slider far less
    from gan.latent.fitting import boundary_normal
    zs = torch.randn(2000, 8, generator=torch.Generator().manual_seed(5))
    plain = boundary_normal(zs, measure_attributes(cond.generator(zs, torch.zeros(2000, dtype=torch.long)))["width"])
    plain = plain / plain.norm() * dirs.scales[dirs.index["width"]]
    cls = dirs.classes("width") or list(range(10))
    y = torch.tensor([cls[i % len(cls)] for i in range(64)])
    naive = shift_effects(cond.generator, z, y, 3 * plain.expand(64, -1), None, ref, CLASSES)
    cond_eff = shift_effects(cond.generator, z, y, 3 * dirs.steps("width", y, 64), None, ref, CLASSES)
    leak = lambda e: abs(e.sd["brightness"]) / abs(e.sd["width"])  # noqa: E731
    assert leak(cond_eff) <= 0.45 and leak(naive) > 1.5 * leak(cond_eff), (naive.sd, cond_eff.sd)


class WidthClassifier(torch.nn.Module):
    """Reads a wide box as class 0 and a narrow one as class 1: widening a box changes its class."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = measure_attributes(x)["width"] - 0.5  # the box's width is 0.25..0.75 of the side
        logits = torch.full((len(x), len(CLASSES)), -10.0)
        logits[:, 0], logits[:, 1] = w, -w
        return logits


def test_a_slider_that_changes_the_class_too_often_is_dropped_even_for_one_class(cond: GAN) -> None:
    from gan.latent.fitting import Goals
    strict = Goals(kept=0.3, kept_all=0.99)  # every class passes alone; no set of them keeps 99% together
    d = compute_directions(cond, attributes=["width"], **{**QUICK, "classifier": WidthClassifier()}, goals=strict)
    # narrow boxes are read as Trouser (1): widening them changes the class; wide T-shirts (0) stay T-shirts
    assert 1 not in (d.classes("width") or []) and 0 in d.classes("width"), d.meta["skipped"]
    note = next(n for n in d.meta["skipped"] if n.startswith("width for Trouser"))
    assert "z: " in note and "z+class: " in note, note  # both spaces were tried, and the note says how each did


def test_per_class_sliders_act_only_on_their_classes(cond: GAN, dirs: Directions) -> None:
    z = latent_for_seed(3, cond.z_dim)
    for name in dirs.names:
        cls = dirs.classes(name)
        if cls is None:
            continue
        for c in range(10):
            moved = apply_directions(z, dirs, {name: 2.0}, label=c)
            assert torch.equal(moved, z) == (c not in cls), (name, c)
    if "heel" in dirs.names:  # a shoe attribute never acts on tops
        assert set(dirs.classes("heel")) <= {5, 7, 9}


def test_principal_directions_gan_space_and_sefa(cond: GAN) -> None:
    G = cond.generator
    pcs, ratio = gan_space(G, torch.randn(800, 8, generator=torch.Generator().manual_seed(0)),
                           torch.arange(800) % 10, 3)
    torch.testing.assert_close(pcs.norm(dim=1), torch.ones(3), rtol=0, atol=1e-5)
    assert all(a >= b for a, b in zip(ratio, ratio[1:])) and 0 < float(ratio.sum()) <= 1
    vecs, share = sefa(G, 4)
    torch.testing.assert_close(vecs @ vecs.T, torch.eye(4), rtol=0, atol=1e-5)  # orthonormal eigenvectors
    A = G.latent_weight()
    gains = (A @ vecs.T).norm(dim=0)
    assert all(a >= b - 1e-5 for a, b in zip(gains, gains[1:])), "SeFa directions are not in order of strength"
    rand = torch.nn.functional.normalize(torch.randn(16, 8), dim=1)
    assert float(gains[0]) >= float((A @ rand.T).norm(dim=0).max()) - 1e-5  # no direction moves layer 1 more


def test_constrained_direction_keeps_other_normals_within_the_cone() -> None:
    g = torch.Generator().manual_seed(0)
    own, other = torch.randn(16, generator=g), torch.randn(16, generator=g)
    other = other + 2 * own  # strongly correlated, as size and brightness are
    w = constrained_direction(own, [(other, 0.2)])
    assert abs(float(w.norm()) - 1) < 1e-5 and float(w @ own) > 0
    assert abs(float(w @ other)) <= 0.2 * float(w @ own) + 1e-4
    hard = constrained_direction(own, [(other, 0.0)])  # rho = 0: InterFaceGAN's projection
    assert abs(float(hard @ other)) < 1e-4
    assert float(w @ own) > float(hard @ own)  # the cone keeps more of the attribute than the projection


def test_save_load_round_trip_and_version_1_files(cond: GAN, dirs: Directions, tmp_path: Path) -> None:
    cond.save_pretrained(tmp_path)
    save_directions(dirs, tmp_path)
    d = load_directions(tmp_path, z_dim=8)
    assert d.names == dirs.names and d.labels == dirs.labels and d.kinds == dirs.kinds
    assert torch.equal(d.vectors, dirs.vectors) and torch.equal(d.scales, dirs.scales)
    assert d.effects_sd == dirs.effects_sd and d.meta["reference"]["sd"]
    doc = json.loads((tmp_path / "directions.json").read_text())
    assert doc["format_version"] == 3 and doc["meta"]["generator_sha256"]
    # a version-1 folder (unit directions, no scales or per-class vectors) still loads and applies as before
    doc1 = {"format_version": 1, "z_dim": 8, "meta": {}, "directions": [
        {"name": "PC1", "kind": "pca", "label": "PC1: test", "description": "d", "strength_sd": 0.5, "effects": {}}]}
    (tmp_path / "directions.json").write_text(json.dumps(doc1))
    from safetensors.torch import save_file
    v = torch.nn.functional.normalize(torch.randn(1, 8), dim=1)
    save_file({"directions": v}, str(tmp_path / "directions.safetensors"))
    old = load_directions(tmp_path)
    z = latent_for_seed(0, 8)
    torch.testing.assert_close(apply_directions(z, old, {"PC1": 2.0}, label=4), z + 2 * v[0])
    assert old.classes("PC1") is None and math.isnan(old.class_kept[0])
    doc1["format_version"] = 9
    (tmp_path / "directions.json").write_text(json.dumps(doc1))
    with pytest.raises(ValueError, match="format_version 9"):
        load_directions(tmp_path)


def test_slider_info_is_what_the_api_lists(dirs: Directions) -> None:
    for name in dirs.names:
        info = slider_info(dirs, name, CLASSES)
        assert info["name"] == name and info["range"] == [-5.0, 5.0] and info["label"].startswith(name)
        assert info["kind"] in ("attribute", "pca", "sefa") and isinstance(info["effects_sd"], dict)
        json.dumps(info)  # JSON-able


def test_directions_cli_old_and_new_names(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import runpy
    import sys
    tiny_model(10).save_pretrained(tmp_path / "m")  # a real (random) DCGAN generator through the real CLI
    assert directions_main([str(tmp_path / "m"), "--n", "300", "--k", "2", "--tune", "8", "--no-classifier"]) == 0
    out = capsys.readouterr().out
    d = load_directions(tmp_path / "m")
    assert d is not None and "wrote" in out and d.meta["n"] == 300 and d.meta["classifier"] is False
    assert directions_main([str(tmp_path / "missing")]) == 2
    assert "config.json" in capsys.readouterr().err
    argv = sys.argv
    sys.argv = ["gan.directions", str(tmp_path / "missing")]  # the documented old entry point still runs
    try:
        with pytest.raises(SystemExit) as e:
            runpy.run_module("gan.directions", run_name="__main__")
        assert e.value.code == 2
    finally:
        sys.argv = argv
    assert write_directions(tmp_path / "m", n=200, k=1, n_tune=8, iters=1, attributes=["width"],
                            classifier=None) == tmp_path / "m" / "directions.json"


def test_model_tab_heatmap_of_measured_effects(dirs: Directions) -> None:
    from gan.app.plots import directions_heatmap
    im = directions_heatmap(dirs)
    assert im is not None and im.size[0] > 300 and im.size[1] > 100 + 20 * len(dirs)
    v1 = Directions(["PC1"], torch.eye(8)[:1], ["PC1: x"], ["d"], ["pca"])  # a format-1 file: no effects in sd
    assert directions_heatmap(v1) is None and directions_heatmap(None) is None


@pytest.mark.slow
def test_shipped_attribute_sliders_do_what_they_say() -> None:
    """Live on the shipped model and 64 seeds per class that neither the fit nor the benchmark uses: every
    attribute slider, for every class it acts on, moves its attribute, little else, and keeps the class. The
    thresholds leave room for 64 seeds' noise (about 0.1 sd and 4 points of class retention) around the
    check that benchmarks/sliders.py reports on 128 other seeds (gan.latent.effects.CHECK)."""
    from gan.classifier import load_classifier
    from gan.latent.attributes import fashion_reference
    root = Path(__file__).resolve().parent.parent / "checkpoints"
    model = GAN.from_pretrained(str(root)).eval()
    d = load_directions(root, z_dim=model.z_dim)
    clf, ref = load_classifier(), fashion_reference()
    z = torch.stack([latent_for_seed(5000 + s, model.z_dim) for s in range(64)])
    attrs = [n for n, k in zip(d.names, d.kinds) if k == "attribute"]
    assert len(attrs) >= 4, d.meta["skipped"]
    for c in range(10):
        y = torch.full((64,), c)
        for name in [n for n in attrs if d.acts_on(n, c)]:
            emb = d.embedding_steps(name, y, 64)
            eff = shift_effects(model.generator, z, y, 3 * d.steps(name, y, 64), clf, ref, list(model.class_names),
                                emb_offsets=None if emb is None else 3 * emb)
            worst = max(abs(v) for b, v in eff.sd.items() if b != name)
            assert eff.sd[name] >= 0.9 and worst <= 0.6 * eff.sd[name] and eff.class_kept >= 0.85, (c, name, eff)


# ---- per-class sliders in the app: which act on a class, the class input, the morph -----------------
def _per_class_folder(tmp_path: Path) -> Path:
    """A tiny model folder whose 'width' acts on Pullover through z and G's class input and 'legs' on Trouser."""
    model = tiny_model(10)
    model.save_pretrained(tmp_path)
    g = torch.Generator().manual_seed(0)
    cv, cs, ce = torch.zeros(2, 10, 16), torch.zeros(2, 10), torch.zeros(2, 10, 16)
    cv[0, 2], cs[0, 2], ce[0, 2] = torch.randn(16, generator=g), 1.0, 0.5 * torch.randn(16, generator=g)
    cv[1, 1], cs[1, 1] = torch.randn(16, generator=g), 1.0
    info = [{"Pullover": {"own_sd": 1.3, "largest_other": ["area", 0.4], "class_kept": 0.95, "space": "z+class"}},
            {"Trouser": {"own_sd": 1.2, "largest_other": ["width", 0.3], "class_kept": 0.97, "space": "z"}}]
    d = Directions(["width", "legs"], torch.nn.functional.normalize(cv.sum(1), dim=1), ["width: w", "legs: l"],
                   ["d", "d"], ["attribute", "attribute"], class_vectors=cv, class_scales=cs, class_embedding=ce,
                   class_info=info)
    save_directions(d, tmp_path)
    return tmp_path


def test_per_class_class_input_steps_round_trip_and_apply(tmp_path: Path) -> None:
    from gan.latent import apply_edit
    d = load_directions(_per_class_folder(tmp_path), z_dim=16)
    assert d.class_embedding is not None and d.class_info[0]["Pullover"]["space"] == "z+class"
    z = latent_for_seed(1, 16)
    z2, emb = apply_edit(z, d, {"width": 2.0}, label=2)
    torch.testing.assert_close(z2, z + 2 * d.class_vectors[0, 2])
    torch.testing.assert_close(emb, 2 * d.class_embedding[0, 2])
    assert apply_edit(z, d, {"legs": 2.0}, label=1)[1] is None  # a z-only slider leaves the class input alone
    assert d.acts_on("width", 2) and not d.acts_on("width", 1) and d.acts_on("legs", 1)
    assert slider_info(d, "width", CLASSES)["classes"] == ["Pullover"]
    assert slider_info(d, "width", CLASSES)["per_class"]["Pullover"]["own_sd"] == 1.3


def test_the_generate_tab_lists_only_the_sliders_acting_on_the_class(tmp_path: Path) -> None:
    from gan.app.context import load_context
    from gan.app.generate import generate_view, make_view, slider_states
    from gan.app.inputs import AppInputError
    ctx = load_context(local_dir=str(_per_class_folder(tmp_path)))
    shown = {n: (v, lab, info) for n, (v, lab, info) in zip(ctx.direction_names, slider_states(ctx, 2))}
    assert shown["width"][0] and not shown["legs"][0]  # Pullover: width only
    assert "+1.30 sd" in shown["width"][1] and "for Pullover at +3" in shown["width"][2]
    assert "G's class input" in shown["width"][2]
    with pytest.raises(AppInputError, match="does not act on class 'Pullover'.*Trouser"):
        make_view(ctx, 5, "Pullover", 1.0, {"legs": 1.0})  # the API says so instead of ignoring it
    assert make_view(ctx, 5, "Pullover", 1.0, [0.0, 1.0]).sliders == {}  # the tab's hidden slider: dropped
    plain = generate_view(ctx, make_view(ctx, 5, "Pullover")).image.tobytes()
    moved = generate_view(ctx, make_view(ctx, 5, "Pullover", 1.0, {"width": 2.0}))
    assert moved.emb is not None and moved.image.tobytes() != plain
    morph = generate_view(ctx, make_view(ctx, 5, "Pullover", 1.0, None, morph_to="Coat", morph=1.0)).image
    coat = generate_view(ctx, make_view(ctx, 5, "Coat")).image
    assert morph.tobytes() == coat.tobytes()  # the morph's far end is the other class, exactly
    assert generate_view(ctx, make_view(ctx, 5, "Pullover", 1.0, None, morph_to="Coat", morph=0.0)).image.tobytes() \
        == plain


def test_fill_classes_takes_another_fits_passing_directions_only_where_a_class_is_short() -> None:
    from gan.latent.combine import attribute_sliders, fill_classes
    g = torch.Generator().manual_seed(1)

    def fit(classes: dict[str, list[int]], seed: int) -> Directions:
        names = list(classes)
        cv, cs = torch.zeros(len(names), 10, 16), torch.zeros(len(names), 10)
        info = [{} for _ in names]
        for i, n in enumerate(names):
            for c in classes[n]:
                cv[i, c], cs[i, c] = torch.nn.functional.normalize(torch.randn(16, generator=g), dim=0), 0.5 + c
                info[i][CLASSES[c]] = {"own_sd": 1.2, "largest_other": ["area", 0.3], "class_kept": 0.95,
                                       "space": "z"}
        desc = [f"{n}. Acts on: {', '.join(CLASSES[c] for c in classes[n])}." for n in names]
        meta = {"seed": seed, "skipped": [f"width for Coat: best directions z: +0.9 sd", "legs for Coat: none"]}
        return Directions(names, torch.nn.functional.normalize(cv.sum(1), dim=1), names, desc,
                          ["attribute"] * len(names), meta=meta, class_vectors=cv, class_scales=cs, class_info=info)

    primary = fit({"width": [2, 8], "texture": [2]}, seed=2)
    other = fit({"width": [2, 4], "legs": [4], "texture": [2, 4]}, seed=0)
    d, added = fill_classes(primary, other, CLASSES, min_per_class=2)
    assert added == ["width for Coat", "texture for Coat"]  # legs is not one of primary's sliders
    assert attribute_sliders(d, 4) == ["width", "texture"] and attribute_sliders(d, 2) == ["width", "texture"]
    assert torch.equal(d.class_vectors[0, 4], other.class_vectors[0, 4])  # Coat's width is the other fit's
    assert torch.equal(d.class_vectors[0, 2], primary.class_vectors[0, 2])  # Pullover keeps its own
    assert d.class_scales[0, 4] == other.class_scales[0, 4] and d.class_info[0]["Coat"]["seed"] == 0
    assert "Acts on: Pullover, Coat, Bag." in d.descriptions[0]
    assert d.meta["skipped"] == ["legs for Coat: none"] and d.meta["filled"][0]["added"] == added
    assert attribute_sliders(primary, 4) == []  # the primary fit itself is left as it was
    d2, added2 = fill_classes(primary, other, CLASSES, min_per_class=1)  # Pullover and Bag already have one
    assert added2 == ["width for Coat"]


def test_fill_seeds_must_be_integers(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert directions_main([str(tmp_path), "--fill-seeds", "0,two"]) == 2
    assert "--fill-seeds takes comma-separated integers" in capsys.readouterr().err
