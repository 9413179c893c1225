"""Train a model folder's encoder (gan.latent.encoder) and write it there (``fashion-gan finish DIR --only encoder``).

Each step (G and the metric classifier frozen, both in eval mode) sees two half batches:

  (1) G's own samples G(z, y): their z and class are known, so the encoder learns them directly (a latent
      loss and a class loss, the domain-guided half: its z stay where G's latents live);
  (2) real training images with their labels: no z is known, so the encoder is taught through G, by a
      reconstruction loss G(E(x), y) ~ x in pixels and in the metric classifier's features (1 - cosine).

Both halves also get the reconstruction loss and the class loss, and a small penalty keeps |z| near its
typical value sqrt(z_dim).  Without real data (a data set that is not on this machine) the encoder is
trained on samples alone, and encoder.json says so.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..hardware import hardware_description
from ..pretrained import GAN
from .encoder import Encoder, EncoderConfig, save_encoder

HELD_OUT = 500  # real test images the written encoder is measured on


@dataclass
class EncoderTraining:
    """Options of one encoder training run (stored in encoder.json)."""

    steps: int = 3000  # the shipped encoder's: 22 min on one thread of a shared 2-core AMD EPYC
    batch_size: int = 64  # per half: this many samples and this many real images
    pool: int = 16384  # G's samples drawn once at the start and reused
    lr: float = 1e-3
    latent_weight: float = 0.1  # samples: MSE between E(G(z)) and z
    class_weight: float = 0.1  # cross-entropy of the class head
    feature_weight: float = 0.1  # reconstruction in the classifier's features (1 - cosine)
    norm_weight: float = 0.5  # (|z| / sqrt(z_dim) - 1)^2: typical norms, not the regression's shrunken ones
    moment_weight: float = 1.0  # each class's z in the batch: mean 0 and variance 1 per dimension, as G's
    width: int = 16  # the encoder's first conv channels
    hidden: int = 256  # its head's hidden units
    seed: int = 0


def _features(clf: nn.Module | None, x: torch.Tensor) -> torch.Tensor | None:
    return None if clf is None else clf.features(x)


def reconstruction_loss(G: nn.Module, clf: nn.Module | None, x: torch.Tensor, z: torch.Tensor,
                        y: torch.Tensor | None, feature_weight: float) -> torch.Tensor:
    """Per-image (B,) pixel MSE of G(z, y) to x, plus feature_weight * (1 - cosine) in the classifier's features."""
    img = G(z, y)  # (B, C, R, R) in [-1, 1]
    loss = (img - x).pow(2).mean((1, 2, 3))
    if clf is not None and feature_weight > 0:
        with torch.no_grad():
            target = clf.features(x)
        loss = loss + feature_weight * (1 - F.cosine_similarity(clf.features(img), target, dim=1))
    return loss


@dataclass
class _Pool:
    """G's samples drawn once: latents (N, z_dim), classes (N,) or None, images (N, C, R, R) in [-1, 1]."""

    z: torch.Tensor
    y: torch.Tensor | None
    x: torch.Tensor


@torch.no_grad()
def sample_pool(G: nn.Module, n: int, gen: torch.Generator, chunk: int = 512) -> _Pool:
    """n samples of G (eval mode) with the latents and classes that made them."""
    z = torch.randn(n, G.cfg.z_dim, generator=gen)
    y = torch.randint(0, G.cfg.num_classes, (n,), generator=gen) if G.cfg.num_classes else None
    x = torch.cat([G(z[i:i + chunk], None if y is None else y[i:i + chunk]) for i in range(0, n, chunk)])
    return _Pool(z, y, x)


def latent_prior(z: torch.Tensor, y: torch.Tensor | None, o: "EncoderTraining") -> torch.Tensor:
    """How far latents (B, z_dim) of classes y (B,) are from G's N(0, I): per-sample norms, and per class (G's z
    does not depend on the class) the batch's means and variances per dimension."""
    norm = (z.norm(dim=1) / math.sqrt(z.size(1)) - 1).pow(2).mean()
    onehot = (torch.zeros(len(z), 1) if y is None else F.one_hot(y, int(y.max()) + 1)).float()  # (B, K)
    n = onehot.sum(0)  # (K,) samples per class
    keep = n >= 2
    mean = (onehot.T @ z) / n.clamp_min(1).unsqueeze(1)  # (K, z_dim)
    var = (onehot.T @ (z - mean[y if y is not None else 0]).pow(2)) / (n - 1).clamp_min(1).unsqueeze(1)
    w = n[keep] / n[keep].sum()  # classes weighted by their share of the batch
    moments = (w * (mean[keep].pow(2).mean(1) + (var[keep] - 1).pow(2).mean(1))).sum()
    return o.norm_weight * norm + o.moment_weight * moments


def _step_loss(enc: Encoder, G: nn.Module, clf: nn.Module | None, o: EncoderTraining, pool: _Pool,
               real: torch.Tensor | None, real_y: torch.Tensor | None, gen: torch.Generator) -> torch.Tensor:
    """One step's loss: (1) G's samples with known z and class, (2) real images through G."""
    b = o.batch_size
    i = torch.randint(0, len(pool.z), (b,), generator=gen)
    z_hat, logits = enc(pool.x[i])  # (1) G's own samples: z and class are known
    loss = o.latent_weight * (z_hat - pool.z[i]).pow(2).mean() + latent_prior(z_hat, pool.y[i], o)
    if logits is not None:
        loss = loss + o.class_weight * F.cross_entropy(logits, pool.y[i])
    if real is None:
        return loss
    j = torch.randint(0, len(real), (b,), generator=gen)  # (2) real images: through G
    x, y = real[j].float() / 127.5 - 1.0, None if real_y is None else real_y[j]
    z_hat, logits = enc(x)
    loss = loss + reconstruction_loss(G, clf, x, z_hat, y, o.feature_weight).mean() + latent_prior(z_hat, y, o)
    if logits is not None:
        loss = loss + o.class_weight * F.cross_entropy(logits, y)
    return loss


def train_encoder(model: GAN, options: EncoderTraining | None = None, *, real: torch.Tensor | None = None,
                  real_labels: torch.Tensor | None = None, classifier: nn.Module | None = None,
                  log: Callable[[str], None] | None = None) -> Encoder:
    """Train an encoder for model's generator on its samples and (when given) real uint8 images (N, C, R, R)."""
    o = options or EncoderTraining()
    G = model.generator
    if real is not None and G.cfg.num_classes and real_labels is None:
        raise ValueError("a class-conditional generator needs real_labels with the real images")
    torch.manual_seed(o.seed)
    gen = torch.Generator().manual_seed(o.seed)
    enc = Encoder(EncoderConfig.for_generator(G, width=o.width, hidden=o.hidden))
    opt = torch.optim.Adam(enc.parameters(), lr=o.lr, betas=(0.9, 0.99))
    warm = max(1, o.steps // 20)  # linear warm-up, then cosine decay to 0
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, s / o.steps))))
    was = G.training, (classifier.training if classifier is not None else False)
    frozen = [p for m in (G, classifier) if m is not None for p in m.parameters() if p.requires_grad]
    G.eval()
    if classifier is not None:
        classifier.eval()
    for p in frozen:
        p.requires_grad_(False)
    t0 = time.time()
    try:
        pool = sample_pool(G, min(o.pool, o.steps * o.batch_size), gen)
        for step in range(o.steps):
            loss = _step_loss(enc, G, classifier, o, pool, real, real_labels, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if log is not None and (step % 250 == 0 or step == o.steps - 1):
                log(f"encoder step {step + 1}/{o.steps}: loss {float(loss.detach()):.4f} ({time.time() - t0:.0f} s)")
    finally:
        for p in frozen:
            p.requires_grad_(True)
        G.train(was[0])
        if classifier is not None:
            classifier.train(was[1])
    return enc.eval().requires_grad_(False)


@torch.no_grad()
def encoder_metrics(enc: Encoder, model: GAN, images: torch.Tensor, labels: torch.Tensor | None,
                    classifier: nn.Module | None) -> dict:
    """Encoder-only reconstruction of real uint8 images (N, C, R, R): RMS (fraction of the range), feature
    distance, and class accuracy (the encoder's own class head against the labels)."""
    G = model.generator
    x = images.float() / 127.5 - 1.0
    z, logits = enc(x)
    y = None if logits is None else logits.argmax(1)
    img = G.eval()(z, y)
    rms = (img - x).pow(2).mean((1, 2, 3)).sqrt() / 2  # [-1, 1] -> fraction of full scale
    out = {"images": len(x), "rms_mean": round(float(rms.mean()), 4), "rms_max": round(float(rms.max()), 4)}
    if classifier is not None:
        cos = F.cosine_similarity(classifier.features(img), classifier.features(x), dim=1)
        out["feature_distance_mean"] = round(float((1 - cos).mean()), 4)
    if y is not None and labels is not None:
        out["class_accuracy"] = round(float((y == labels).float().mean()), 4)
    return out


def _real_data(model: GAN, data_dir: str | None, split: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The model's data set (config.json's "dataset") as uint8 images and labels, or None when it is not here."""
    from ..data import DataError, load_dataset
    G = model.generator.cfg
    try:
        data = load_dataset(model.dataset or "fashion-mnist", split=split, data_dir=data_dir,
                            resolution=G.resolution, channels=G.channels, download=False)
    except (DataError, OSError, ValueError):
        return None
    return data.images, data.labels


def write_encoder(folder: str | Path, *, options: EncoderTraining | None = None, data_dir: str | None = None,
                  log: Callable[[str], None] | None = print) -> Path:
    """Train an encoder for the model in folder and store it there (encoder.safetensors + encoder.json)."""
    from ..classifier import metric_classifier
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder} is not a finished model folder (no config.json)")
    o = options or EncoderTraining()
    model = GAN.from_pretrained(str(folder)).eval()
    clf = metric_classifier(model)
    train = _real_data(model, data_dir, "train")
    t0 = time.time()
    enc = train_encoder(model, o, real=None if train is None else train[0],
                        real_labels=None if train is None or not model.num_classes else train[1],
                        classifier=clf, log=log)
    seconds = time.time() - t0
    test = _real_data(model, data_dir, "test")
    held_out = None
    if test is not None:
        held_out = encoder_metrics(enc, model, test[0][:HELD_OUT], test[1][:HELD_OUT] if model.num_classes else None,
                                   clf)
    info = {"training": {**o.__dict__, "real_images": 0 if train is None else len(train[0]),
                         "feature_loss": clf is not None, "seconds": round(seconds, 1),
                         "machine": hardware_description(torch.device("cpu")), "threads": torch.get_num_threads()},
            "held_out": held_out}
    return save_encoder(folder, enc, info)
