"""GAN inversion: find the latent (and class) whose image best matches a target, as StyleGAN's projector.

    from gan.latent import project, image_to_target
    target = image_to_target(PIL.Image.open("shoe.jpg"))        # (1, 28, 28) in [-1, 1]
    result = project(model, target, num_steps=200)              # result.z, result.label, result.image

The objective is pixel MSE plus a small penalty that keeps |z| near its typical value sqrt(z_dim).
Adam optimises z from several random starts at once (one batch), then refines the best one alone.
During that multi-start search the objective also has a feature distance (1 - cosine) in the metric
classifier's embedding when that classifier is available (gan.classifier): it steers the choice of
start towards the right kind of garment.  The refinement is pixel-only by default: measured on the
pilot model, a feature term there doubled the time and did not lower the pixel error.
For a conditional model without a given label, the candidate classes are the classifier's top 3 for
the target, or (without a classifier) the 3 classes whose random samples match it best.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .sampling import generator_of

TOP_CLASSES = 3


@dataclass
class ProjectionResult:
    """Best latent found for a target, its image and how well it matches."""

    z: torch.Tensor  # (z_dim,)
    label: int | None
    image: torch.Tensor  # (C, R, R) in [-1, 1]
    loss: float  # final objective value
    history: list[float]  # objective of the best candidate after every step
    mse: float = math.nan  # pixel MSE between image and target (both in [-1, 1])
    candidates: dict = field(default_factory=dict)  # label -> objective after the multi-start search
    seconds: float = 0.0


def image_to_target(image, *, resolution: int = 28, channels: int = 1, invert: bool | None = None) -> torch.Tensor:
    """A PIL image or array -> target (C, R, R) in [-1, 1]: fit-and-pad, and make the object bright on black.

    ``invert=None`` inverts when the border is mostly light (a photo on a white background), because
    Fashion-MNIST objects are light on black.
    """
    from PIL import Image, ImageOps
    if isinstance(image, np.ndarray):
        arr = image
        if arr.dtype != np.uint8:
            arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        image = Image.fromarray(arr.squeeze())
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL image or a numpy array, got {type(image).__name__}")
    im = image.convert("L" if channels == 1 else "RGB")
    a = np.asarray(im, dtype=np.float32) / 255.0
    border = np.concatenate([a[0].ravel(), a[-1].ravel(), a[:, 0].ravel(), a[:, -1].ravel()])
    if invert is None:
        invert = float(border.mean()) > 0.5
    if invert:
        im = ImageOps.invert(im)
        border = 1.0 - border
    fill = int(round(float(np.median(border)) * 255))
    im = ImageOps.pad(im, (resolution, resolution), method=Image.BILINEAR,
                      color=fill if channels == 1 else (fill,) * 3)
    x = torch.from_numpy(np.asarray(im, dtype=np.float32).copy()) / 127.5 - 1.0
    return x.unsqueeze(0) if channels == 1 else x.permute(2, 0, 1).contiguous()


def check_target(target: torch.Tensor, G: nn.Module) -> torch.Tensor:
    """target as (C, R, R) float in [-1, 1] for G (uint8 is converted); ValueError naming the shape or range."""
    shape = (G.cfg.channels, G.cfg.resolution, G.cfg.resolution)
    t = torch.as_tensor(target)
    if t.dtype == torch.uint8:
        t = t.float() / 127.5 - 1.0
    t = t.detach().float().cpu()
    if t.dim() == 2 and G.cfg.channels == 1:
        t = t.unsqueeze(0)
    if t.dim() == 4 and t.size(0) == 1:
        t = t[0]
    if tuple(t.shape) != shape:
        raise ValueError(f"target has shape {tuple(target.shape)}; this model needs {shape}")
    lo, hi = float(t.min()), float(t.max())
    if lo < -1.01 or hi > 1.01 or not math.isfinite(lo + hi):
        raise ValueError(f"target values span [{lo:.3g}, {hi:.3g}]; expected floats in [-1, 1] "
                         f"(gan.data.to_float converts uint8 images)")
    return t


def resolve_classifier(model: nn.Module, classifier) -> nn.Module | None:
    """The classifier to use: the given one, or the metric classifier for 'auto' (None when it does not fit)."""
    if classifier != "auto":
        return classifier
    from ..classifier import metric_classifier
    return metric_classifier(model)


@dataclass
class Objective:
    """Pixel MSE to the target, optionally a feature distance in the classifier's embedding, and a |z| prior."""

    G: nn.Module
    tgt: torch.Tensor  # (1, C, R, R)
    clf: nn.Module | None
    tgt_feat: torch.Tensor | None
    feature_weight: float
    reg_weight: float

    def __call__(self, z: torch.Tensor, y: torch.Tensor | None, features: bool) -> tuple[torch.Tensor, torch.Tensor]:
        img = self.G(z, y)  # (B, C, R, R)
        loss = (img - self.tgt).pow(2).mean((1, 2, 3))  # (B,) pixel MSE
        if features and self.tgt_feat is not None:
            loss = loss + self.feature_weight * (1 - F.cosine_similarity(self.clf.features(img), self.tgt_feat, dim=1))
        loss = loss + self.reg_weight * (z.norm(dim=1) / math.sqrt(z.size(1)) - 1).pow(2)
        return loss, img


@torch.no_grad()
def _candidate_classes(G: nn.Module, tgt: torch.Tensor, clf: nn.Module | None, label: int | None, starts: int,
                       gen: torch.Generator) -> list[int | None]:
    """The classes to search: the given one, the classifier's top 3, or the 3 whose random samples fit best."""
    n_cls = G.cfg.num_classes
    if not n_cls:
        return [None]
    if label is not None:
        return [int(label)]
    if clf is not None:
        return clf(tgt)[0].topk(min(TOP_CLASSES, n_cls)).indices.tolist()
    pool = 4 * starts  # rank classes by their best random sample
    zp = torch.randn(n_cls * pool, G.cfg.z_dim, generator=gen)
    yp = torch.arange(n_cls).repeat_interleave(pool)
    err = (G(zp, yp) - tgt).pow(2).mean((1, 2, 3)).view(n_cls, pool).min(1).values
    return err.topk(min(TOP_CLASSES, n_cls), largest=False).indices.tolist()


@torch.no_grad()
def _starting_points(G: nn.Module, tgt: torch.Tensor, cands: list[int | None], starts: int,
                     gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The best `starts` of 4x as many random latents per candidate class: z (len(cands) * starts, z_dim), y."""
    pool = 4 * starts
    zp = torch.randn(len(cands) * pool, G.cfg.z_dim, generator=gen)
    yp = None if cands[0] is None else torch.tensor(cands).repeat_interleave(pool)
    err = (G(zp, yp) - tgt).pow(2).mean((1, 2, 3)).view(len(cands), pool)
    keep = (err.topk(starts, largest=False).indices + torch.arange(len(cands)).unsqueeze(1) * pool).flatten()
    return zp[keep], None if yp is None else yp[keep]


def _optimise(objective: Objective, z: torch.Tensor, y: torch.Tensor | None, steps: int, lr_peak: float, *,
              decay: bool, features: bool, history: list[float], on_step: Callable[[], None]) -> torch.Tensor:
    """Adam on z alone (G's weights are neither touched nor differentiated), optionally with cosine decay."""
    z = z.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr_peak)
    for i in range(steps):
        if decay:  # cosine decay to 0 over the refinement
            for g in opt.param_groups:
                g["lr"] = lr_peak * 0.5 * (1 + math.cos(math.pi * i / steps))
        with torch.enable_grad():  # also when the caller runs under no_grad
            loss, _ = objective(z, y, features)
            (grad,) = torch.autograd.grad(loss.sum(), [z])
        z.grad = grad
        opt.step()
        history.append(float(loss.detach().min()))
        on_step()
    return z.detach()


def _check_args(G: nn.Module, num_steps: int, starts: int, label: int | None) -> None:
    n_cls = G.cfg.num_classes
    if num_steps < 2:
        raise ValueError(f"num_steps={num_steps} must be >= 2")
    if starts < 1:
        raise ValueError(f"starts={starts} must be >= 1")
    if label is not None and not n_cls:
        raise ValueError(f"label={label} given, but this model is unconditional: pass label=None")
    if label is not None and not 0 <= int(label) < n_cls:
        raise ValueError(f"label={label} is out of range; use 0..{n_cls - 1} or None")


def project(model: nn.Module, target: torch.Tensor, *, label: int | None = None, num_steps: int = 200,
            seed: int = 0, progress: Callable[[int, int], None] | None = None, starts: int = 8,
            lr: float = 0.1, feature_weight: float = 0.1, reg_weight: float = 0.01,
            search_fraction: float = 0.15, refine_features: bool = False,
            classifier: nn.Module | None | str = "auto") -> ProjectionResult:
    """Invert the generator: the z (and class) whose image matches target (C, R, R) in [-1, 1]."""
    t_start = time.time()
    G = generator_of(model)
    tgt = check_target(target, G).unsqueeze(0)  # (1, C, R, R)
    _check_args(G, num_steps, starts, label)
    need_clf = feature_weight > 0 or (G.cfg.num_classes and label is None)
    clf = resolve_classifier(model, classifier) if need_clf else None
    gen = torch.Generator().manual_seed(int(seed))
    done = [0]

    def on_step() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], num_steps)

    was_training = G.training
    G.eval()
    try:
        with torch.no_grad():
            tgt_feat = clf.features(tgt) if clf is not None and feature_weight > 0 else None
        objective = Objective(G, tgt, clf, tgt_feat, feature_weight, reg_weight)
        cands = _candidate_classes(G, tgt, clf, label, starts, gen)  # (1) candidate classes
        z0, y0 = _starting_points(G, tgt, cands, starts, gen)  # (2) starting points
        # (3) multi-start search: every start of every candidate class in one batch
        history: list[float] = []
        n_search = max(1, min(num_steps - 1, round(num_steps * search_fraction)))
        zs = _optimise(objective, z0, y0, n_search, lr, decay=False, features=True, history=history, on_step=on_step)
        with torch.no_grad():
            loss_s, _ = objective(zs, y0, True)
        per_class = loss_s.view(len(cands), starts).min(1).values
        best = int(loss_s.argmin())
        candidates = {c: float(v) for c, v in zip(cands, per_class)} if cands[0] is not None else {}
        # (4) refine the best start alone
        yb = None if y0 is None else y0[best:best + 1]
        zb = _optimise(objective, zs[best:best + 1], yb, num_steps - n_search, lr * 0.5, decay=True,
                       features=refine_features, history=history, on_step=on_step)
        with torch.no_grad():
            final, img = objective(zb, yb, refine_features)
            start, start_img = objective(zs[best:best + 1], yb, refine_features)
            if float(final) > float(start):  # keep the better of search and refinement
                zb, final, img = zs[best:best + 1], start, start_img
            mse = float((img - tgt).pow(2).mean())
    finally:
        G.train(was_training)
    return ProjectionResult(z=zb[0].clone(), label=None if yb is None else int(yb[0]), image=img[0].clone(),
                            loss=float(final), history=history, mse=mse, candidates=candidates,
                            seconds=round(time.time() - t_start, 3))
