"""Discriminator scoring: calibration, percentiles, OOD statistics, saliency, nearest training images, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan import GAN
from gan import scoring
from gan.scoring import cli as scoring_cli
from gan.data import FASHION_MNIST_CLASSES, load_dataset, to_float
from gan.scoring import (Calibration, calibrate, d_logits_all_classes, fit_platt, load_calibration,
                         nearest_training_images, overlay, roc_auc, saliency_map, score_images, write_calibration)

ROOT = Path(__file__).resolve().parent.parent


def tiny_gan(num_classes: int = 10, seed: int = 0) -> GAN:
    torch.manual_seed(seed)
    return GAN(generator={"width": 8, "num_classes": num_classes},
               discriminator={"width": 8, "num_classes": num_classes},
               class_names=FASHION_MNIST_CLASSES if num_classes else None)


def train_d_briefly(model: GAN, steps: int = 40) -> GAN:
    """A few D steps (BCE, G fixed) so D separates real from generated: AUC must then be high."""
    real = load_dataset("fashion-mnist", split="train", download=False)
    x_real, y_real = to_float(real.images[:1024]), real.labels[:1024]
    D = model.discriminator.train()
    opt = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.5, 0.999))
    g = torch.Generator().manual_seed(0)
    for step in range(steps):
        idx = torch.randint(0, len(x_real), (64,), generator=g)
        y = torch.randint(0, max(model.num_classes, 1), (64,), generator=g)
        fake = model.generate(64, seed=step, labels=y if model.num_classes else None)
        yr = y_real[idx] if model.num_classes else None
        yf = y if model.num_classes else None
        loss = (F.softplus(-D(x_real[idx], yr)) + F.softplus(D(fake, yf))).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return model


@pytest.fixture(scope="module")
def model() -> GAN:
    return train_d_briefly(tiny_gan())


@pytest.fixture(scope="module")
def cal(model: GAN) -> Calibration:
    return calibrate(model, n_real=600, n_fake=600, seed=0, n_ood_train=1000)


@pytest.fixture(scope="module")
def test_images() -> torch.Tensor:
    data = load_dataset("fashion-mnist", split="test", download=False)
    return to_float(data.images[:8])


# ---- building blocks ----------------------------------------------------------------------------
def test_roc_auc_against_pairwise_definition_and_edge_cases():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(1, 1, 300), rng.normal(0, 1, 200)
    pos[:50] = np.round(pos[:50])  # some ties
    neg[:50] = np.round(neg[:50])
    ref = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (300 * 200)
    assert roc_auc(pos, neg) == pytest.approx(ref, abs=1e-6)
    assert roc_auc([2, 3], [0, 1]) == 1.0 and roc_auc([0, 1], [2, 3]) == 0.0 and roc_auc([1, 1], [1, 1]) == 0.5
    with pytest.raises(ValueError, match="both classes"):
        roc_auc([], [1.0])


def test_fit_platt_recovers_known_parameters():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, 10_000)
    t = (rng.random(x.size) < 1 / (1 + np.exp(-(0.7 * x - 2.5)))).astype(float)
    a, b = fit_platt(x, t)
    assert a == pytest.approx(0.7, abs=0.06) and b == pytest.approx(-2.5, abs=0.25)
    a, b = fit_platt(-x, t)  # anti-correlated scores: a is clamped at >= 0 (monotone), never negative
    assert 0.0 <= a < 1e-3


def test_all_class_logits_match_the_discriminator(model: GAN, test_images: torch.Tensor):
    D = model.discriminator
    with torch.no_grad():
        fast = d_logits_all_classes(D, test_images)
        slow = torch.stack([D(test_images, torch.full((8,), c)) for c in range(10)], dim=1)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)


# ---- calibration ----------------------------------------------------------------------------------
def test_calibration_is_valid_and_monotone(cal: Calibration):
    m = cal.metrics
    assert 0.0 <= m["auc"] <= 1.0 and 0.0 <= m["accuracy"] <= 1.0 and 0.0 <= m["brier"] <= 1.0
    assert m["auc"] > 0.8, m  # D was trained a little: it must separate real from generated on held-out data
    assert m["brier"] <= m["brier_raw"] + 1e-6 or m["brier"] < 0.2
    assert cal.platt_a > 0.0
    grid = np.linspace(min(cal.real_quantiles + cal.fake_quantiles) - 5, max(cal.real_quantiles + cal.fake_quantiles) + 5, 200)
    p = cal.p_real(grid)
    assert np.all((p >= 0) & (p <= 1)) and np.all(np.diff(p) >= 0) and p[-1] > p[0]
    assert len(cal.real_quantiles) == len(cal.fake_quantiles) == scoring.N_QUANTILES
    assert np.all(np.diff(cal.real_quantiles) >= 0) and np.all(np.diff(cal.fake_quantiles) >= 0)
    assert np.median(cal.real_quantiles) > np.median(cal.fake_quantiles)
    assert cal.label_rule in ("classifier", "max-over-classes")
    assert cal.n_real == 600 and cal.real_split == "test"


def test_percentiles_are_in_range_and_ordered(cal: Calibration):
    lo, hi = cal.real_quantiles[0], cal.real_quantiles[-1]
    xs = np.array([lo - 100, lo, (lo + hi) / 2, hi, hi + 100])
    for pct in (cal.percentile_real(xs), cal.percentile_fake(xs)):
        assert np.all((pct >= 0) & (pct <= 100)) and np.all(np.diff(pct) >= 0)
    assert cal.percentile_real(lo - 100) == 0.0 and cal.percentile_real(hi + 100) == 100.0
    assert cal.percentile_real(float(np.median(cal.real_quantiles))) == pytest.approx(50, abs=0.2)


def test_write_load_round_trip_and_stale_file(model: GAN, tmp_path: Path):
    model.save_pretrained(tmp_path)
    assert load_calibration(tmp_path) is None  # none yet
    path = write_calibration(tmp_path, n_real=200, n_fake=200, n_ood_train=1000)
    assert path == tmp_path / "calibration.json" and path.stat().st_size < 100_000
    cal = load_calibration(tmp_path)
    assert cal is not None and cal.discriminator_sha256 and 0 <= cal.auc <= 1
    assert cal.p_real(1.0) == pytest.approx(Calibration.from_dict(json.loads(path.read_text())).p_real(1.0))
    # new discriminator weights: the file describes another D and must be ignored
    other = tiny_gan(seed=1)
    other.generator.load_state_dict(model.generator.state_dict())
    other.save_pretrained(tmp_path)
    with pytest.warns(UserWarning, match="another discriminator.safetensors"):
        assert load_calibration(tmp_path) is None
    path.write_text("{not json")
    with pytest.warns(UserWarning, match="ignoring"):
        assert load_calibration(tmp_path) is None


def test_cli_writes_calibration_and_prints_auc(model: GAN, tmp_path: Path, capsys):
    model.save_pretrained(tmp_path)
    r = subprocess.run([sys.executable, "-m", "gan.scoring", str(tmp_path), "--n-real", "200", "--n-fake", "200",
                        "--n-ood-train", "1000"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "ROC AUC" in r.stdout and (tmp_path / "calibration.json").is_file()
    auc = float(r.stdout.split("ROC AUC ")[1].split(",")[0])
    assert auc == pytest.approx(load_calibration(tmp_path).auc, abs=1e-4)
    assert scoring_cli.main([str(tmp_path / "missing")]) == 2
    assert "error" in capsys.readouterr().err


# ---- scoring --------------------------------------------------------------------------------------
def test_score_images_conditional(model: GAN, cal: Calibration, test_images: torch.Tensor):
    res = score_images(model, test_images, calibration=cal)
    assert len(res) == 8
    with torch.no_grad():
        for r, x in zip(res, test_images):
            assert r.label_rule == cal.label_rule and 0 <= r.label_used < 10
            assert r.logit == pytest.approx(model.discriminator(x[None], torch.tensor([r.label_used])).item(), abs=1e-4)
            assert r.logit_max >= r.logit - 1e-6 and 0 <= r.label_max < 10
            assert 0 <= r.p_real <= 1 and 0 <= r.p_real_raw <= 1
            assert 0 <= r.percentile_real <= 100 and 0 <= r.percentile_fake <= 100
            json.dumps(r.to_dict())
    given = score_images(model, test_images, labels=3, calibration=cal)
    assert all(r.label_used == 3 and r.label_rule == "given" for r in given)
    assert any("approximate" in n for n in given[0].notes)
    # real test images should look more real to the (briefly trained) D than generated ones
    fake = score_images(model, model.generate(8, seed=123), calibration=cal)
    assert np.mean([r.p_real for r in res]) > np.mean([r.p_real for r in fake])


def test_score_images_unconditional_and_without_calibration(test_images: torch.Tensor):
    m = tiny_gan(num_classes=0)
    res = score_images(m, test_images[:2])
    assert res[0].label_used is None and res[0].label_rule == "unconditional" and res[0].logit_max is None
    assert res[0].p_real is None and res[0].percentile_real is None
    assert res[0].logit == pytest.approx(m.discriminator(test_images[:1]).item(), abs=1e-4)


def test_score_images_rejects_bad_input(model: GAN):
    with pytest.raises(ValueError, match=r"shape \(1, 28, 28\)"):
        score_images(model, torch.zeros(1, 28, 28))
    with pytest.raises(ValueError, match="NaN"):
        score_images(model, torch.full((1, 1, 28, 28), float("nan")))
    with pytest.raises(ValueError, match="labels must be"):
        score_images(model, torch.zeros(2, 1, 28, 28), labels=[0, 10])


# ---- OOD statistics (plumbing with an untrained classifier; real weights below) --------------------
def test_ood_statistics_with_a_classifier(model: GAN, test_images: torch.Tensor, monkeypatch):
    from gan.classifier import FashionClassifier
    torch.manual_seed(0)
    clf = FashionClassifier().eval().requires_grad_(False)  # random weights: exercises the code path only
    monkeypatch.setattr(scoring.analysis, "get_classifier", lambda: clf)  # the one place scoring asks for it
    c = calibrate(model, n_real=300, n_fake=300, n_ood_train=1000)
    assert c.label_rule == "classifier" and c.ood is not None
    means = np.asarray(c.ood["class_means"])
    n_feat = 2 * sum(clf.cfg.widths[:scoring.OOD_STAGES])  # channel mean + std of the early stages
    assert means.shape == (10, n_feat)
    chol = scoring.ood.b64_to_tril(c.ood["precision_cholesky"], n_feat)
    assert np.allclose(chol, np.tril(chol)) and np.all(np.diag(chol) > 0)
    dist, _ = scoring.ood.ood_scores(means, np.eye(10), means, chol)
    np.testing.assert_allclose(dist, 0.0, atol=1e-3)  # each class mean is at distance 0 from itself
    assert 0 <= c.ood["fpr_real"] <= 0.2 and 0 <= c.ood["rate_fake"] <= 1
    assert len(json.dumps(c.to_dict())) < 80_000
    res = score_images(model, test_images, calibration=c)
    with torch.no_grad():
        pred = clf(test_images).argmax(1)
    for r, p in zip(res, pred):
        assert r.pred_class == p.item() == r.label_used and r.pred_name == FASHION_MNIST_CLASSES[r.pred_class]
        assert 0 < r.pred_prob <= 1 and isinstance(r.ood, bool) and r.ood_reason and r.ood_distance >= 0
    assert score_images(model, test_images[:1])[0].ood is None  # no calibration: no thresholds


@pytest.mark.skipif(scoring.classifier_status() != "ok", reason="trained classifier weights not present yet")
def test_ood_with_the_trained_classifier(model: GAN):
    c = calibrate(model, n_real=1000, n_fake=200, n_ood_train=3000)
    assert c.ood["fpr_real"] < 0.06
    data = load_dataset("fashion-mnist", split="test", download=False)
    real = score_images(model, to_float(data.images[-200:]), calibration=c)
    acc = np.mean([r.pred_class == y for r, y in zip(real, data.labels[-200:].tolist())])
    assert acc > 0.85 and np.mean([r.ood for r in real]) < 0.08
    noise = torch.rand(50, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert np.mean([r.ood for r in score_images(model, noise, calibration=c)]) > 0.8
    inverted = -to_float(data.images[:50])  # white background: not what the data set looks like
    assert np.mean([r.ood for r in score_images(model, inverted, calibration=c)]) > 0.8
    blank = torch.full((2, 1, 28, 28), -1.0)
    assert all(r.ood and "unlike every" in r.ood_reason for r in score_images(model, blank, calibration=c))


# ---- saliency ---------------------------------------------------------------------------------------
def test_saliency_map_shape_range_and_side_effects(model: GAN, test_images: torch.Tensor):
    D = model.discriminator
    D.zero_grad(set_to_none=True)
    D.train()  # must be restored; scoring itself runs in eval mode
    s = saliency_map(model, test_images[:1], 2)
    assert D.training
    model.eval()
    assert s.shape == (28, 28) and s.dtype == np.float32
    assert s.min() >= 0 and s.max() == pytest.approx(1.0)
    assert all(p.grad is None for p in D.parameters())
    np.testing.assert_array_equal(s, saliency_map(model, test_images[:1], 2))  # seeded
    assert not np.array_equal(s, saliency_map(model, test_images[:1], 2, seed=1))
    plain = saliency_map(model, test_images[:1], 2, samples=1)
    assert plain.shape == (28, 28) and plain.max() == pytest.approx(1.0)
    assert saliency_map(model, test_images[:1]).shape == (28, 28)  # label from the rule
    with pytest.raises(ValueError, match="label=12"):
        saliency_map(model, test_images[:1], 12)


def test_overlay(test_images: torch.Tensor):
    from PIL import Image
    img = Image.fromarray(((test_images[0, 0].numpy() + 1) * 127.5).round().astype(np.uint8))
    sal = np.zeros((28, 28), np.float32)
    sal[10:18, 10:18] = 1.0
    out = overlay(img, sal)
    assert out.mode == "RGB" and out.size == (224, 224)
    a = np.asarray(out).astype(int)
    gray = np.asarray(img.resize((224, 224), Image.Resampling.NEAREST)).astype(int)
    assert np.array_equal(a[0, 0], [gray[0, 0]] * 3)  # no saliency: the image shows through unchanged
    assert a[112, 112, 0] - a[112, 112, 2] > 100  # warm colours where salient


# ---- nearest training images ----------------------------------------------------------------------
def test_nearest_training_images_finds_itself():
    train = load_dataset("fashion-mnist", split="train", download=False)
    for i in (0, 123, 59_999):
        x = to_float(train.images[i:i + 1])
        images, dist, idx = nearest_training_images(x, k=5)
        assert images.shape == (5, 28, 28) and images.dtype == np.uint8 and dist.shape == idx.shape == (5,)
        assert dist[0] == 0.0 and np.array_equal(images[0], train.images[i, 0].numpy())
        assert i in idx[dist == 0].tolist() and np.all(np.diff(dist) >= 0) and dist[-1] > 0
    noisy = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    _, dist, idx = nearest_training_images(noisy, k=3)
    assert idx[0] == 59_999 and 0 < dist[0] < 0.1
    with pytest.raises(ValueError, match="k=0"):
        nearest_training_images(x, k=0)
