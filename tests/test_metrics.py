"""Metrics (gan.metrics), the feature classifier, and the sample / evaluate command lines."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from gan import GAN
from gan.classifier import DEFAULT_PATH, config_path, load_classifier, optional_classifier, predict
from gan.data import FASHION_MNIST_CLASSES, load_dataset, to_uint8
from gan.evalreport import class_table, evaluation_markdown, metric_table
from gan.evaluate import read_samples
from gan.metrics import (ClassifierFeatures, compute_references, distance_summary, embed, fid, generate_uint8,
                         inception_score, kid, memorization_verdict, nearest_train_distances, precision_recall,
                         references_path, shipped_references_path, training_evaluator)
from gan.models import seed_latents
from gan.sample import sample_images

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def test_set():
    return load_dataset("fashion-mnist", split="test")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = GAN(generator={"width": 8, "num_classes": 10}, discriminator={"width": 8, "num_classes": 10},
                class_names=FASHION_MNIST_CLASSES)
    path = tmp_path_factory.mktemp("tiny")
    model.save_pretrained(path)
    return path


def test_fid_is_zero_for_a_set_against_itself_and_grows_with_a_shift():
    x = torch.randn(2000, 16, generator=torch.Generator().manual_seed(0)).double()
    assert fid(x, x) < 1e-6
    assert fid(x, x + 1.0) == pytest.approx(16.0, rel=1e-6)  # |mean shift|^2 = 16, same covariance
    assert fid(x, 2 * x) > 1.0


def test_fid_matches_torchmetrics_on_images_and_the_scipy_formula(test_set):
    """Precomputed features give the same FID as torchmetrics running the classifier wrapper on uint8 images."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    real, fake = test_set.images[:600], test_set.images[600:1200].flip(-1)  # mirrored clothes: a mild shift
    m = FrechetInceptionDistance(feature=ClassifierFeatures(load_classifier()))
    m.update(real, real=True)
    m.update(fake, real=False)
    fr, ff = embed(real)[0], embed(fake)[0]
    ours = fid(fr, ff)
    assert ours > 0.1
    assert ours == pytest.approx(float(m.compute()), rel=1e-3)
    a, b = fr.numpy(), ff.numpy()
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    ref = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean)
    assert ours == pytest.approx(ref, rel=1e-3)


def test_kid_is_near_zero_for_the_same_distribution_and_larger_for_a_shift():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(1000, 8, generator=g), torch.randn(1000, 8, generator=g)
    same, _ = kid(x, y, subset_size=500, subsets=10)
    shifted, _ = kid(x, y + 1.0, subset_size=500, subsets=10)
    assert abs(same) < 0.05 < shifted
    assert kid(x, y + 1.0, subset_size=500, subsets=10) == kid(x, y + 1.0, subset_size=500, subsets=10)  # seeded


def test_precision_recall_identical_disjoint_and_dropped_modes():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 8, generator=g)
    assert precision_recall(x, x.clone()) == (1.0, 1.0)
    assert precision_recall(x, x + 100.0) == (0.0, 0.0)
    centers = torch.tensor([[10.0] * 8, [-10.0] * 8, [10.0, -10.0] * 4, [-10.0, 10.0] * 4])
    real = centers[torch.arange(1000) % 4] + torch.randn(1000, 8, generator=g)
    all_modes = centers[torch.arange(1000) % 4] + torch.randn(1000, 8, generator=g)
    two_modes = centers[torch.arange(1000) % 2] + torch.randn(1000, 8, generator=g)  # drops 2 of 4 modes
    p_all, r_all = precision_recall(real, all_modes)
    p, r = precision_recall(real, two_modes)
    assert p > 0.9 * p_all and r < 0.6 * r_all


def test_inception_score_bounds():
    k, n = 10, 500
    uniform = torch.full((n, k), -np.log(k)).double()
    assert inception_score(uniform) == pytest.approx(1.0)
    confident = torch.full((n, k), -30.0).double()
    confident[torch.arange(n), torch.arange(n) % k] = 0.0
    assert inception_score(confident) == pytest.approx(10.0, rel=1e-3)
    collapsed = confident[torch.arange(n) % k == 0]
    assert inception_score(collapsed) == pytest.approx(1.0, rel=1e-3)
    rnd = torch.log_softmax(torch.randn(n, k, generator=torch.Generator().manual_seed(0)) * 3, 1).double()
    assert 1.0 < inception_score(rnd) < 10.0


def test_memorization_check_flags_copies_of_training_images(test_set):
    train = load_dataset("fashion-mnist", split="train").images[:3000]
    copies = nearest_train_distances(train[:200], train)
    assert copies.max() < 1e-3
    test_summary = distance_summary(nearest_train_distances(test_set.images[:200], train))
    assert memorization_verdict(distance_summary(copies), test_summary).startswith("closer than real test images")
    # slightly perturbed copies (every pixel off by up to 4 grey levels) still count as copies
    noisy = (train[:200].int() + torch.randint(-4, 5, train[:200].shape, generator=torch.Generator().manual_seed(0)))
    noisy_d = nearest_train_distances(noisy.clamp(0, 255).to(torch.uint8), train)
    assert memorization_verdict(distance_summary(noisy_d), test_summary) != "no closer than real test images"
    other = distance_summary(nearest_train_distances(test_set.images[200:400], train))
    assert memorization_verdict(other, test_summary) == "no closer than real test images"


def test_shipped_classifier_classifies_test_images(test_set):
    model = load_classifier()
    assert load_classifier() is model  # cached
    assert not model.training
    acc = (predict(model, test_set.images[:200]) == test_set.labels[:200]).float().mean().item()
    assert acc >= 0.90
    assert DEFAULT_PATH.stat().st_size < 1_000_000
    assert config_path(DEFAULT_PATH).is_file()
    assert DEFAULT_PATH.parent == ROOT / "gan" / "assets" / "classifier"  # package data, not a model folder
    assert not (ROOT / "checkpoints" / DEFAULT_PATH.name).exists()
    assert optional_classifier() == (model, "ok")
    missing, why = optional_classifier(ROOT / "nowhere.safetensors")
    assert missing is None and "nowhere.safetensors not found" in why


def test_shipped_reference_statistics_answer_without_computing(monkeypatch, tmp_path):
    """The references of the shipped evaluation (10k images) come from the package, read-only, offline."""
    monkeypatch.setenv("GAN_CACHE_DIR", str(tmp_path))
    shipped = json.loads(shipped_references_path().read_text())
    assert "n=10000,seed=0" in shipped["entries"]
    monkeypatch.setattr("gan.metrics._reference_entry", lambda *a: pytest.fail("recomputed shipped references"))
    assert compute_references(10000) == shipped["entries"]["n=10000,seed=0"]
    assert references_path().parent == tmp_path / "metric_references" and not references_path().exists()


def test_metrics_sampling_follows_the_seed_rule(tiny_model):
    """gan.metrics and gan.sample draw their latents and labels with seed_latents, like GAN.generate."""
    model = GAN.from_pretrained(tiny_model)
    images, labels = generate_uint8(model.generator, 30, seed=5)
    assert torch.equal(labels, seed_latents(5, 30, model.z_dim, 10)[1])
    assert torch.equal(images, to_uint8(model.generate(30, seed=5)))
    sampled, sampled_labels = sample_images(model, 30, seed=5)
    assert np.array_equal(sampled, images[:, 0].numpy()) and np.array_equal(sampled_labels, labels.numpy())


def test_training_evaluator_returns_the_contract_keys(tiny_model):
    class Cfg:
        eval_samples = 300
        data_dir = None
    G = GAN.from_pretrained(tiny_model).generator
    res = training_evaluator(Cfg())(G)
    assert {"fid", "kid", "precision", "recall"} <= set(res)
    assert all(np.isfinite(v) for v in res.values())
    assert res["fid"] > 1.0  # an untrained generator is far from Fashion-MNIST
    assert 0.0 <= res["label_accuracy"] <= 1.0


def test_metric_table_has_one_row_per_model_and_reference():
    row = {"fid": 12.345, "kid": 0.0021, "precision": 0.7, "recall": 0.5, "inception_score": 8.0,
           "coverage_min": 0.08, "class_fid_mean": 20.0, "label_accuracy": None}
    ev = {"metrics": row, "references": {"train": {**row, "fid": 0.5}, "blur": row}, "n_samples": 300, "seed": 1}
    lines = metric_table(ev, model_name="model").splitlines()
    assert len(lines) == 5 and lines[2].startswith("| model | 12.35 |")
    assert "| real train images (floor) | 0.50" in lines[3]
    assert lines[0].startswith("| | FID ↓ | KID ×1000 ↓ | precision ↑") and "2.10" in lines[2]  # KID shown x1e3
    assert "label accuracy" not in lines[0]  # a column that no row has is dropped
    assert metric_table({"fid": 3.0, "fid_std": 0.5, "num_samples": 10}) == (
        "| | FID ↓ |\n|---|---|\n| this model | 3.00 ± 0.50 |")  # flat eval.json: counts are not metrics
    assert metric_table({}) == ""
    assert metric_table({"rows": [{"name": "m", "fid": 1.0}, {"name": "ref", "fid": 0.5}]}).endswith(
        "| this model | 1.00 |\n| ref | 0.50 |")  # the first row is the model
    md = evaluation_markdown({**ev, "memorization": {"verdict": "no closer than real test images"}})
    assert md.endswith("_300 samples, seed 1._\n\nMemorization: no closer than real test images.")
    assert class_table({"class_fid": {"Bag": 11.0, "Coat": 8.25}, "coverage": {"Bag": 0.5, "Coat": None}}) == (
        "| class | FID within class | share of samples |\n|---|---|---|\n| Bag | 11 | 0.5 |\n| Coat | 8.25 | – |")


def test_sample_cli_writes_images_in_fashion_mnist_convention(tiny_model, tmp_path):
    out = tmp_path / "s.npz"
    r = run_cli("gan.sample", "--model", str(tiny_model), "--n", "12", "--out", str(out), "--seed", "3")
    assert r.returncode == 0, r.stderr
    data = np.load(out)
    images, labels = data["images"], data["labels"]
    assert images.shape == (12, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (12,) and labels.min() >= 0 and labels.max() <= 9
    expected = to_uint8(GAN.from_pretrained(tiny_model).generate(12, seed=3, labels=torch.as_tensor(labels)))
    assert np.array_equal(images, expected[:, 0].numpy())
    r = run_cli("gan.sample", "--model", str(tiny_model), "--n", "5", "--out", str(out), "--label", "7")
    assert r.returncode == 0 and (np.load(out)["labels"] == 7).all()


@pytest.mark.parametrize("model, args, message", [
    ("tiny", ["--n", "4", "--label", "10"], "--label 10 is out of range"),
    ("tiny", ["--n", "0"], "--n must be >= 1"),
    ("missing", ["--n", "4"], "no such model folder"),
])
def test_sample_cli_errors(tiny_model, tmp_path, model, args, message):
    folder = str(tiny_model) if model == "tiny" else str(tmp_path / "nope")
    r = run_cli("gan.sample", "--model", folder, "--out", str(tmp_path / "x.npz"), *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.npz").exists()


def test_read_samples_rejects_bad_files(tmp_path):
    good = np.zeros((12, 28, 28), np.uint8)
    cases = {"float.npz": {"images": good.astype(np.float32)}, "shape.npz": {"images": np.zeros((4, 32, 32), np.uint8)},
             "key.npz": {"pictures": good}, "labels.npz": {"images": good, "labels": np.zeros(3, np.int64)},
             "few.npz": {"images": good[:3]}}
    messages = {"float.npz": "must be uint8", "shape.npz": "(N, 28, 28)", "key.npz": "no 'images' array",
                "labels.npz": "'labels' must be integers of shape (12,)",
                "few.npz": "need at least 10 images"}
    for name, arrays in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(ValueError) as e:
            read_samples(tmp_path / name)
        assert messages[name] in str(e.value)
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="not an .npz file"):
        read_samples(tmp_path / "text.npz")
    images, labels = read_samples(_write(tmp_path / "ok.npz", good[:, None], np.arange(12)))
    assert images.shape == (12, 1, 28, 28) and labels.tolist() == list(range(12))


def _write(path: Path, images: np.ndarray, labels: np.ndarray | None = None) -> Path:
    np.savez(path, images=images, **({} if labels is None else {"labels": labels}))
    return path


def test_evaluate_cli_on_samples_and_on_a_bad_file(tmp_path, test_set):
    # a classifier given with --classifier (a copy of the shipped one); references are cached in GAN_CACHE_DIR
    (tmp_path / "clf").mkdir()
    for f in (DEFAULT_PATH, config_path(DEFAULT_PATH)):
        shutil.copy(f, tmp_path / "clf" / f.name)
    clf = str(tmp_path / "clf" / DEFAULT_PATH.name)
    shipped_before = sorted(p.name for p in DEFAULT_PATH.parent.iterdir())
    env = {"GAN_CACHE_DIR": str(tmp_path / "cache")}
    samples = _write(tmp_path / "real.npz", test_set.images[:300, 0].numpy(), test_set.labels[:300].numpy())
    r = run_cli("gan.evaluate", "--samples", str(samples), "--classifier", clf, env=env)
    assert r.returncode == 0, r.stderr
    assert "| real train images (floor) |" in r.stdout and "no closer than real test images" in r.stdout
    model_row = next(line for line in r.stdout.splitlines() if line.startswith("| model |"))
    label_acc = float(model_row.rstrip(" |").split("|")[-1])
    assert label_acc >= 0.85  # real test images carry their true labels
    cached = list((tmp_path / "cache" / "metric_references").glob("*.json"))
    assert len(cached) == 1 and "n=300,seed=0" in json.loads(cached[0].read_text())["entries"]
    assert sorted(p.name for p in (tmp_path / "clf").iterdir()) == ["classifier.json", "classifier.safetensors"]
    assert sorted(p.name for p in DEFAULT_PATH.parent.iterdir()) == shipped_before  # the package is read-only
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((10, 28, 28), np.float32))
    r = run_cli("gan.evaluate", "--samples", str(bad), "--classifier", clf, env=env)
    assert r.returncode == 2 and "must be uint8" in r.stderr and "Traceback" not in r.stderr
