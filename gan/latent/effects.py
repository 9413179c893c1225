"""What a move in latent space does to the images: attribute changes in real-image sd and class retention.

One rule, used by the direction fitting (labels, scales, tuning), the benchmark (benchmarks/sliders.py)
and the app's heatmap: push a batch of latents by an offset, render before and after, and report the
mean change of every attribute in units of its spread among real images (attributes.Reference) and the
share of images whose class, as read by the metric classifier, stays the same.

    base = measure_batch(G, z, y, classifier)
    eff = shift_effects(G, z, y, offsets, classifier, ref, class_names, base=base)
    eff.sd["width"], eff.class_kept
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from .attributes import ATTRIBUTES, Reference, applicable_classes, measure_attributes


@dataclass
class Measured:
    """Attributes (B,) per name and the classifier's predicted class (B,) (None without a classifier)."""

    attrs: dict[str, torch.Tensor]
    pred: torch.Tensor | None
    logits: torch.Tensor | None


@dataclass
class ShiftEffect:
    """Mean change of each attribute in sd of real images, and the share of images that keep their class."""

    sd: dict[str, float]  # attribute -> mean change / reference sd (over the samples it is defined for)
    raw: dict[str, float]  # attribute -> mean change in its own units
    class_kept: float  # nan without a classifier
    n: int


@torch.no_grad()
def render_batch(G: nn.Module, z: torch.Tensor, y: torch.Tensor | None, chunk: int = 2048) -> torch.Tensor:
    """G(z, y) in chunks, eval mode: images (B, C, R, R) in [-1, 1]."""
    was = G.training
    G.eval()
    try:
        return torch.cat([G(z[i:i + chunk], None if y is None else y[i:i + chunk]) for i in range(0, len(z), chunk)])
    finally:
        G.train(was)


@torch.no_grad()
def measure_batch(G: nn.Module, z: torch.Tensor, y: torch.Tensor | None, classifier: nn.Module | None,
                  chunk: int = 2048) -> Measured:
    """Render z (B, z_dim) with labels y and measure every attribute and the classifier's logits."""
    x = render_batch(G, z, y, chunk)
    logits = torch.cat([classifier(c) for c in x.split(chunk)]) if classifier is not None else None
    return Measured(measure_attributes(x), None if logits is None else logits.argmax(1), logits)


def attribute_masks(y: torch.Tensor | None, n: int, names: list[str], class_names: list[str]
                    ) -> dict[str, torch.Tensor]:
    """(B,) bool per attribute: the samples whose class the attribute is defined for."""
    out = {}
    for a in names:
        if ATTRIBUTES[a].classes is None:
            out[a] = torch.ones(n, dtype=torch.bool)
        elif y is None or not class_names:
            continue  # garment-specific attributes need the class
        else:
            out[a] = torch.isin(y, torch.tensor(applicable_classes(a, class_names), dtype=torch.long))
    return out


def compare(base: Measured, moved: Measured, y: torch.Tensor | None, ref: Reference,
            class_names: list[str]) -> ShiftEffect:
    """The ShiftEffect between two measurements of the same samples (labels y)."""
    n = len(next(iter(base.attrs.values())))
    masks = attribute_masks(y, n, [a for a in base.attrs if a in ref.sd], class_names)
    sd, raw = {}, {}
    for a, m in masks.items():
        if m.any():
            raw[a] = float((moved.attrs[a][m] - base.attrs[a][m]).mean())
            sd[a] = raw[a] / ref.sd[a]
    kept = math.nan if base.pred is None else float((moved.pred == base.pred).float().mean())
    return ShiftEffect(sd, raw, kept, n)


@torch.no_grad()
def shift_effects(G: nn.Module, z: torch.Tensor, y: torch.Tensor | None, offsets: torch.Tensor,
                  classifier: nn.Module | None, ref: Reference, class_names: list[str], *,
                  base: Measured | None = None) -> ShiftEffect:
    """Effect of moving latents z (B, z_dim) by offsets (B|1, z_dim), with labels y (B,) or None."""
    base = base if base is not None else measure_batch(G, z, y, classifier)
    moved = measure_batch(G, z + offsets, y, classifier)
    return compare(base, moved, y, ref, class_names)
