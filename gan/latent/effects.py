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


@dataclass(frozen=True)
class Check:
    """The check an attribute slider must pass for a class, at +3 on seeds of that class the fit never saw."""

    own: float = 1.0  # its own attribute moves by at least this many sd (of that class's real images)
    leak: float = 0.5  # no other measured attribute moves by more than this times as much
    kept: float = 0.9  # of the seeds read as the class at 0, at least this share are still read as it at +3

    def failures(self, eff: "ShiftEffect", name: str) -> list[str]:
        """Why eff (the effect of slider name) fails the check; [] when it passes."""
        own = eff.sd.get(name, 0.0)
        worst = max(((abs(v), b) for b, v in eff.sd.items() if b != name), default=(0.0, "-"))
        why = []
        if own < self.own:
            why.append(f"own {own:+.2f} < {self.own:g}")
        if worst[0] > self.leak * abs(own):
            why.append(f"{worst[1]} {worst[0]:.2f} > {self.leak:g}x own")
        if not math.isnan(eff.class_kept) and eff.class_kept < self.kept:
            why.append(f"class kept {eff.class_kept:.0%} < {self.kept:.0%}")
        return why


CHECK = Check()  # the one home of the slider goals: the fitting tunes towards it, the benchmark reports it


@dataclass
class Measured:
    """Attributes (B,) per name and the classifier's predicted class (B,) (None without a classifier)."""

    attrs: dict[str, torch.Tensor]
    pred: torch.Tensor | None
    logits: torch.Tensor | None


@dataclass
class ShiftEffect:
    """Mean change of each attribute in sd of real images, and the share of images that keep their class."""

    sd: dict[str, float]  # attribute -> mean change in sd of each sample's class (Reference.unit)
    raw: dict[str, float]  # attribute -> mean change in its own units
    class_kept: float  # nan without a classifier
    n: int
    same_reading: float = math.nan  # share of all samples the classifier reads the same before and after


@torch.no_grad()
def render_batch(G: nn.Module, z: torch.Tensor, y: torch.Tensor | None, chunk: int = 2048,
                 emb_offset: torch.Tensor | None = None) -> torch.Tensor:
    """G(z, y) in chunks, eval mode: images (B, C, R, R) in [-1, 1]; emb_offset (B, z_dim) moves G's class input."""
    was = G.training
    G.eval()
    try:
        out = []
        for i in range(0, len(z), chunk):
            zi, yi = z[i:i + chunk], None if y is None else y[i:i + chunk]
            if emb_offset is None:
                out.append(G(zi, yi))
            else:
                out.append(G.forward_with_embedding(zi, G.embed(yi) + emb_offset[i:i + chunk]))
        return torch.cat(out)
    finally:
        G.train(was)


@torch.no_grad()
def measure_batch(G: nn.Module, z: torch.Tensor, y: torch.Tensor | None, classifier: nn.Module | None,
                  chunk: int = 2048, emb_offset: torch.Tensor | None = None) -> Measured:
    """Render z (B, z_dim) with labels y (and class-input offsets) and measure every attribute and the logits."""
    x = render_batch(G, z, y, chunk, emb_offset)
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
            change = moved.attrs[a][m] - base.attrs[a][m]
            raw[a] = float(change.mean())
            sd[a] = float((change / ref.units(a, None if y is None else y[m], int(m.sum()))).mean())
    kept = same = math.nan
    if base.pred is not None:
        same = float((moved.pred == base.pred).float().mean())
        kept = same if y is None else class_kept(base.pred, moved.pred, y)
    return ShiftEffect(sd, raw, kept, n, same)


def class_kept(before: torch.Tensor, after: torch.Tensor, y: torch.Tensor) -> float:
    """Of the samples read as their class y before a move, the share still read as y after it (nan: none was)."""
    ok = before == y
    return float((after[ok] == y[ok]).float().mean()) if ok.any() else math.nan


@torch.no_grad()
def shift_effects(G: nn.Module, z: torch.Tensor, y: torch.Tensor | None, offsets: torch.Tensor,
                  classifier: nn.Module | None, ref: Reference, class_names: list[str], *,
                  base: Measured | None = None, emb_offsets: torch.Tensor | None = None) -> ShiftEffect:
    """Effect of moving latents z (B, z_dim) by offsets (B|1, z_dim) (and G's class input by emb_offsets)."""
    base = base if base is not None else measure_batch(G, z, y, classifier)
    moved = measure_batch(G, z + offsets, y, classifier, emb_offset=emb_offsets)
    return compare(base, moved, y, ref, class_names)
