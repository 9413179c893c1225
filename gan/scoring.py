"""Discriminator scoring: how "real" does D find an image, how sure may we be, and why.

    from gan.scoring import calibrate, load_calibration, score_images, saliency_map, nearest_training_images
    cal = load_calibration("checkpoints")                    # written by training / python -m gan.scoring DIR
    [res] = score_images(model, x, calibration=cal)          # x (1, 1, 28, 28) in [-1, 1]
    res.p_real, res.percentile_real, res.pred_name, res.ood  # calibrated P(real), rank among real test images, ...

* **Raw score.** D's logit; sigmoid(logit) is D's own P(real), which a GAN discriminator is not trained to
  make honest (it ends training near 0.5 on everything, or saturated).
* **Calibration** (``calibrate``): D's logits on held-out *test* images (never trained on) and on as many
  generated images; half of each fits Platt scaling P(real) = sigmoid(a * logit + b) with a >= 0
  (monotone), the other half measures ROC AUC, accuracy and Brier score.  Equal numbers of real and fake
  images: the calibrated probability assumes a 50/50 prior.  1001 quantiles of each logit distribution
  give percentiles.  Stored in ``calibration.json`` next to the weights, with the SHA-256 of
  ``discriminator.safetensors`` so a stale file is ignored.
* **Labels for a conditional (projection) D**: its logit depends on y.  Rule, used identically when
  calibrating and scoring: explicit ``labels`` if given, else the metric classifier's predicted class
  (``gan.classifier``), else (no classifier) the class that maximises D's logit.  The max over classes
  is always reported too.
* **Out-of-distribution flag**: Mahalanobis distance (Lee et al. 2018) of the classifier's penultimate
  features to the nearest class mean, with one covariance shared by all classes, both estimated on
  10,000 *training* images.  An image is flagged when that distance exceeds the 99th percentile of real
  test images OR the classifier's max softmax probability is below their 1st percentile (about 2% of
  real test images are flagged; the rate is measured on the held-out half).  The max softmax alone
  misses uniform noise, on which the classifier is confidently wrong.
* **Saliency** (``saliency_map``): SmoothGrad of |d logit / d x|, normalised to [0, 1].
* **Nearest training images** (``nearest_training_images``): exact pixel-space nearest neighbours among
  the 60k training images, to show the generator does not simply copy them.

Command line: ``python -m gan.scoring DIR [--n-real N] [--n-fake N] [--seed S] [--data-dir D]`` writes
DIR/calibration.json and prints the ROC AUC.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import os
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .data import FASHION_MNIST_CLASSES, load_dataset, to_float, to_uint8
from .pretrained import DISCRIMINATOR_FILE, GAN

CALIBRATION_FILE = "calibration.json"
CALIBRATION_VERSION = 1
N_QUANTILES = 1001  # stored quantiles of each logit distribution (0%, 0.1%, ..., 100%)
OOD_DISTANCE_PCT = 99.0  # flag images farther from every class mean than 99% of real test images
OOD_MSP_PCT = 1.0  # ... or on which the classifier is less sure than on 99% of real test images
OOD_TRAIN_IMAGES = 10_000  # training images for the class means and the shared covariance
OOD_STAGES = 2  # early classifier stages whose channel statistics are the OOD features
OOD_SHRINKAGE = 0.01  # covariance + 1% of its mean variance on the diagonal (well conditioned)


# ---- results ------------------------------------------------------------------------------------
@dataclass
class Calibration:
    """Platt scaling of D's logit, held-out metrics, logit quantiles and OOD statistics (calibration.json)."""

    platt_a: float  # P(real) = sigmoid(platt_a * logit + platt_b), platt_a >= 0
    platt_b: float
    real_quantiles: list[float]  # N_QUANTILES quantiles of D's logit on real test images
    fake_quantiles: list[float]  # ... and on generated images
    metrics: dict[str, float]  # on the held-out half: auc, accuracy, brier, ece (+ *_raw for sigmoid(logit))
    label_rule: str  # "unconditional", "classifier" or "max-over-classes" (see the module docstring)
    n_real: int
    n_fake: int
    seed: int
    real_split: str = "test"
    discriminator_sha256: str | None = None
    ood: dict | None = None  # class_means (K, F), precision_cholesky (base64), thresholds, fpr_real, rate_fake
    seconds: float = 0.0
    version: int = CALIBRATION_VERSION

    @property
    def auc(self) -> float:
        return self.metrics["auc"]

    def p_real(self, logit: np.ndarray | float) -> np.ndarray:
        """Calibrated P(real) for D logits (50/50 prior)."""
        z = self.platt_a * np.asarray(logit, dtype=np.float64) + self.platt_b
        return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))

    def percentile_real(self, logit: np.ndarray | float) -> np.ndarray:
        """Percentage of real test images whose logit is below this one, in [0, 100]."""
        return _percentile(self.real_quantiles, logit)

    def percentile_fake(self, logit: np.ndarray | float) -> np.ndarray:
        """Percentage of generated images whose logit is below this one, in [0, 100]."""
        return _percentile(self.fake_quantiles, logit)

    def to_dict(self) -> dict:
        """JSON-serialisable dict (floats rounded to keep the file small)."""
        d = asdict(self)
        d["real_quantiles"] = [round(v, 5) for v in self.real_quantiles]
        d["fake_quantiles"] = [round(v, 5) for v in self.fake_quantiles]
        if self.ood:
            d["ood"] = {**self.ood, "class_means": [[round(v, 5) for v in row] for row in self.ood["class_means"]]}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        """Inverse of ``to_dict``; raises ValueError naming a missing or unknown key."""
        if d.get("version") != CALIBRATION_VERSION:
            raise ValueError(f"calibration version {d.get('version')!r} is not {CALIBRATION_VERSION}")
        try:
            return cls(**d)
        except TypeError as e:
            raise ValueError(f"invalid calibration: {e}") from None

    def summary(self) -> str:
        """One line with the held-out metrics."""
        m = self.metrics
        return (f"ROC AUC {m['auc']:.4f}, accuracy {m['accuracy']:.4f} (raw {m['accuracy_raw']:.4f}), "
                f"Brier {m['brier']:.4f} (raw {m['brier_raw']:.4f}), ECE {m['ece']:.4f} (raw {m['ece_raw']:.4f}) "
                f"on {self.n_real // 2 + self.n_fake // 2} held-out images; labels: {self.label_rule}")


@dataclass
class ScoreResult:
    """D's verdict on one image, with calibrated context when a Calibration is given."""

    logit: float  # D's logit with label_used (conditional D) or without a label
    p_real_raw: float  # sigmoid(logit): D's own, uncalibrated P(real)
    p_real: float | None  # calibrated P(real), 50/50 prior (None without calibration)
    percentile_real: float | None  # % of held-out real test images with a lower logit
    percentile_fake: float | None  # % of generated images with a lower logit
    label_used: int | None  # the y fed to a conditional D (None if unconditional)
    label_rule: str  # how label_used was chosen: "given", "classifier", "max-over-classes", "unconditional"
    logit_max: float | None  # conditional D: max over classes of D(x, y)
    label_max: int | None  # ... and its argmax
    pred_class: int | None  # the metric classifier's prediction (None if it is unavailable)
    pred_name: str | None
    pred_prob: float | None
    ood: bool | None  # out of distribution (None: no classifier or no OOD statistics)
    ood_reason: str
    ood_distance: float | None = None  # Mahalanobis distance to the nearest class mean (classifier features)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-serialisable dict."""
        return asdict(self)


# ---- the classifier (optional) ------------------------------------------------------------------
_CLF_LOCK = threading.Lock()
_CLF_STATE: dict[str, object] = {}


def get_classifier() -> torch.nn.Module | None:
    """The shipped metric classifier (gan.classifier), or None when it is not installed or not trained."""
    with _CLF_LOCK:
        if "model" in _CLF_STATE:
            return _CLF_STATE["model"]  # type: ignore[return-value]
        try:
            from .classifier import load_classifier
            clf = load_classifier()
        except (ImportError, OSError, ValueError, RuntimeError) as e:
            _CLF_STATE["reason"] = f"classifier unavailable ({str(e).splitlines()[0][:160]})"
            return None  # not cached: weights may appear later in this process
        _CLF_STATE["model"] = clf
        return clf


def classifier_status() -> str:
    """'ok' or why the classifier cannot be used."""
    return "ok" if get_classifier() is not None else str(_CLF_STATE.get("reason", "classifier unavailable"))


def _uses_classifier(model: GAN) -> bool:
    g = model.generator.cfg
    return model.dataset == "fashion-mnist" and g.resolution == 28 and g.channels == 1


# ---- forward passes -------------------------------------------------------------------------------
@contextmanager
def _eval_mode(module: torch.nn.Module) -> Iterator[None]:
    """Eval mode for the duration (spectral norm must not run power iterations while scoring)."""
    was = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was)


def d_logits_all_classes(D: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Conditional projection D: logits (B, K) for every class y in one pass (D(x, y) for each y)."""
    h = D.features(x).sum(dim=(2, 3))  # (B, C_last), as in Discriminator.forward
    return D.out(h) + h @ D.embed.weight.t()  # (B, 1) + (B, K)


@torch.no_grad()
def _analyse(model: GAN, x: torch.Tensor, labels: torch.Tensor | None, batch_size: int = 500) -> dict[str, np.ndarray]:
    """D logits (with the label rule), all-class logits, classifier probabilities and features for x (B, C, R, R)."""
    D = model.discriminator
    dev = next(D.parameters()).device
    clf = get_classifier() if _uses_classifier(model) else None
    out: dict[str, list] = {k: [] for k in ("logit", "label", "logit_max", "label_max", "probs", "feats")}
    with _eval_mode(D):
        for i in range(0, x.size(0), batch_size):
            xb = x[i:i + batch_size].to(dev).float()
            probs = feats = None
            if clf is not None:
                xc = xb.to(next(clf.parameters()).device)
                logits, feats = _classifier_forward(clf, xc)
                probs, feats = F.softmax(logits.float(), dim=1).cpu(), feats.float().cpu()  # (b, 10), (b, F)
                out["probs"].append(probs)
                out["feats"].append(feats)
            if not D.conditional:
                out["logit"].append(D(xb).cpu())
                continue
            all_logits = d_logits_all_classes(D, xb).cpu()  # (b, K)
            lmax, amax = all_logits.max(dim=1)
            if labels is not None:
                y = labels[i:i + batch_size].long().cpu()
            elif probs is not None and probs.size(1) == all_logits.size(1):
                y = probs.argmax(dim=1)
            else:
                y = amax
            out["logit"].append(all_logits.gather(1, y[:, None]).squeeze(1))
            out["label"].append(y)
            out["logit_max"].append(lmax)
            out["label_max"].append(amax)
    return {k: torch.cat(v).double().numpy() if k not in ("label", "label_max") else torch.cat(v).numpy()
            for k, v in out.items() if v}


def label_rule(model: GAN, labels_given: bool = False) -> str:
    """Which y a conditional D gets (see the module docstring)."""
    if not model.discriminator.conditional:
        return "unconditional"
    if labels_given:
        return "given"
    clf = get_classifier() if _uses_classifier(model) else None
    return "classifier" if clf is not None and model.num_classes == 10 else "max-over-classes"


# ---- calibration ----------------------------------------------------------------------------------
def roc_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with tied scores counted 1/2) of scores pos vs neg."""
    pos, neg = np.asarray(pos, np.float64).ravel(), np.asarray(neg, np.float64).ravel()
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError(f"roc_auc needs both classes, got {len(pos)} positives and {len(neg)} negatives")
    _, inv, counts = np.unique(np.concatenate([pos, neg]), return_inverse=True, return_counts=True)
    avg_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based average rank of each distinct value
    r_pos = avg_rank[inv[: len(pos)]].sum()
    return float((r_pos - len(pos) * (len(pos) + 1) / 2.0) / (len(pos) * len(neg)))


def fit_platt(logits: np.ndarray, targets: np.ndarray, *, steps: int = 200) -> tuple[float, float]:
    """Platt scaling: (a >= 0, b) minimising the log loss of sigmoid(a * logit + b), by L-BFGS in torch."""
    x = torch.as_tensor(np.asarray(logits, np.float64))
    t = torch.as_tensor(np.asarray(targets, np.float64))
    mu, sd = x.mean(), x.std().clamp_min(1e-12)
    xs = (x - mu) / sd  # standardised for conditioning; mapped back below
    raw_a = torch.zeros((), dtype=torch.float64, requires_grad=True)  # a' = softplus(raw_a) >= 0
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([raw_a, b], lr=1.0, max_iter=steps, tolerance_grad=1e-10, tolerance_change=1e-12,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(F.softplus(raw_a) * xs + b, t)
        loss.backward()
        return loss

    opt.step(closure)
    a_std = F.softplus(raw_a).item()
    a = a_std / float(sd)
    return a, b.item() - a * mu.item()


def _ece(p: np.ndarray, t: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error with equal-width bins."""
    idx = np.minimum((p * bins).astype(int), bins - 1)
    err = 0.0
    for k in range(bins):
        m = idx == k
        if m.any():
            err += m.mean() * abs(p[m].mean() - t[m].mean())
    return float(err)


def _generate(model: GAN, n: int, seed: int, batch_size: int = 500) -> torch.Tensor:
    """n generated images in batches (bounded memory), reproducible from the seed."""
    chunks = []
    for j, i in enumerate(range(0, n, batch_size)):
        chunks.append(model.generate(min(batch_size, n - i), seed=seed * 100_003 + j).cpu())
    return torch.cat(chunks)


def calibrate(model: GAN, *, n_real: int = 5000, n_fake: int = 5000, seed: int = 0,
              data_dir: str | Path | None = None, n_ood_train: int = OOD_TRAIN_IMAGES) -> Calibration:
    """Fit Platt scaling of D on held-out real test images vs generated ones; measure it on a second half."""
    if n_real < 4 or n_fake < 4 or n_ood_train < 100:
        raise ValueError(f"n_real={n_real} and n_fake={n_fake} must be >= 4 and n_ood_train={n_ood_train} >= 100")
    t0 = time.perf_counter()
    gcfg = model.generator.cfg
    split = "test"
    try:
        data = load_dataset(model.dataset, split="test", data_dir=data_dir, resolution=gcfg.resolution,
                            channels=gcfg.channels)
    except Exception as e:
        raise ValueError(f"cannot load the {model.dataset} test images for calibration: {e}") from None
    if model.dataset == "folder":
        split = "train (a folder data set has no test split)"
    gen = torch.Generator().manual_seed(seed)
    n_real = min(n_real, len(data))
    idx = torch.randperm(len(data), generator=gen)[:n_real]
    real = to_float(data.images[idx])
    fake = _generate(model, n_fake, seed)
    rule = label_rule(model)
    r, f = _analyse(model, real, None), _analyse(model, fake, None)

    # (1) Platt scaling on the first half of each, metrics on the second half
    hr, hf = n_real // 2, n_fake // 2
    pr, pf = torch.randperm(n_real, generator=gen).numpy(), torch.randperm(n_fake, generator=gen).numpy()
    fit_x = np.concatenate([r["logit"][pr[:hr]], f["logit"][pf[:hf]]])
    fit_t = np.concatenate([np.ones(hr), np.zeros(hf)])
    a, b = fit_platt(fit_x, fit_t)
    ev_r, ev_f = r["logit"][pr[hr:]], f["logit"][pf[hf:]]
    ev_x = np.concatenate([ev_r, ev_f])
    ev_t = np.concatenate([np.ones(len(ev_r)), np.zeros(len(ev_f))])
    p_cal = 1.0 / (1.0 + np.exp(-np.clip(a * ev_x + b, -500, 500)))
    p_raw = 1.0 / (1.0 + np.exp(-np.clip(ev_x, -500, 500)))
    metrics = {"auc": roc_auc(ev_r, ev_f),
               "accuracy": float(((p_cal >= 0.5) == (ev_t == 1)).mean()),
               "accuracy_raw": float(((p_raw >= 0.5) == (ev_t == 1)).mean()),
               "brier": float(((p_cal - ev_t) ** 2).mean()), "brier_raw": float(((p_raw - ev_t) ** 2).mean()),
               "ece": _ece(p_cal, ev_t), "ece_raw": _ece(p_raw, ev_t),
               "mean_logit_real": float(r["logit"].mean()), "mean_logit_fake": float(f["logit"].mean())}
    metrics = {k: round(v, 6) for k, v in metrics.items()}

    # (2) quantiles for percentiles
    grid = np.linspace(0.0, 1.0, N_QUANTILES)
    real_q = np.quantile(r["logit"], grid).tolist()
    fake_q = np.quantile(f["logit"], grid).tolist()

    # (3) OOD statistics: class means + covariance of training features, thresholds from the real fit half,
    #     false-positive rate on the real held-out half
    ood = None
    if "feats" in r:
        ood = _fit_ood(r, f, pr[:hr], pr[hr:], seed=seed, data_dir=data_dir, n_train=n_ood_train)
    return Calibration(platt_a=a, platt_b=b, real_quantiles=real_q, fake_quantiles=fake_q, metrics=metrics,
                       label_rule=rule, n_real=n_real, n_fake=n_fake, seed=seed, real_split=split, ood=ood,
                       seconds=round(time.perf_counter() - t0, 2))


@torch.no_grad()
def _classifier_forward(clf: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits (B, K), OOD features (B, F)) in one pass of the classifier over x (B, 1, 28, 28) in [-1, 1].

    The OOD features are the per-channel mean and standard deviation of the first OOD_STAGES pooled conv
    stages (texture and intensity statistics). The penultimate embedding is trained to be invariant to
    exactly what makes an image unlike Fashion-MNIST: uniform noise, blank or inverted images land near a
    class mean there, while these early statistics separate all of them from real images (measured on
    5,000 training images: 1% of real test images vs 100% of noise, blank, white and inverted images
    beyond the 99th percentile).
    """
    stats, h, stage = [], x, 0
    for layer in clf.body:
        h = layer(h)
        if isinstance(layer, torch.nn.MaxPool2d) and stage < OOD_STAGES:
            stats += [h.mean(dim=(2, 3)), h.std(dim=(2, 3))]
            stage += 1
    return clf.head(clf.embed(h)), torch.cat(stats, dim=1)


def _classifier_features(clf: torch.nn.Module, x: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
    """OOD features (N, F) float64 for x (N, 1, 28, 28) in [-1, 1] (see _classifier_forward)."""
    dev = next(clf.parameters()).device
    return torch.cat([_classifier_forward(clf, b.to(dev).float())[1].double().cpu()
                      for b in x.split(batch_size)]).numpy()


def _tril_to_b64(m: np.ndarray) -> str:
    return base64.b64encode(m[np.tril_indices(m.shape[0])].astype("<f4").tobytes()).decode("ascii")


def _b64_to_tril(s: str, n: int) -> np.ndarray:
    vals = np.frombuffer(base64.b64decode(s), dtype="<f4").astype(np.float64)
    if vals.size != n * (n + 1) // 2:
        raise ValueError(f"precision_cholesky holds {vals.size} values, expected {n * (n + 1) // 2} for {n} features")
    m = np.zeros((n, n))
    m[np.tril_indices(n)] = vals
    return m


def _ood_scores(feats: np.ndarray, probs: np.ndarray, means: np.ndarray, chol: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Mahalanobis distance to the nearest class mean, max softmax probability) per image.

    chol is the lower Cholesky factor L of the shared precision matrix (P = L L^T), so that
    (f - mu)^T P (f - mu) = ||(f - mu) L||^2.
    """
    z_f, z_mu = feats @ chol, means @ chol  # (N, F), (K, F) in whitened coordinates
    d2 = (z_f ** 2).sum(1)[:, None] - 2.0 * z_f @ z_mu.T + (z_mu ** 2).sum(1)[None]  # (N, K)
    return np.sqrt(np.maximum(d2.min(axis=1), 0.0)), probs.max(axis=1)


def _fit_ood(r: dict, f: dict, fit: np.ndarray, held: np.ndarray, *, seed: int, data_dir: str | Path | None,
             n_train: int) -> dict:
    clf = get_classifier()
    train = load_dataset("fashion-mnist", split="train", data_dir=data_dir)
    idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed + 7))[:n_train]
    feats, y = _classifier_features(clf, to_float(train.images[idx])), train.labels[idx].numpy()
    k = r["probs"].shape[1]
    means = np.stack([feats[y == c].mean(0) for c in range(k)])  # (K, F)
    centred = feats - means[y]
    cov = centred.T @ centred / len(feats)
    cov += OOD_SHRINKAGE * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])
    chol = np.linalg.cholesky(np.linalg.inv(cov))
    chol = _b64_to_tril(_tril_to_b64(chol), chol.shape[0])  # thresholds from exactly the stored (float32) factor
    means = np.round(means, 5)
    dist, msp = _ood_scores(r["feats"][fit], r["probs"][fit], means, chol)
    d_thr, m_thr = float(np.percentile(dist, OOD_DISTANCE_PCT)), float(np.percentile(msp, OOD_MSP_PCT))
    dh, mh = _ood_scores(r["feats"][held], r["probs"][held], means, chol)
    dfk, mfk = _ood_scores(f["feats"], f["probs"], means, chol)
    return {"method": f"Mahalanobis distance of early classifier features (channel mean and std of the first "
                      f"{OOD_STAGES} conv stages) to the nearest class mean (shared covariance "
                      f"from {len(feats)} training images) > {OOD_DISTANCE_PCT:g}th percentile of real test images, "
                      f"or max softmax probability < their {OOD_MSP_PCT:g}st percentile",
            "class_means": means.tolist(), "precision_cholesky": _tril_to_b64(chol),
            "distance_threshold": round(d_thr, 6), "msp_threshold": round(m_thr, 6),
            "fpr_real": round(float(((dh > d_thr) | (mh < m_thr)).mean()), 6),
            "rate_fake": round(float(((dfk > d_thr) | (mfk < m_thr)).mean()), 6)}


def _percentile(quantiles: list[float], logit: np.ndarray | float) -> np.ndarray:
    q = np.asarray(quantiles, np.float64)
    return np.interp(np.asarray(logit, np.float64), q, np.linspace(0.0, 100.0, len(q)), left=0.0, right=100.0)


# ---- scoring ----------------------------------------------------------------------------------------
def score_images(model: GAN, x: torch.Tensor, *, labels: torch.Tensor | list[int] | int | None = None,
                 calibration: Calibration | None = None) -> list[ScoreResult]:
    """Score images x (B, C, R, R) in [-1, 1] with D, the classifier and (optionally) a calibration."""
    gcfg = model.discriminator.cfg
    if x.dim() != 4 or x.shape[1:] != (gcfg.channels, gcfg.resolution, gcfg.resolution):
        raise ValueError(f"x has shape {tuple(x.shape)}; this model scores (B, {gcfg.channels}, {gcfg.resolution}, "
                         f"{gcfg.resolution}) images in [-1, 1]")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values")
    x = x.detach().float().clamp(-1.0, 1.0)
    y = None
    if labels is not None and model.discriminator.conditional:
        y = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
        if y.numel() == 1:
            y = y.expand(x.size(0)).clone()  # one label for every image
        if y.shape != (x.size(0),) or y.min() < 0 or y.max() >= model.num_classes:
            raise ValueError(f"labels must be {x.size(0)} class ids in [0, {model.num_classes - 1}], "
                             f"got {y.tolist()[:8]}")
    rule = label_rule(model, labels_given=y is not None)
    a = _analyse(model, x, y)
    notes = []
    if calibration is not None and calibration.label_rule != rule:
        notes.append(f"calibrated with labels from '{calibration.label_rule}' but scored with '{rule}': "
                     f"percentiles are approximate")
    if "probs" not in a and _uses_classifier(model):
        notes.append(classifier_status())
    ood_d = ood_m = None
    if calibration is not None and calibration.ood and "feats" in a:
        means = np.asarray(calibration.ood["class_means"], np.float64)
        if means.shape[1] == a["feats"].shape[1]:
            chol = _b64_to_tril(calibration.ood["precision_cholesky"], means.shape[1])
            ood_d, ood_m = _ood_scores(a["feats"], a["probs"], means, chol)
        else:
            notes.append(f"calibration.json was made with {means.shape[1]} classifier features, the classifier now "
                         f"has {a['feats'].shape[1]}: no OOD check")
    results = []
    for i in range(x.size(0)):
        logit = float(a["logit"][i])
        pred = prob = name = None
        if "probs" in a:
            pred, prob = int(a["probs"][i].argmax()), float(a["probs"][i].max())
            name = FASHION_MNIST_CLASSES[pred] if pred < len(FASHION_MNIST_CLASSES) else str(pred)
        ood, reason = _ood_verdict(calibration, None if ood_d is None else (ood_d[i], ood_m[i]), "probs" in a)
        results.append(ScoreResult(
            logit=logit, p_real_raw=float(1.0 / (1.0 + math.exp(-max(min(logit, 500.0), -500.0)))),
            p_real=None if calibration is None else float(calibration.p_real(logit)),
            percentile_real=None if calibration is None else float(calibration.percentile_real(logit)),
            percentile_fake=None if calibration is None else float(calibration.percentile_fake(logit)),
            label_used=int(a["label"][i]) if "label" in a else None, label_rule=rule,
            logit_max=float(a["logit_max"][i]) if "logit_max" in a else None,
            label_max=int(a["label_max"][i]) if "label_max" in a else None,
            pred_class=pred, pred_name=name, pred_prob=prob, ood=ood, ood_reason=reason,
            ood_distance=None if ood_d is None else float(ood_d[i]), notes=list(notes)))
    return results


def _ood_verdict(cal: Calibration | None, scores: tuple[float, float] | None, have_clf: bool) -> tuple[bool | None, str]:
    if not have_clf:
        return None, "OOD check needs the classifier"
    if scores is None:
        return None, "OOD check needs calibration statistics (calibration.json)"
    dist, msp = scores
    d_thr, m_thr = cal.ood["distance_threshold"], cal.ood["msp_threshold"]
    why = []
    if dist > d_thr:
        why.append(f"unlike every Fashion-MNIST class (feature distance {dist:.1f} > {d_thr:.1f}, "
                   f"the 99th percentile of real images)")
    if msp < m_thr:
        why.append(f"classifier unsure (max probability {msp:.2f} < {m_thr:.2f}, the 1st percentile of real images)")
    if why:
        return True, "; ".join(why)
    return False, f"in distribution (feature distance {dist:.1f} <= {d_thr:.1f}, max probability {msp:.2f})"


# ---- saliency ---------------------------------------------------------------------------------------
def saliency_map(model: GAN, x: torch.Tensor, label: int | None = None, *, samples: int = 16, noise: float = 0.15,
                 seed: int = 0) -> np.ndarray:
    """(R, R) in [0, 1]: SmoothGrad |d D-logit / d x| over `samples` noisy copies (noise = fraction of [-1, 1])."""
    D = model.discriminator
    if x.dim() != 4 or x.size(0) != 1:
        raise ValueError(f"saliency_map takes one image (1, C, R, R), got shape {tuple(x.shape)}")
    dev = next(D.parameters()).device
    x = x.detach().float().to(dev)
    y = None
    if D.conditional:
        if label is None:
            label = int(_analyse(model, x.cpu(), None)["label"][0])
        if not 0 <= int(label) < model.num_classes:
            raise ValueError(f"label={label} must be in [0, {model.num_classes - 1}]")
        y = torch.full((max(samples, 1),), int(label), dtype=torch.long, device=dev)
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn((max(samples, 1), *x.shape[1:]), generator=g).to(dev) * (noise * 2.0)
    if samples <= 1:
        eps.zero_()  # plain gradient
    with _eval_mode(D), torch.enable_grad():
        xn = (x + eps).requires_grad_(True)  # (S, C, R, R)
        logits = D(xn, y) if D.conditional else D(xn)
        (grad,) = torch.autograd.grad(logits.sum(), xn)  # touches no parameter's .grad
    sal = grad.abs().mean(dim=0).sum(dim=0).cpu().numpy()  # (R, R)
    top = float(sal.max())
    return (sal / top if top > 0 else sal).astype(np.float32)


def overlay(image28: Image.Image, saliency: np.ndarray, *, scale: int = 8, alpha: float = 0.6) -> Image.Image:
    """The grayscale image upscaled `scale` times (nearest) with a red-to-yellow saliency heatmap blended on top."""
    base = np.asarray(image28.convert("L").resize((image28.width * scale, image28.height * scale),
                                                  Image.Resampling.NEAREST), dtype=np.float32) / 255.0
    s = np.clip(np.asarray(saliency, np.float32), 0.0, 1.0)
    s_big = np.asarray(Image.fromarray(s).resize((base.shape[1], base.shape[0]), Image.Resampling.BILINEAR))
    s_big = np.clip(s_big, 0.0, 1.0)
    heat = np.stack([np.clip(2 * s_big, 0, 1), np.clip(2 * s_big - 1, 0, 1), np.zeros_like(s_big)], -1)  # red->yellow
    w = (alpha * s_big)[..., None]
    rgb = (1.0 - w) * base[..., None] + w * heat
    return Image.fromarray(np.round(rgb * 255).astype(np.uint8))


# ---- nearest training images ----------------------------------------------------------------------
_TRAIN_LOCK = threading.Lock()
_TRAIN: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def _train_matrix(dataset: str, data_dir: str | Path | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D) uint8 training images and their float32 squared norms, loaded once per process."""
    key = (dataset, str(data_dir) if data_dir else None)
    with _TRAIN_LOCK:
        if key not in _TRAIN:
            data = load_dataset(dataset, split="train", data_dir=data_dir)
            mat = data.images.reshape(len(data), -1).contiguous()  # (N, C*R*R) uint8
            norms = torch.cat([c.float().pow(2).sum(1) for c in mat.split(8192)])
            _TRAIN[key] = (mat, norms)
        return _TRAIN[key]


def nearest_training_images(x: torch.Tensor, k: int = 5, *, dataset: str = "fashion-mnist",
                            data_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The k training images closest to x (1, C, R, R) in [-1, 1] in pixel space.

    Returns (images uint8 (k, R, R) or (k, C, R, R), RMS pixel distances in [0, 1] (k,), indices (k,)),
    nearest first.  One matmul ranks all images; the best 4k are re-ranked with exact integer distances,
    so an image that is in the training set comes back at distance exactly 0.
    """
    mat, norms = _train_matrix(dataset, data_dir)
    if x.dim() != 4 or x.size(0) != 1 or x[0].numel() != mat.size(1):
        raise ValueError(f"x must be one image (1, C, R, R) with {mat.size(1)} values, got shape {tuple(x.shape)}")
    if not 1 <= k <= mat.size(0):
        raise ValueError(f"k={k} must be in [1, {mat.size(0)}]")
    q8 = to_uint8(x.detach().cpu()).reshape(-1)  # (D,) uint8, the pixels as stored
    q = q8.float()
    dots = torch.cat([c.float() @ q for c in mat.split(8192)])  # (N,)
    d2 = norms - 2.0 * dots + q.pow(2).sum()
    cand = torch.topk(d2, min(4 * k, mat.size(0)), largest=False).indices
    exact = (mat[cand].int() - q8.int()).pow(2).sum(1)  # exact squared distances of the candidates
    order = torch.argsort(exact * mat.size(0) + cand, stable=True)[:k]  # ties: lower index first
    idx = cand[order]
    dist = (exact[order].double() / mat.size(1)).sqrt() / 255.0
    shape = (k, *x.shape[1:])
    images = mat[idx].reshape(shape)
    if shape[1] == 1:
        images = images[:, 0]
    return images.numpy(), dist.float().numpy(), idx.numpy()


# ---- files --------------------------------------------------------------------------------------------
def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_calibration(folder: str | Path, *, model: GAN | None = None, n_real: int = 5000, n_fake: int = 5000,
                      seed: int = 0, data_dir: str | Path | None = None, n_ood_train: int = OOD_TRAIN_IMAGES) -> Path:
    """Calibrate the model in folder (or the given one, saved there) and write folder/calibration.json."""
    folder = Path(folder)
    if model is None:
        if not (folder / "config.json").is_file():
            raise ValueError(f"{folder} is not a model folder (no config.json); pass the folder train.py wrote")
        model = GAN.from_pretrained(str(folder))
    cal = calibrate(model, n_real=n_real, n_fake=n_fake, seed=seed, data_dir=data_dir, n_ood_train=n_ood_train)
    cal.discriminator_sha256 = _sha256(folder / DISCRIMINATOR_FILE)
    path = folder / CALIBRATION_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(cal.to_dict(), separators=(",", ":")) + "\n")
    os.replace(tmp, path)
    return path


def load_calibration(folder: str | Path) -> Calibration | None:
    """folder/calibration.json, or None (with a warning) when it is missing, invalid or stale."""
    folder = Path(folder)
    path = folder / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        cal = Calibration.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError) as e:
        warnings.warn(f"ignoring {path}: {e}", stacklevel=2)
        return None
    sha = _sha256(folder / DISCRIMINATOR_FILE)
    if cal.discriminator_sha256 and sha and sha != cal.discriminator_sha256:
        warnings.warn(f"ignoring {path}: it was made for another {DISCRIMINATOR_FILE}; rerun "
                      f"python -m gan.scoring {folder}", stacklevel=2)
        return None
    return cal


def main(argv: list[str] | None = None) -> int:
    """Command line: python -m gan.scoring DIR -> DIR/calibration.json and the held-out ROC AUC."""
    p = argparse.ArgumentParser(prog="python -m gan.scoring",
                                description="Calibrate a model's discriminator and write DIR/calibration.json.")
    p.add_argument("folder", help="model folder (config.json + *.safetensors)")
    p.add_argument("--n-real", type=int, default=5000, help="held-out real test images (default: 5000)")
    p.add_argument("--n-fake", type=int, default=5000, help="generated images (default: 5000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--n-ood-train", type=int, default=OOD_TRAIN_IMAGES,
                   help=f"training images for the OOD statistics (default: {OOD_TRAIN_IMAGES})")
    p.add_argument("--data-dir", default=None, help="folder with the data set files (default: auto)")
    args = p.parse_args(argv)
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        path = write_calibration(args.folder, n_real=args.n_real, n_fake=args.n_fake, seed=args.seed,
                                 data_dir=args.data_dir, n_ood_train=args.n_ood_train)
    except (ValueError, OSError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cal = load_calibration(args.folder)
    if cal is None:
        print(f"error: {path} could not be read back", file=sys.stderr)
        return 2
    ood = (f"; OOD flags {100 * cal.ood['fpr_real']:.1f}% of real, {100 * cal.ood['rate_fake']:.1f}% of generated"
           if cal.ood else "; no OOD statistics (" + classifier_status() + ")")
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB) in {time.perf_counter() - t0:.1f} s wall, "
          f"{time.process_time() - c0:.1f} s CPU (calibration itself {cal.seconds:.1f} s wall)")
    print(cal.summary() + ood)
    return 0


if __name__ == "__main__":
    sys.exit(main())
