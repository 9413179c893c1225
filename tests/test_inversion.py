"""The encoder (files and SHA-256 tie), the three projection stages, and per-session tuned generators.

Tiny seeded models on the CPU; the encoder is trained for a few steps on the fake Fashion-MNIST of conftest.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

from gan import GAN
from gan.fileio import sha256_file
from gan.latent.encoder import ENCODER_CONFIG, ENCODER_FILE, Encoder, EncoderConfig, load_encoder, save_encoder
from gan.latent.encoder_train import EncoderTraining, write_encoder
from gan.latent.inversion import invert, tuned_copy, tuned_modules

EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"
TINY = EncoderTraining(steps=4, batch_size=8, pool=32, width=4, hidden=16)
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _tiny_gan(seed: int = 0) -> GAN:
    torch.manual_seed(seed)
    model = GAN(generator={"width": 8, "num_classes": 10, "z_dim": 16}, discriminator={"width": 8, "num_classes": 10},
                class_names=FASHION)
    with torch.no_grad():  # contrast, so that a projection has something to match
        model.generator.to_img.weight.mul_(30.0)
    return model.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, fake_fashion):
    """A tiny model folder with an encoder trained for 4 steps on the fake data."""
    path = tmp_path_factory.mktemp("inversion") / "model"
    _tiny_gan().save_pretrained(path)
    write_encoder(path, options=TINY, data_dir=str(fake_fashion), log=None)
    return path


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


# ---- encoder files ---------------------------------------------------------------------------------------
def test_encoder_round_trip_and_generator_tie(folder):
    meta = json.loads((folder / ENCODER_CONFIG).read_text())
    assert meta["generator_sha256"] == sha256_file(folder / "generator.safetensors")
    assert meta["weights_sha256"] == sha256_file(folder / ENCODER_FILE)
    assert meta["training"]["real_images"] == 320 and meta["held_out"]["images"] == 64
    enc = load_encoder(folder)
    assert isinstance(enc, Encoder) and not enc.training
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    z, logits = enc(x)
    assert z.shape == (3, 16) and logits.shape == (3, 10)
    z2, _ = load_encoder(folder)(x)
    assert torch.equal(z, z2)  # loading is exact


def test_an_encoder_for_other_weights_is_ignored(tmp_path, folder):
    for name in ("config.json", ENCODER_FILE, ENCODER_CONFIG):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    _tiny_gan(seed=1).save_pretrained(tmp_path)  # other generator weights under the same encoder.json
    with pytest.warns(UserWarning, match="other generator weights"):
        assert load_encoder(tmp_path) is None
    (tmp_path / ENCODER_FILE).write_bytes(b"not safetensors")
    with pytest.warns(UserWarning, match="ignoring the encoder"):
        assert load_encoder(tmp_path) is None
    (tmp_path / ENCODER_FILE).unlink()
    (tmp_path / ENCODER_CONFIG).unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_encoder(tmp_path) is None  # no encoder: no warning


def test_save_encoder_writes_both_files(tmp_path):
    model = _tiny_gan()
    model.save_pretrained(tmp_path)
    enc = Encoder(EncoderConfig.for_generator(model.generator, width=4, hidden=8))
    path = save_encoder(tmp_path, enc, {"note": "x"})
    assert path.name == ENCODER_CONFIG and (tmp_path / ENCODER_FILE).is_file()
    assert json.loads(path.read_text())["note"] == "x"


def test_finish_knows_the_encoder():
    from gan.finish import EXTRAS, _writer
    assert "encoder" in dict(EXTRAS)
    assert _writer("encoder") is write_encoder


# ---- the stages ------------------------------------------------------------------------------------------
def _real(data_dir, label: int) -> torch.Tensor:
    """The first fake test image of a class, (1, 28, 28) in [-1, 1]."""
    from gan.data import load_dataset, to_float
    test = load_dataset("fashion-mnist", split="test", data_dir=data_dir, download=False)
    return to_float(test.images[int((test.labels == label).nonzero()[0])])


def test_each_stage_runs_alone_and_improves_on_the_last(folder, fake_fashion):
    model = GAN.from_pretrained(str(folder)).eval().requires_grad_(False)
    enc = load_encoder(folder)
    G = model.generator
    target = _real(fake_fashion, 3)
    before = _state(G)
    r1 = invert(model, target, encoder=enc, label=3, stage="encoder", classifier=None)
    r2 = invert(model, target, encoder=enc, label=3, stage="refine", refine_steps=30, classifier=None)
    r3 = invert(model, target, encoder=enc, label=3, stage="tune", refine_steps=30, tune_steps=30, classifier=None)
    assert (r1.stage, r2.stage, r3.stage) == ("encoder", "refine", "tune")
    assert r1.steps == {"encoder": 1} and r2.steps["refine"] == 30 and r3.steps["tune"] == 30
    assert r1.generator is G and r2.generator is G and r3.generator is not G
    assert r2.mse <= r1.mse + 0.01 and r3.mse < 0.5 * r2.mse and r3.label == 3  # (a tiny random G: flat images)
    assert torch.allclose(r3.generator(r3.z[None], torch.tensor([3]))[0], r3.image)
    after = _state(G)
    assert all(torch.equal(before[k], after[k]) for k in before)  # the shipped weights are never written


def test_auto_class_and_the_time_budget(folder):
    model = GAN.from_pretrained(str(folder)).eval().requires_grad_(False)
    enc = load_encoder(folder)
    target = torch.rand(1, 28, 28) * 2 - 1
    r = invert(model, target, encoder=enc, stage="tune", budget_s=0.0)  # spent at once: only the tuning's minimum
    assert r.stage == "tune" and r.steps.get("refine", 0) == 0 and r.steps["tune"] == 40
    r = invert(model, target, encoder=enc, stage="tune", budget_s=0.0, min_tune_steps=0)
    assert r.stage == "encoder" and r.steps.get("tune", 0) == 0
    assert r.label in r.candidates and len(r.candidates) == 2  # the classifier's two likeliest classes
    with pytest.raises(ValueError, match="stage"):
        invert(model, target, encoder=enc, stage="everything")


def test_without_an_encoder_the_optimisation_starts_the_tuning(folder):
    model = GAN.from_pretrained(str(folder)).eval().requires_grad_(False)
    target = torch.rand(1, 28, 28) * 2 - 1
    r = invert(model, target, encoder=None, label=1, optimise_steps=6, tune_steps=5, classifier=None)
    assert r.stage == "tune" and r.steps == {"optimise": 6, "tune": 5}


def test_surface_attributes_are_the_measured_ones_and_differentiable():
    from gan.latent.attributes import SURFACE, measure_attributes, surface_attributes
    torch.manual_seed(0)
    x = (torch.rand(5, 1, 28, 28) * 2 - 1).requires_grad_(True)
    got = surface_attributes(x)
    ref = measure_attributes(x.detach())
    assert torch.allclose(got.detach(), torch.stack([ref[a] for a in SURFACE], 1), atol=1e-5)
    got[:, 2].sum().backward()  # texture: every garment pixel that has a garment neighbour gets a gradient
    assert x.grad.isfinite().all() and (x.grad != 0).float().mean() > 0.5


def test_tuning_holds_what_the_moves_do_to_the_surface_attributes():
    """The surface term: after tuning to a patterned target, the copy's brightness/contrast/texture changes along
    the moves stay close to G's own; a tuning on pixels alone lets the target's pattern change them."""
    from gan.latent.attributes import surface_attributes
    from gan.latent.inversion import tune
    G = _tiny_gan().generator
    target = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1  # fine pattern
    z, y = torch.randn(1, 16, generator=torch.Generator().manual_seed(1)), torch.tensor([3])
    dz = torch.randn(4, 16, generator=torch.Generator().manual_seed(2)) * 1.5
    units = torch.tensor([0.1, 0.03, 0.03])

    def mismatch(Gt):
        with torch.no_grad():
            change = lambda g: (surface_attributes(g(z + dz, y.expand(4))) - surface_attributes(g(z, y))) / units  # noqa: E731
            return float((change(Gt) - change(G)).pow(2).mean())
    pixels, _ = tune(G, target, z, y, 60, edits=(dz, None), units=None, edit_pairs=4)
    surface, _ = tune(G, target, z, y, 60, edits=(dz, None), units=units, surface_weight=1.0, edit_pairs=4)
    assert mismatch(surface) < 0.1 * mismatch(pixels)


def test_a_tuned_copy_shares_the_frozen_weights_and_owns_its_block():
    G = _tiny_gan().generator
    Gt = tuned_copy(G)
    own = {id(p) for m in tuned_modules(Gt) for p in m.parameters()}
    shipped = dict(G.named_parameters())
    for name, p in Gt.named_parameters():
        if id(p) in own:
            assert p is not shipped[name] and p.data_ptr() != shipped[name].data_ptr()
        else:
            assert p is shipped[name]  # shared, never copied
    assert {n for n, p in Gt.named_parameters() if id(p) in own} == {
        "blocks.3.weight", "blocks.4.weight", "blocks.4.bias", "to_img.weight", "to_img.bias"}


# ---- sessions --------------------------------------------------------------------------------------------
def test_tuned_store_keeps_sessions_apart_and_bounded():
    from gan.app.tuned import TunedStore
    store = TunedStore(capacity=3, per_session=2)
    a1, a2, b1 = torch.nn.Linear(1, 1), torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)
    ka1, ka2, kb1 = store.put("A", a1), store.put("A", a2), store.put("B", b1)
    assert store.get(ka1) is a1 and store.get(kb1) is b1 and len({ka1, ka2, kb1}) == 3
    ka3 = store.put("A", torch.nn.Linear(1, 1))  # A keeps two: its least recently used one (ka2) goes
    assert store.get(ka2) is None and store.get(ka1) is a1 and store.get(ka3) is not None
    assert store.drop_session("A") == 2 and store.get(ka1) is None and store.get(kb1) is b1
    shared = store.put(None, torch.nn.Linear(1, 1))
    for s in "CDEF":
        store.put(s, torch.nn.Linear(1, 1))
    assert len(store) == 3 and store.get(shared) is not None and store.get(kb1) is None  # LRU, shared kept
    assert store.get(None) is None and store.get("unknown") is None
    old = TunedStore(ttl_s=0.0)
    k = old.put("A", a1)
    assert old.get(k) is None  # expired


def test_two_sessions_edit_their_own_garment(folder):
    """Projections of two images in two sessions: each Generate view draws its own garment with its own tuned G,
    the shipped G is untouched, and a closed session's view falls back to the shipped G."""
    from gan.app.context import load_context
    from gan.app.generate import generate_view, make_view, view_generator
    from gan.app.project import project_input
    from gan.app.project_tab import projection_state
    from gan.app.tuned import TUNED
    ctx = load_context(local_dir=str(folder))
    before = _state(ctx.model.generator)
    views = []
    for session, name in (("A", "real_bag_test18.png"), ("B", "real_dress_test13.png")):
        p = project_input(ctx, str(EXAMPLES / name), "auto", method="tune", plot=False)
        assert p.summary["stage"] == "tune" and p.summary["tuned"] and p.generator is not None
        st = projection_state(p, session)
        views.append(make_view(ctx, None, p.endpoint.label, 1.0, [], base=st["z"], tuned=st["tuned"]))
    ga, gb = (view_generator(ctx, v) for v in views)
    assert ga is not gb and ctx.model not in (ga, gb)
    assert generate_view(ctx, views[0]).image.tobytes() != generate_view(ctx, views[1]).image.tobytes()
    TUNED.drop_session("A")
    assert view_generator(ctx, views[0]) is ctx.model and view_generator(ctx, views[1]) is gb
    after = _state(ctx.model.generator)
    assert all(torch.equal(before[k], after[k]) for k in before)
