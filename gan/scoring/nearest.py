"""Distance to the nearest real image, in the metric classifier's embedding: a generator-free signal.

    bank = build_bank(classifier, real_training_images)     # (N, D) float16, stored with the detector
    d = log_nearest(classifier, bank, x)                     # (B,) log L2 distance to the nearest bank image

The realism measures of Kynkaanniemi et al. (2019) ask whether an image falls inside the real data's
k-NN balls in a classifier's embedding; this is the plain form of the same question, one number per
image: how far the nearest of N real training images lies.  No generator is involved, so unlike the
detector it does not depend on having seen the generator that made an image.  The early-statistics
distance of the OOD check (``gan.scoring.ood``) measures how unlike *any* class an image is; this one
reads the penultimate embedding (shape and class evidence), where a blurry or malformed garment lies
far from every real one even when its texture statistics look normal.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

# real training images in the bank: all of them but the validation images (59,000 for Fashion-MNIST: 15 MB as
# float16 for a 128-d embedding).  On validation images, 59,000 separated every generator better than 30,000,
# and 30,000 better than 10,000 (docs/critic.md): more real neighbours put real images closer to the bank.
BANK_SIZE = 60_000
BANK_KEY = "real_bank"  # its name in detector.safetensors


@torch.no_grad()
def embed(clf: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """The classifier's penultimate embedding (N, D) float32 of x (N, 1, 28, 28) in [-1, 1]."""
    was = clf.training
    clf.eval()
    dev = next(clf.parameters()).device
    out = torch.cat([clf.features(b.to(dev).float()).float().cpu() for b in x.split(batch_size)])
    clf.train(was)
    return out


def build_bank(clf: nn.Module, real: torch.Tensor) -> torch.Tensor:
    """The bank (N, D) float16 of real images (N, 1, 28, 28) in [-1, 1] (never images it is measured on)."""
    return embed(clf, real).half()


@torch.no_grad()
def log_nearest(clf: nn.Module, bank: torch.Tensor, x: torch.Tensor, chunk: int = 128) -> np.ndarray:
    """log of the L2 distance (B,) float64 from each image of x to its nearest bank image."""
    e, b = embed(clf, x), bank.float()
    d = torch.cat([torch.cdist(c, b).min(1).values for c in e.split(chunk)])
    return np.log(np.maximum(d.double().numpy(), 1e-6))
