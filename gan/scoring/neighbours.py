"""Nearest training images: exact pixel-space neighbours among the 60k training images.

They show that the generator does not simply copy its training set, and what a real image close to an
upload looks like.  The training matrix is loaded once per process.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch

from ..data import load_dataset, to_uint8

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
