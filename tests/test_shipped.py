"""The shipped model in checkpoints/: complete, loadable offline, consistent, small, and as good as its card says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import numpy as np
import torch

from gan import GAN
from gan.data import FASHION_MNIST_CLASSES
from gan.latent import load_directions
from gan.hub import EMBEDDED_DIR, MODEL_FILES, source_from_env
from gan.scoring import load_calibration

pytestmark = pytest.mark.skipif(not (EMBEDDED_DIR / "config.json").is_file(), reason="no shipped model yet")
MIN_SLIDERS = 3  # attribute sliders per class; fewer only where docs/sliders.md says why
FEWER: dict[str, int] = {}  # every class has three; docs/sliders.md says how


@pytest.fixture(scope="module")
def shipped() -> GAN:
    return GAN.from_pretrained(str(EMBEDDED_DIR)).eval()


def test_folder_is_complete_and_small() -> None:
    for name in (*MODEL_FILES, "README.md", "samples.png", "progress.gif", "curves.png", "eval.json",
                 "directions.json", "calibration.json", "training_options.json", "metrics.jsonl"):
        assert (EMBEDDED_DIR / name).is_file(), f"checkpoints/{name} is missing"
    assert (EMBEDDED_DIR / "generator.safetensors").stat().st_size < 10_000_000, "G must stay well under 10 MB"
    assert not list(EMBEDDED_DIR.glob("*.pt")) and not list(EMBEDDED_DIR.glob("*.bin")), "no pickles are shipped"


def test_the_app_serves_it_when_nothing_else_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GAN_MODEL_DIR", "GAN_MODEL_REPO", "GAN_MODEL_REVISION"):
        monkeypatch.delenv(var, raising=False)
    src = source_from_env()
    assert src.kind == "embedded" and Path(src.folder).resolve() == EMBEDDED_DIR.resolve()


def test_it_is_class_conditional_fashion_mnist_and_deterministic(shipped: GAN) -> None:
    assert shipped.num_classes == 10 and list(shipped.class_names) == FASHION_MNIST_CLASSES
    a, b = shipped.generate(4, seed=7, labels=[0, 1, 8, 9]), shipped.generate(4, seed=7, labels=[0, 1, 8, 9])
    assert a.shape == (4, 1, 28, 28) and torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1 and a.std() > 0.1


def test_directions_and_calibration_belong_to_these_weights(shipped: GAN) -> None:
    d = load_directions(EMBEDDED_DIR, z_dim=shipped.z_dim)
    assert d is not None and len(d.names) >= 8
    norms = d.vectors.norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-4)
    cal = load_calibration(EMBEDDED_DIR)  # None when stale (made for other discriminator weights)
    assert cal is not None and cal.ood is not None
    # the game's D ends near a coin flip (AUC ~0.5, as the theory says); its Platt scaling must then say ~1/2
    assert 0.4 < cal.metrics["auc"] <= 1.0 and cal.metrics["ece"] < 0.05


def test_every_class_has_attribute_sliders_that_passed_their_check(shipped: GAN) -> None:
    """What directions.json says each attribute slider does for each class it acts on meets the check (the
    benchmark re-measures it on unseen seeds), and every class gets at least MIN_SLIDERS of them (FEWER lists the exceptions)."""
    from gan.latent.effects import CHECK
    d = load_directions(EMBEDDED_DIR, z_dim=shipped.z_dim)
    attrs = [n for n, k in zip(d.names, d.kinds) if k == "attribute"]
    for c, cname in enumerate(FASHION_MNIST_CLASSES):
        acting = [n for n in attrs if d.acts_on(n, c)]
        assert len(acting) >= FEWER.get(cname, MIN_SLIDERS), (cname, acting)
        for n in acting:
            info = d.class_info[d.index[n]][cname]
            assert info["own_sd"] >= CHECK.own and info["class_kept"] >= CHECK.kept, (cname, n, info)
            assert abs(info["largest_other"][1]) <= CHECK.leak * info["own_sd"], (cname, n, info)


def test_the_critic_belongs_to_these_weights_and_tells_real_from_generated(shipped: GAN) -> None:
    """Measured now (400 real test images vs 400 fresh samples), not read back from critic.json."""
    from gan.data import load_dataset, to_float
    from gan.scoring import load_critic, roc_auc, score_images
    critic = load_critic(EMBEDDED_DIR)  # a stale calibration (other weights) would be None here
    assert critic is not None and critic.calibration is not None
    assert (EMBEDDED_DIR / "critic.safetensors").stat().st_size < 2_000_000
    test = load_dataset("fashion-mnist", split="test", download=False)
    real = to_float(test.images[torch.randperm(len(test), generator=torch.Generator().manual_seed(5))[:400]])
    fake = shipped.generate(400, seed=424_242)
    r, f = score_images(shipped, real, critic=critic), score_images(shipped, fake, critic=critic)
    auc = roc_auc([x.critic_logit for x in r], [x.critic_logit for x in f])
    game = roc_auc([x.logit for x in r], [x.logit for x in f])
    assert auc > 0.97 and auc > game + 0.2, (auc, game)
    assert abs(auc - critic.auc) < 0.03, "the recorded held-out AUC does not match a live measurement"


def test_the_verdict_calls_other_generators_samples_generated_and_real_images_real(shipped: GAN) -> None:
    """Measured now through score_images with every signal: the zoo's unseen test samples vs real test images."""
    from gan.data import load_dataset, to_float
    from gan.scoring import load_calibration, load_critic, roc_auc, score_images
    from gan.scoring.detector import load_detector
    from gan.zoo import load_zoo
    det = load_detector(EMBEDDED_DIR)  # None when made for other weights
    assert det is not None and (EMBEDDED_DIR / "detector.safetensors").stat().st_size < 16_000_000  # bank: 15 MB
    from gan.zoo import SEALED, SEALED_DIR
    assert not set(det.info["families"]) & set(SEALED)  # the sealed families stay a clean estimate
    assert set(load_zoo(SEALED_DIR)) == set(SEALED)  # and their samples ship, for benchmarks/critic.py
    kw = dict(critic=load_critic(EMBEDDED_DIR), calibration=load_calibration(EMBEDDED_DIR), detector=det)
    test = load_dataset("fashion-mnist", split="test", download=False)
    real = score_images(shipped, to_float(test.images[torch.randperm(len(test), generator=torch.Generator()
                                                                        .manual_seed(6))[:300]]), **kw)
    assert all(r.scorer == "combined" for r in real)
    assert np.mean([r.verdict != "real" for r in real]) <= 0.08  # real images called generated (or unlike)
    for name, fam in load_zoo().items():
        res = score_images(shipped, to_float(fam.test[:100].clone()), **kw)
        assert all(r.verdict != "real" or r.answer_p_real < 0.99 or not r.disagree for r in res)
        assert all(r.verdict != "real" for r in res if r.ood_distance is not None and r.ood
                   and r.ood_distance > kw["calibration"].ood["distance_threshold"])
        auc = roc_auc([r.answer_p_real for r in real], [r.answer_p_real for r in res])
        assert auc > 0.9, (name, auc)  # families it learned from, on their unseen test split


@pytest.mark.slow
def test_live_metrics_meet_the_quality_bars(shipped: GAN) -> None:
    """Measured now on these weights (2,000 samples), not read back from the committed eval.json."""
    from gan.metrics import evaluate_model
    ev = evaluate_model(shipped, n=2000, n_ref=10_000)  # references: the shipped 10,000-image statistics
    m, refs = ev["metrics"], ev["references"]
    for ref in ("blur", "noise"):
        assert m["fid"] < refs[ref]["fid"] / 5
        assert m["precision"] > refs[ref]["precision"] and m["recall"] > refs[ref]["recall"]
    recorded = json.loads((EMBEDDED_DIR / "eval.json").read_text())["metrics"]
    assert m["fid"] < recorded["fid"] + 1.0, "FID is far from what the model card records"
    assert min(ev["coverage"].values()) >= 0.07
    assert m["label_accuracy"] >= 0.88
    mem = ev["memorization"]
    assert mem["samples"]["mean"] >= mem["test"]["mean"] * 0.95


def test_samples_are_recognised_as_the_class_asked_for(shipped: GAN) -> None:
    """A live check of the recorded label accuracy (small n): the weights on disk are the evaluated ones."""
    from gan.classifier import load_classifier
    clf = load_classifier()
    y = torch.arange(10).repeat_interleave(40)
    with torch.no_grad():
        pred = clf(shipped.generate(len(y), seed=123, labels=y)).argmax(dim=1)
    assert (pred == y).float().mean() > 0.85


def test_the_score_tabs_generated_examples_come_from_these_weights(shipped: GAN, tmp_path: Path) -> None:
    """The critic detects *this* generator: examples labelled 'generated' must be its samples, not a past model's."""
    import numpy as np
    from PIL import Image
    from gan.app.examples import EXAMPLES_DIR, write_examples
    fresh = {p.name: p for p in write_examples(tmp_path, shipped) if p.name.startswith("generated_")}
    shipped_files = sorted(p.name for p in EXAMPLES_DIR.glob("generated_*.png"))
    assert shipped_files == sorted(fresh), "rerun: python -m gan.app write-examples checkpoints"
    for name, p in fresh.items():
        a = np.asarray(Image.open(EXAMPLES_DIR / name), dtype=np.int16)
        b = np.asarray(Image.open(p), dtype=np.int16)
        assert a.shape == b.shape and np.abs(a - b).max() <= 1, f"assets/examples/{name} is not this model's sample"
