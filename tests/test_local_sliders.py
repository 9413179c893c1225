"""Sliders fitted to one projected garment (gan.latent.local) and the Generate tab's use of them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gan.latent.attributes import applicable_classes, measure_attributes
from gan.latent.directions import LABEL_STEP
from gan.latent.effects import CHECK, render_batch
from gan.latent.local import class_sliders, fit_local_sliders, reference_of

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "assets" / "examples"
GARMENTS = sorted(EXAMPLES.glob("real_*.png")) + sorted(EXAMPLES.glob("photo_like_*"))


@pytest.fixture(scope="module")
def shipped():
    from gan.app.context import load_context
    ctx = load_context(local_dir=str(ROOT / "checkpoints"))
    if ctx.directions is None or reference_of(ctx.directions) is None:
        pytest.skip("the shipped model folder has no directions with a real-image reference")
    return ctx


def _passes(G, z: torch.Tensor, label: int, dz: torch.Tensor, de: torch.Tensor | None, slider: str, ref,
            class_names: list[str]) -> bool:
    """The slider check on one garment: measured here, apart from the fitting's own bookkeeping."""
    zz, y = torch.stack([z, z + dz]), torch.tensor([label, label])
    emb = None if de is None else torch.stack([torch.zeros_like(de), de])
    v = measure_attributes(render_batch(G, zz, y, emb_offset=emb))
    ch = {a: float(v[a][1] - v[a][0]) / ref.unit(a, label)
          for a in ref.sd if label in applicable_classes(a, class_names)}
    worst = max(abs(x) for a, x in ch.items() if a != slider)
    return ch[slider] >= CHECK.own and worst <= CHECK.leak * ch[slider]


def test_fitted_sliders_pass_the_check_on_more_real_garments(shipped):
    """Six example garments (real test images and photo-like shots), projected as the app projects them: the
    sliders fitted to each garment pass the per-garment slider check more often than the directions' own."""
    from gan.app.project import project_input
    from gan.classifier import metric_classifier
    d, names = shipped.directions, list(shipped.model.class_names)
    ref, clf = reference_of(d), metric_classifier(shipped.model)
    before = shipped.model.generator.state_dict()
    before = {k: v.clone() for k, v in before.items()}
    own = fitted = pairs = 0
    for path in GARMENTS:
        p = project_input(shipped, str(path), "auto", method="tune", plot=False)
        z, c = torch.tensor(p.endpoint.to_state()["z"]), int(p.endpoint.label)
        local = fit_local_sliders(p.generator, z, c, d, names, classifier=clf)
        assert local is not None and set(local.steps) == set(class_sliders(d, c)) and local.label == c
        for s in local.steps:
            e = d.embedding_steps(s, c, 1)
            de = None if e is None else LABEL_STEP * e[0]
            own += _passes(p.generator, z, c, LABEL_STEP * d.steps(s, c, 1)[0], de, s, ref, names)
            fitted += _passes(p.generator, z, c, *local.offsets({s: LABEL_STEP}), s, ref, names)
            pairs += 1
            assert local.report[s]["kept"] == "slider" or local.report[s]["after"] != local.report[s]["before"]
    print(f"per-garment slider check on {len(GARMENTS)} garments: directions {own}, fitted {fitted} of {pairs}")
    assert pairs >= 20 and fitted > own
    after = shipped.model.generator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the served weights are never touched


def test_generate_moves_a_projected_garment_with_its_own_sliders(shipped):
    """A pinned projection with its tuned copy: the sliders are fitted once (kept with the copy) and move the
    latent otherwise than the directions do; once the session closes, the directions' own sliders act."""
    from gan.app.generate import garment_sliders, generate_view, make_view, view_latent
    from gan.app.project import project_input
    from gan.app.project_tab import projection_state
    from gan.app.tuned import TUNED
    p = project_input(shipped, str(EXAMPLES / "real_sneaker_test9.png"), "auto", method="tune", plot=False)
    st = projection_state(p, "local-test")
    label = shipped.model.class_names[p.endpoint.label]
    first = class_sliders(shipped.directions, p.endpoint.label)[0]
    probe = make_view(shipped, None, label, 1.0, {first: 1.0}, base=st["z"], tuned=st["tuned"])
    local = garment_sliders(shipped, probe)
    assert local is not None
    slider = next(s for s, r in local.report.items() if r["kept"] != "slider")  # one the fitting changed
    pinned = make_view(shipped, None, label, 1.0, {slider: 2.0}, base=st["z"], tuned=st["tuned"])
    plain = make_view(shipped, None, label, 1.0, {slider: 2.0}, base=st["z"])
    assert garment_sliders(shipped, pinned) is local  # fitted once, kept with the copy
    assert garment_sliders(shipped, plain) is None
    moved, still = view_latent(shipped, pinned), view_latent(shipped, plain)
    assert not torch.allclose(moved, still)
    assert torch.allclose(moved, torch.tensor(st["z"]) + local.offsets({slider: 2.0})[0], atol=1e-5)
    zero = make_view(shipped, None, label, 1.0, {}, base=st["z"], tuned=st["tuned"])
    assert generate_view(shipped, pinned).image.tobytes() != generate_view(shipped, zero).image.tobytes()
    TUNED.drop_session("local-test")
    assert garment_sliders(shipped, pinned) is None and torch.allclose(view_latent(shipped, pinned), still)


def test_the_tuned_store_keeps_what_was_computed_from_a_copy():
    from gan.app.tuned import TunedStore
    store, calls = TunedStore(capacity=2), []
    key = store.put("A", torch.nn.Linear(1, 1))
    compute = lambda G: calls.append(G) or len(calls)  # noqa: E731
    assert store.memo(key, "x", compute) == 1 and store.memo(key, "x", compute) == 1 and len(calls) == 1
    assert store.memo(key, "y", compute) == 2  # another name: computed again
    assert store.memo("unknown", "x", compute) is None and len(calls) == 2
    store.drop_session("A")
    assert store.memo(key, "x", compute) is None  # gone with its copy
