"""Out-of-distribution flag: is an upload a Fashion-MNIST-like image at all?

Mahalanobis distance (Lee et al. 2018) of early classifier statistics (``analysis.classifier_forward``)
to the nearest class mean, with one covariance shared by all classes, both estimated on 10,000
*training* images.  An image is flagged when that distance exceeds the 99th percentile of real test
images OR the classifier's max softmax probability is below their 1st percentile (about 2% of real test
images are flagged; the rate is measured on a held-out half).  The max softmax alone misses uniform
noise, on which the classifier is confidently wrong.  The statistics live in calibration.json.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import torch

from ..data import load_dataset, to_float
from . import analysis

OOD_DISTANCE_PCT = 99.0  # flag images farther from every class mean than 99% of real test images
OOD_MSP_PCT = 1.0  # ... or on which the classifier is less sure than on 99% of real test images
OOD_TRAIN_IMAGES = 10_000  # training images for the class means and the shared covariance
OOD_SHRINKAGE = 0.01  # covariance + 1% of its mean variance on the diagonal (well conditioned)


def classifier_features(clf: torch.nn.Module, x: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
    """OOD features (N, F) float64 for x (N, 1, 28, 28) in [-1, 1] (see analysis.classifier_forward)."""
    dev = next(clf.parameters()).device
    return torch.cat([analysis.classifier_forward(clf, b.to(dev).float())[1].double().cpu()
                      for b in x.split(batch_size)]).numpy()


def tril_to_b64(m: np.ndarray) -> str:
    """The lower triangle of a square matrix as base64 float32 (compact JSON storage)."""
    return base64.b64encode(m[np.tril_indices(m.shape[0])].astype("<f4").tobytes()).decode("ascii")


def b64_to_tril(s: str, n: int) -> np.ndarray:
    """Inverse of ``tril_to_b64`` for an n x n matrix; raises ValueError on a size mismatch."""
    vals = np.frombuffer(base64.b64decode(s), dtype="<f4").astype(np.float64)
    if vals.size != n * (n + 1) // 2:
        raise ValueError(f"precision_cholesky holds {vals.size} values, expected {n * (n + 1) // 2} for {n} features")
    m = np.zeros((n, n))
    m[np.tril_indices(n)] = vals
    return m


def ood_scores(feats: np.ndarray, probs: np.ndarray, means: np.ndarray, chol: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Mahalanobis distance to the nearest class mean, max softmax probability) per image.

    chol is the lower Cholesky factor L of the shared precision matrix (P = L L^T), so that
    (f - mu)^T P (f - mu) = ||(f - mu) L||^2.
    """
    z_f, z_mu = feats @ chol, means @ chol  # (N, F), (K, F) in whitened coordinates
    d2 = (z_f ** 2).sum(1)[:, None] - 2.0 * z_f @ z_mu.T + (z_mu ** 2).sum(1)[None]  # (N, K)
    return np.sqrt(np.maximum(d2.min(axis=1), 0.0)), probs.max(axis=1)


def fit_ood(r: dict, f: dict, fit: np.ndarray, held: np.ndarray, *, seed: int, data_dir: str | Path | None,
            n_train: int) -> dict:
    """OOD statistics from training features; thresholds from real images `fit`, rates on `held` and on fakes."""
    clf = analysis.get_classifier()
    train = load_dataset("fashion-mnist", split="train", data_dir=data_dir)
    idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed + 7))[:n_train]
    feats, y = classifier_features(clf, to_float(train.images[idx])), train.labels[idx].numpy()
    k = r["probs"].shape[1]
    means = np.stack([feats[y == c].mean(0) for c in range(k)])  # (K, F)
    centred = feats - means[y]
    cov = centred.T @ centred / len(feats)
    cov += OOD_SHRINKAGE * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])
    chol = np.linalg.cholesky(np.linalg.inv(cov))
    chol = b64_to_tril(tril_to_b64(chol), chol.shape[0])  # thresholds from exactly the stored (float32) factor
    means = np.round(means, 5)
    dist, msp = ood_scores(r["feats"][fit], r["probs"][fit], means, chol)
    d_thr, m_thr = float(np.percentile(dist, OOD_DISTANCE_PCT)), float(np.percentile(msp, OOD_MSP_PCT))
    dh, mh = ood_scores(r["feats"][held], r["probs"][held], means, chol)
    dfk, mfk = ood_scores(f["feats"], f["probs"], means, chol)
    return {"method": f"Mahalanobis distance of early classifier features (channel mean and std of the first "
                      f"{analysis.OOD_STAGES} conv stages) to the nearest class mean (shared covariance "
                      f"from {len(feats)} training images) > {OOD_DISTANCE_PCT:g}th percentile of real test images, "
                      f"or max softmax probability < their {OOD_MSP_PCT:g}st percentile",
            "class_means": means.tolist(), "precision_cholesky": tril_to_b64(chol),
            "distance_threshold": round(d_thr, 6), "msp_threshold": round(m_thr, 6),
            "fpr_real": round(float(((dh > d_thr) | (mh < m_thr)).mean()), 6),
            "rate_fake": round(float(((dfk > d_thr) | (mfk < m_thr)).mean()), 6)}


def ood_for_batch(ood: dict | None, a: dict) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
    """(distances, max probabilities, note) for an analysed batch ``a`` under stored OOD statistics."""
    if not ood or "feats" not in a:
        return None, None, None
    means = np.asarray(ood["class_means"], np.float64)
    if means.shape[1] != a["feats"].shape[1]:
        return None, None, (f"calibration.json was made with {means.shape[1]} classifier features, the classifier "
                            f"now has {a['feats'].shape[1]}: no OOD check")
    chol = b64_to_tril(ood["precision_cholesky"], means.shape[1])
    dist, msp = ood_scores(a["feats"], a["probs"], means, chol)
    return dist, msp, None


def ood_verdict(ood: dict | None, scores: tuple[float, float] | None, have_clf: bool) -> tuple[bool | None, str]:
    """(flagged?, why) for one image's (distance, max probability) under the stored thresholds."""
    if not have_clf:
        return None, "OOD check needs the classifier"
    if scores is None or not ood:
        return None, "OOD check needs calibration statistics (calibration.json)"
    dist, msp = scores
    d_thr, m_thr = ood["distance_threshold"], ood["msp_threshold"]
    why = []
    if dist > d_thr:
        why.append(f"unlike every Fashion-MNIST class (feature distance {dist:.1f} > {d_thr:.1f}, "
                   f"the 99th percentile of real images)")
    if msp < m_thr:
        why.append(f"classifier unsure (max probability {msp:.2f} < {m_thr:.2f}, the 1st percentile of real images)")
    if why:
        return True, "; ".join(why)
    return False, f"in distribution (feature distance {dist:.1f} <= {d_thr:.1f}, max probability {msp:.2f})"
