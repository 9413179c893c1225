"""Metrics (gan.metrics), the feature classifier, and the sample / evaluate command lines."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from gan import GAN
from gan.classifier import DEFAULT_PATH, config_path, load_classifier, predict
from gan.data import FASHION_MNIST_CLASSES, load_dataset, to_uint8
from gan.evaluate import read_samples
from gan.metrics import (ClassifierFeatures, distance_summary, embed, fid, format_table, inception_score, kid,
                         memorization_verdict, nearest_train_distances, precision_recall, training_evaluator)

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


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


def test_format_table_has_one_row_per_model_and_reference():
    row = {"fid": 12.345, "kid": 0.0021, "precision": 0.7, "recall": 0.5, "inception_score": 8.0,
           "coverage_min": 0.08, "class_fid_mean": 20.0, "label_accuracy": None}
    table = format_table({"metrics": row}, {"train": {**row, "fid": 0.5}, "blur": row})
    lines = table.splitlines()
    assert len(lines) == 5 and "12.35" in lines[2] and "| real train images (floor) | 0.50" in lines[3]
    assert "2.10" in lines[2]  # KID shown x1e3
    assert "label acc." not in lines[0]  # a column that no row has is dropped


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
    # references are cached next to the classifier: use a copy so the shipped cache is left alone
    for f in (DEFAULT_PATH, config_path(DEFAULT_PATH)):
        shutil.copy(f, tmp_path / f.name)
    clf = str(tmp_path / DEFAULT_PATH.name)
    samples = _write(tmp_path / "real.npz", test_set.images[:300, 0].numpy(), test_set.labels[:300].numpy())
    r = run_cli("gan.evaluate", "--samples", str(samples), "--classifier", clf)
    assert r.returncode == 0, r.stderr
    assert "| real train images (floor) |" in r.stdout and "no closer than real test images" in r.stdout
    model_row = next(line for line in r.stdout.splitlines() if line.startswith("| model |"))
    label_acc = float(model_row.rstrip(" |").split("|")[-1])
    assert label_acc >= 0.85  # real test images carry their true labels
    assert (tmp_path / "metric_references.json").is_file()
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((10, 28, 28), np.float32))
    r = run_cli("gan.evaluate", "--samples", str(bad), "--classifier", clf)
    assert r.returncode == 2 and "must be uint8" in r.stderr and "Traceback" not in r.stderr
