"""How well scores separate real from generated images: torchmetrics' binary metrics on numpy scores.

    m = separation_metrics(p_real_on_real, p_real_on_fake)   # probabilities in [0, 1]
    m["auc"], m["ap"], m["accuracy"], m["ece"], m["fpr_real"], m["brier"]

Real images are the positive class.  ROC AUC and average precision depend only on the order of the
scores, so any monotone score (a logit) works for them; accuracy at 0.5, calibration error and Brier
score need probabilities.  torchmetrics is imported on first use (it takes seconds to import, and
scoring an upload never needs it).
"""

from __future__ import annotations

import numpy as np
import torch

ECE_BINS = 10


def _ranks01(scores: np.ndarray) -> torch.Tensor:
    """Scores mapped to [0, 1] by their dense rank: the same order and ties, never squashed by a sigmoid.

    torchmetrics treats values outside [0, 1] as logits and applies a sigmoid, which rounds large logits
    to exactly 1.0 and would create ties that are not there.
    """
    _, inv = np.unique(scores, return_inverse=True)
    top = max(int(inv.max()), 1)
    return torch.as_tensor(inv.astype(np.float64) / top)


def _split(pos: np.ndarray | list, neg: np.ndarray | list) -> tuple[np.ndarray, np.ndarray]:
    pos, neg = np.asarray(pos, np.float64).ravel(), np.asarray(neg, np.float64).ravel()
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError(f"need both classes, got {len(pos)} real (positive) and {len(neg)} generated scores")
    if not (np.isfinite(pos).all() and np.isfinite(neg).all()):
        raise ValueError("scores contain NaN or infinite values")
    return pos, neg


def roc_auc(pos: np.ndarray | list, neg: np.ndarray | list) -> float:
    """Area under the ROC curve of scores pos (real) vs neg (generated); ties count 1/2 (torchmetrics)."""
    pos, neg = _split(pos, neg)
    from torchmetrics.functional.classification import binary_auroc
    target = torch.cat([torch.ones(len(pos), dtype=torch.long), torch.zeros(len(neg), dtype=torch.long)])
    return float(binary_auroc(_ranks01(np.concatenate([pos, neg])), target))


def average_precision(pos: np.ndarray | list, neg: np.ndarray | list) -> float:
    """Average precision of scores pos (real, the positive class) vs neg (generated) (torchmetrics)."""
    pos, neg = _split(pos, neg)
    from torchmetrics.functional.classification import binary_average_precision
    target = torch.cat([torch.ones(len(pos), dtype=torch.long), torch.zeros(len(neg), dtype=torch.long)])
    return float(binary_average_precision(_ranks01(np.concatenate([pos, neg])), target))


def separation_metrics(p_real: np.ndarray | list, p_fake: np.ndarray | list, *, bins: int = ECE_BINS) -> dict[str, float]:
    """ROC AUC, average precision, accuracy at 0.5, ECE, Brier and the false-positive rate on real images.

    p_real / p_fake are P(real) in [0, 1] on real and on generated images.  ``fpr_real`` is the share of
    real images called generated (P(real) < 0.5); ``fpr_fake`` the share of generated ones called real.
    ECE is torchmetrics' binary calibration error (L1, ``bins`` equal-width bins).
    """
    from torchmetrics.functional.classification import binary_calibration_error
    pos, neg = _split(p_real, p_fake)
    if min(pos.min(), neg.min()) < 0.0 or max(pos.max(), neg.max()) > 1.0:
        raise ValueError("separation_metrics takes probabilities in [0, 1]")
    p = np.concatenate([pos, neg])
    t = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    tt = torch.as_tensor(t, dtype=torch.long)
    return {"auc": roc_auc(pos, neg), "ap": average_precision(pos, neg),
            "accuracy": float(((p >= 0.5) == (t == 1)).mean()),
            "ece": float(binary_calibration_error(torch.as_tensor(p), tt, n_bins=bins, norm="l1")),
            "brier": float(((p - t) ** 2).mean()),
            "fpr_real": float((pos < 0.5).mean()), "fpr_fake": float((neg >= 0.5).mean()),
            "n_real": int(len(pos)), "n_fake": int(len(neg))}


def sigmoid(z: np.ndarray | float) -> np.ndarray:
    """Numerically safe logistic function in float64."""
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(z, np.float64), -500, 500)))
