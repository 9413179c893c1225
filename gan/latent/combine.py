"""Several fits of one model's sliders, combined per class.

A fit (gan.latent.fitting) accepts a slider for a class only when its direction passes the check on the fit's
own check batch, and near the check's margins which directions pass depends on the fit's samples: another
seed draws other fitting, tuning and check latents. ``fill_classes`` keeps a primary fit whole and, for every
class left with fewer than ``min_per_class`` attribute sliders, takes the passing per-class directions of
another fit of the same generator for attributes the class lacks. Each added direction passed its own fit's
check batch; ``benchmarks/sliders.py`` judges all of them on seeds neither fit used.

    d, added = fill_classes(fit_seed2, fit_seed0, model.class_names)   # ["brightness for T-shirt/top"]
"""

from __future__ import annotations

import copy
import re

import torch

from .directions import Directions

MIN_PER_CLASS = 3


def attribute_sliders(d: Directions, c: int) -> list[str]:
    """Names of the attribute sliders that act on class c."""
    return [n for n, k in zip(d.names, d.kinds) if k == "attribute" and d.acts_on(n, c)]


def fill_classes(primary: Directions, other: Directions, class_names: list[str],
                 min_per_class: int = MIN_PER_CLASS) -> tuple[Directions, list[str]]:
    """primary, with other's per-class directions added where a class has fewer than min_per_class attribute
    sliders; returns the combined directions and the "attribute for class" pairs added."""
    if primary.class_vectors is None or other.class_vectors is None or primary.z_dim != other.z_dim:
        return primary, []
    src = other.meta.get("generator_sha256")
    if src and primary.meta.get("generator_sha256") not in (None, src):
        raise ValueError("the two fits are of different generators (generator_sha256 differs)")
    d = copy.deepcopy(primary)
    added: list[str] = []
    for c, cname in enumerate(class_names):
        have = attribute_sliders(d, c)
        for name in attribute_sliders(other, c):
            if len(have) >= min_per_class:
                break
            if name in have or name not in d.index:
                continue
            i, j = d.index[name], other.index[name]
            d.class_vectors[i, c], d.class_scales[i, c] = other.class_vectors[j, c], other.class_scales[j, c]
            if other.class_embedding is not None or d.class_embedding is not None:
                if d.class_embedding is None:
                    d.class_embedding = torch.zeros_like(d.class_vectors)
                d.class_embedding[i, c] = 0 if other.class_embedding is None else other.class_embedding[j, c]
            d.class_info[i][cname] = dict(other.class_info[j][cname], seed=other.meta.get("seed"))
            have.append(name)
            added.append(f"{name} for {cname}")
    if added:
        _describe(d, class_names, added, other.meta)
    return d, added


def _describe(d: Directions, class_names: list[str], added: list[str], other_meta: dict) -> None:
    """Descriptions list the classes each slider now acts on; meta records what was added and from which fit."""
    for i, name in enumerate(d.names):
        if d.kinds[i] == "attribute" and any(a.startswith(f"{name} for ") for a in added):
            where = ", ".join(class_names[c] for c in d.classes(name) or [])
            d.descriptions[i] = re.sub(r"Acts on: [^.]*\.", f"Acts on: {where}.", d.descriptions[i])
    d.meta["skipped"] = [s for s in d.meta.get("skipped", []) if not any(s.startswith(a + ":") for a in added)]
    d.meta.setdefault("filled", []).append({"seed": other_meta.get("seed"),
                                            "class_samples": other_meta.get("class_samples"), "added": added})
