"""The Generate tab: a seed (or a pinned latent), a class, truncation and direction sliders -> one image."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .. import latent as L
from ..visualize import grid_image
from .context import IMAGE_SCALE, AppContext
from .inputs import RANDOM_CLASS, AppInputError, check_latent, parse_class, parse_float, parse_seed
from .scratch import scratch_dir

VARIATION_STRENGTH = 0.75  # std of the noise added to z for the "nearby variations" grid


@dataclass
class View:
    """What the Generate tab shows: a seed (or a pinned latent), a class, truncation and slider values."""

    seed: int = 0
    label: int | None = None
    truncation: float = 1.0
    sliders: dict[str, float] = field(default_factory=dict)
    base: list[float] | None = None  # a projected / uploaded latent that replaces the seed's


@dataclass
class Rendered:
    """One generated image and the latent behind it."""

    image: Image.Image  # (28*IMAGE_SCALE)^2, crisp
    z: torch.Tensor  # (z_dim,)
    label: int | None


def make_view(ctx: AppContext, seed: Any, class_choice: Any = RANDOM_CLASS, truncation: Any = 1.0,
              slider_values: list[Any] | dict[str, Any] | None = None, base: list[float] | None = None) -> View:
    """Validate raw UI/API values into a View (slider_values in direction order, or by name)."""
    s = parse_seed(seed) if base is None or seed is not None else 0
    label = parse_class(ctx, class_choice, s)
    trunc = parse_float("truncation", truncation, *L.TRUNCATION_RANGE, default=1.0)
    names = ctx.direction_names
    sliders: dict[str, float] = {}
    if isinstance(slider_values, dict):
        unknown = [k for k in slider_values if k not in names]
        if unknown:
            raise AppInputError(f"unknown direction(s) {', '.join(map(repr, unknown))}; this model has: "
                                f"{', '.join(names) or 'no directions'}")
        items = list(slider_values.items())
    else:
        vals = list(slider_values or [])
        if len(vals) > len(names):
            raise AppInputError(f"got {len(vals)} slider values but the model has {len(names)} directions")
        items = list(zip(names, vals))
    for k, v in items:
        x = parse_float(k, v, *L.SLIDER_RANGE, default=0.0)
        if x != 0.0:
            sliders[k] = x
    if base is not None:
        base = check_latent(ctx, base)
    return View(seed=s, label=label, truncation=trunc, sliders=sliders, base=base)


def view_latent(ctx: AppContext, view: View) -> torch.Tensor:
    """z (z_dim,) of a view: seed latent (or the pinned one) times truncation, moved along the sliders."""
    if view.base is not None:
        z = torch.tensor(view.base, dtype=torch.float32) * float(view.truncation)
    else:
        z = L.latent_for_seed(view.seed, ctx.model.z_dim, view.truncation)
    if view.sliders and ctx.directions is not None:
        z = L.apply_directions(z, ctx.directions, view.sliders, view.label)  # per-class sliders use the label
    return z


def render_latent(ctx: AppContext, z: torch.Tensor, label: int | None, scale: int = IMAGE_SCALE) -> Image.Image:
    """Crisp upscaled PIL image of one latent (z_dim,) and label."""
    x = L.render_path(ctx.model, z.reshape(1, -1), label)[0]  # (1, 28, 28) in [-1, 1]
    return L.to_pil(x, scale)


def generate_view(ctx: AppContext, view: View) -> Rendered:
    """Render a view: the image the Generate tab shows and the latent behind it."""
    z = view_latent(ctx, view)
    return Rendered(render_latent(ctx, z, view.label), z, view.label)


def random_seed() -> int:
    """A fresh random seed for the dice button."""
    return int.from_bytes(os.urandom(4), "little") % 1_000_000


def variations_grid(ctx: AppContext, view: View, *, n: int = 16, strength: float = VARIATION_STRENGTH) -> Image.Image:
    """A 4x4 grid of nearby latents (z + strength * noise; the noise is fixed by the seed)."""
    z = view_latent(ctx, view)
    g = torch.Generator().manual_seed(view.seed + 7919)
    zs = z.reshape(1, -1) + strength * torch.randn(n, ctx.model.z_dim, generator=g)
    zs[0] = z  # top-left: the current image
    imgs = L.render_path(ctx.model, zs, view.label)
    return grid_image(imgs, nrow=int(math.sqrt(n)), scale=4, padding=2)


@dataclass
class Export:
    """Files and share strings for one view."""

    png: Path
    npy: Path
    query: str | None  # None when the view holds a pinned latent that no seed reproduces
    note: str


def export_view(ctx: AppContext, view: View) -> Export:
    """PNG + latent .npy of a view in a scratch folder, and its share string (a URL query)."""
    r = generate_view(ctx, view)
    folder = scratch_dir()
    png = folder / f"gan_seed{view.seed}.png"
    r.image.save(png, format="PNG")
    npy = L.save_latent_npy(r.z, r.label, folder / f"latent_seed{view.seed}.npy")
    if view.base is not None:
        return Export(png, npy, None, "This view comes from a projected or uploaded latent, which no seed "
                                      "reproduces: share the .npy file instead (load it in this tab).")
    query = L.share_state(view.seed, r.label, view.truncation, view.sliders)
    return Export(png, npy, query, "Open the link (or paste the string into 'Restore') to get this exact view back.")


def view_from_share(ctx: AppContext, text: str) -> tuple[View, list[str]]:
    """A View from a share string (URL query, full URL, or JSON); notes list what was clamped or dropped."""
    try:
        st = L.parse_state(text, names=ctx.direction_names, num_classes=ctx.model.num_classes)
    except ValueError as e:
        raise AppInputError(str(e)) from None
    return View(seed=st["seed"], label=st["label"], truncation=st["truncation"], sliders=st["sliders"]), st["notes"]


def view_from_npy(ctx: AppContext, path: str | Path) -> View:
    """A View pinned to the latent in a .npy file written by the app (or a plain float array)."""
    try:
        z, label = L.load_latent_npy(path, ctx.model.z_dim)
    except ValueError as e:
        raise AppInputError(str(e)) from None
    if ctx.conditional and label is None:
        label = 0
    if label is not None and ctx.conditional and not 0 <= label < ctx.model.num_classes:
        raise AppInputError(f"{Path(path).name} has label {label}; this model has classes 0..{ctx.model.num_classes - 1}")
    return View(seed=0, label=label if ctx.conditional else None, truncation=1.0, base=z.tolist())


def direction_groups(ctx: AppContext) -> list[tuple[str, list[str], bool]]:
    """(accordion title, direction names, open?) per kind: attributes, then GANSpace and SeFa, then classes (closed)."""
    d = ctx.directions
    if d is None:
        return []
    is_open = {"attribute": True, "pca": True, "sefa": False, "class": False}
    groups = []
    for kind in [*L.KIND_TITLES, *sorted(set(d.kinds) - set(L.KIND_TITLES))]:
        names = [n for n, k in zip(d.names, d.kinds) if k == kind]
        if names:
            groups.append((L.KIND_TITLES.get(kind, f"Other directions ({kind})"), names, is_open.get(kind, False)))
    return groups


def direction_info(ctx: AppContext, name: str) -> str | None:
    """The note under a slider: the classes it acts on (per-class sliders), and how often the class survives +3."""
    d = ctx.directions
    cls = d.classes(name)
    parts = []
    if cls is not None:
        names = ctx.model.class_names
        parts.append("acts on " + ", ".join(names[c] for c in cls) + " (other classes: no effect)")
    kept = d.class_kept[d.index[name]]
    if not math.isnan(kept):
        parts.append(f"class kept at +3 for {kept:.0%}")
    return "; ".join(parts) or None


def directions_markdown(ctx: AppContext) -> str:
    """A bullet list of the direction sliders with how each was found and what it measurably changes."""
    d = ctx.directions
    if d is None:
        return ""
    kinds = {"pca": "GANSpace principal direction", "sefa": "SeFa principal direction",
             "attribute": "InterFaceGAN conditional attribute slider", "class": "InterFaceGAN boundary towards a class"}
    lines = [f"- **{lab}** ({kinds.get(k, k)}): {desc}" for lab, k, desc in zip(d.labels, d.kinds, d.descriptions)]
    skipped = d.meta.get("skipped") or []
    if skipped:
        lines.append(f"\n_Not shown ({len(skipped)}): " + "; ".join(skipped) + "._")
    return "\n".join(lines)


def directions_list(ctx: AppContext) -> list[dict]:
    """Every slider the Generate tab shows, in its order, with name, kind, range and measured effects."""
    d = ctx.directions
    if d is None:
        return []
    names = list(ctx.model.class_names) if ctx.conditional else []
    return [L.slider_info(d, n, names) for _, group, _ in direction_groups(ctx) for n in group]
