"""Do the sliders act on projected garments as on samples? The slider check with each image's own generator.

A projection (gan.latent.inversion) gives every image its z, its class and the generator that draws it (G, or
a copy tuned to that image). The check of ``gan.latent.effects`` (own attribute >= 1 sd at +3, no other more
than half as much, class kept) is measured here on such images: each rendered with its own generator at 0 and
at +3 along a slider, the attribute changes pooled over the images of one class.

    eff = projected_shift_effect(inversions, directions, "width", 2, classifier, ref, class_names)
    CHECK.failures(eff, "width")                # [] when the slider passes for class 2 on these images
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from .attributes import SURFACE, Reference
from .directions import LABEL_STEP, Directions
from .effects import Measured, ShiftEffect, compare, measure_batch


def slider_edits(d: Directions, label: int | None) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """The moves of every attribute slider acting on a class at -3 and +3: z offsets (K, z_dim) and class-input
    offsets (K, z_dim) (None when no slider moves the class input); None when no slider acts on the class.

    Pivotal tuning keeps what these moves do to the image (gan.latent.inversion.tune)."""
    dz, de = [], []
    for name, kind in zip(d.names, d.kinds):
        if kind != "attribute" or not d.acts_on(name, label):
            continue
        step = d.steps(name, label, 1)[0]
        emb = d.embedding_steps(name, label, 1)
        for sign in (-LABEL_STEP, LABEL_STEP):
            dz.append(sign * step)
            de.append(torch.zeros_like(step) if emb is None else sign * emb[0])
    if not dz:
        return None
    de_t = torch.stack(de)
    return torch.stack(dz), (de_t if bool(de_t.abs().sum() > 0) else None)


def surface_units(d: Directions, label: int | None) -> torch.Tensor | None:
    """(3,) one sd of the class's real images for each surface attribute (attributes.SURFACE), from the reference
    the directions were fitted with; None when the directions carry none.

    Pivotal tuning holds the sliders' moves of these attributes in these units (gan.latent.inversion.tune)."""
    ref = d.meta.get("reference") or {}
    sd, per = ref.get("sd") or {}, ref.get("class_sd") or {}
    units = []
    for a in SURFACE:
        v = (per.get(a) or [])[label] if label is not None and label < len(per.get(a) or []) else None
        v = sd.get(a) if v is None or (isinstance(v, float) and math.isnan(v)) else v
        if v is None or not v > 0:
            return None
        units.append(float(v))
    return torch.tensor(units)


def _concat(parts: list[Measured]) -> Measured:
    attrs = {a: torch.cat([p.attrs[a] for p in parts]) for a in parts[0].attrs}
    pred = None if parts[0].pred is None else torch.cat([p.pred for p in parts])
    logits = None if parts[0].logits is None else torch.cat([p.logits for p in parts])
    return Measured(attrs, pred, logits)


@torch.no_grad()
def measure_projected(inversions: list, classifier: nn.Module | None, offsets: torch.Tensor | None = None,
                      emb_offsets: torch.Tensor | None = None) -> Measured:
    """Attributes and class readings of projected images (each with its own generator), moved by offsets (B, z_dim)."""
    parts = []
    for i, r in enumerate(inversions):
        z = r.z.reshape(1, -1) + (0 if offsets is None else offsets[i:i + 1])
        y = None if r.label is None else torch.tensor([int(r.label)])
        parts.append(measure_batch(r.generator, z, y, classifier,
                                   emb_offset=None if emb_offsets is None else emb_offsets[i:i + 1]))
    return _concat(parts)


def projected_shift_effect(inversions: list, d: Directions, name: str, label: int, classifier: nn.Module | None,
                           ref: Reference, class_names: list[str], *, base: Measured | None = None,
                           local: list | None = None) -> ShiftEffect:
    """The effect of slider `name` at +LABEL_STEP on the projected images of class `label` (inversions of it);
    local: each image's sliders fitted to it (gan.latent.local.LocalSliders, as the Generate tab moves a
    projected garment) instead of the directions' own."""
    if not inversions:
        raise ValueError(f"no projected images of class {label} to measure slider {name!r} on")
    n = len(inversions)
    y = torch.full((n,), int(label), dtype=torch.long)
    if local is not None:
        moves = [loc.offsets({name: LABEL_STEP}) for loc in local]
        dz = torch.stack([m[0] for m in moves])
        emb = None if moves[0][1] is None else torch.stack([m[1] for m in moves])
    else:
        dz, emb = LABEL_STEP * d.steps(name, y, n), d.embedding_steps(name, y, n)
        emb = None if emb is None else LABEL_STEP * emb
    base = base if base is not None else measure_projected(inversions, classifier)
    return compare(base, measure_projected(inversions, classifier, dz, emb), y, ref, class_names)
