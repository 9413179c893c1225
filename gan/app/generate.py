"""The Generate tab: a seed (or a pinned latent), a class, truncation and direction sliders -> one image."""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .. import latent as L
from ..latent.local import LocalSliders, fit_local_sliders
from ..visualize import grid_image
from .context import IMAGE_SCALE, AppContext
from .inputs import RANDOM_CLASS, AppInputError, check_latent, parse_class, parse_float, parse_seed
from .scratch import scratch_dir
from .tuned import TUNED

VARIATION_STRENGTH = 0.75  # std of the noise added to z for the "nearby variations" grid


@dataclass
class View:
    """What the Generate tab shows: a seed (or a pinned latent), a class, truncation and slider values."""

    seed: int = 0
    label: int | None = None
    truncation: float = 1.0
    sliders: dict[str, float] = field(default_factory=dict)
    base: list[float] | None = None  # a projected / uploaded latent that replaces the seed's
    morph_to: int | None = None  # class morph: G's class input moves from label towards this class ...
    morph: float = 0.0  # ... by this much (0: label, 1: morph_to)
    tuned: str | None = None  # with a pinned latent: key of the copy of G tuned to it (gan.app.tuned), if any


@dataclass
class Rendered:
    """One generated image and the latent behind it."""

    image: Image.Image  # (28*IMAGE_SCALE)^2, crisp
    z: torch.Tensor  # (z_dim,)
    label: int | None
    emb: torch.Tensor | None = None  # (z_dim,) G's class input when sliders or the morph moved it


def make_view(ctx: AppContext, seed: Any, class_choice: Any = RANDOM_CLASS, truncation: Any = 1.0,
              slider_values: list[Any] | dict[str, Any] | None = None, base: list[float] | None = None,
              morph_to: Any = None, morph: Any = 0.0, tuned: str | None = None) -> View:
    """Validate raw UI/API values into a View (slider_values in direction order, or by name).

    By name (the API), a non-zero slider that does not act on the view's class is an error that says which
    classes it acts on; in direction order (the Generate tab, which hides such sliders) it is dropped.
    """
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
        if x != 0.0 and ctx.directions.acts_on(k, label):
            sliders[k] = x
        elif x != 0.0 and isinstance(slider_values, dict):
            acts = ", ".join(ctx.model.class_names[c] for c in ctx.directions.classes(k) or [])
            raise AppInputError(f"slider {k!r} does not act on class {ctx.model.class_names[label]!r}; it acts on: "
                                f"{acts}. Use GET /directions to see which sliders act on each class.")
    if base is not None:
        base = check_latent(ctx, base)
    target, amount = None, 0.0
    if morph_to not in (None, "", "-", "none") and ctx.conditional:
        target = parse_class(ctx, morph_to, s)
        amount = parse_float("class morph", morph, 0.0, 1.0, default=0.0)
    return View(seed=s, label=label, truncation=trunc, sliders=sliders, base=base, morph_to=target, morph=amount,
                tuned=str(tuned) if tuned and base is not None else None)


def view_latent(ctx: AppContext, view: View) -> torch.Tensor:
    """z (z_dim,) of a view: seed latent (or the pinned one) times truncation, moved along the sliders."""
    if view.base is not None:
        z = torch.tensor(view.base, dtype=torch.float32) * float(view.truncation)
    else:
        z = L.latent_for_seed(view.seed, ctx.model.z_dim, view.truncation)
    if view.sliders and ctx.directions is not None:
        z = z + slider_moves(ctx, view)[0]
    return z


def garment_sliders(ctx: AppContext, view: View) -> LocalSliders | None:
    """The attribute sliders fitted to a pinned projected garment and its tuned copy of G (gan.latent.local),
    fitted on first use and kept with the copy; None for anything else (the directions' own sliders act)."""
    if view.base is None or not view.tuned or ctx.directions is None or view.label is None:
        return None
    from ..classifier import metric_classifier
    base = torch.tensor(view.base, dtype=torch.float32)
    name = f"sliders:{view.label}:{hashlib.sha1(base.numpy().tobytes()).hexdigest()[:16]}"
    return TUNED.memo(view.tuned, name, lambda G: fit_local_sliders(
        G, base, int(view.label), ctx.directions, list(ctx.model.class_names),
        classifier=metric_classifier(ctx.model)))


def slider_moves(ctx: AppContext, view: View) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(z offset (z_dim,), class-input offset or None) of a view's sliders: those fitted to its projected
    garment where there are (garment_sliders), the directions' own (per class: by the view's label) else."""
    local = garment_sliders(ctx, view)
    mine = {k: v for k, v in view.sliders.items() if local is not None and k in local.steps}
    dz, emb = L.apply_edit(torch.zeros(ctx.model.z_dim), ctx.directions,
                           {k: v for k, v in view.sliders.items() if k not in mine}, view.label)
    if mine:
        lz, le = local.offsets(mine)
        dz = dz + lz
        emb = le if emb is None else (emb if le is None else emb + le)
    return dz, emb


def view_class_input(ctx: AppContext, view: View) -> torch.Tensor | None:
    """G's class input (z_dim,) of a view: the class's embedding (or the morph's blend) plus the sliders' steps;
    None when it is just the class's embedding (or the model is unconditional)."""
    if not ctx.conditional or view.label is None:
        return None
    offset = None
    if view.sliders and ctx.directions is not None:
        offset = slider_moves(ctx, view)[1]
    if offset is None and (view.morph_to is None or view.morph == 0.0):
        return None
    emb = L.blend_embedding(ctx.model, view.label, view.morph_to if view.morph_to is not None else view.label,
                            view.morph)
    return emb if offset is None else emb + offset


def view_generator(ctx: AppContext, view: View) -> torch.nn.Module:
    """What draws a view: the copy of G tuned to its projected garment while the session keeps it, else the model."""
    return (TUNED.get(view.tuned) if view.tuned else None) or ctx.model


def render_latent(ctx: AppContext, z: torch.Tensor, label: int | None, scale: int = IMAGE_SCALE,
                  emb: torch.Tensor | None = None, model: torch.nn.Module | None = None) -> Image.Image:
    """Crisp upscaled PIL image of one latent (z_dim,) and label (or an explicit class input emb), drawn by model
    (default: the served model's G)."""
    model = model if model is not None else ctx.model
    if emb is None:
        x = L.render_path(model, z.reshape(1, -1), label)[0]  # (1, 28, 28) in [-1, 1]
    else:
        x = L.render(model, z.reshape(1, -1), emb.reshape(1, -1))[0]
    return L.to_pil(x, scale)


def generate_view(ctx: AppContext, view: View) -> Rendered:
    """Render a view: the image the Generate tab shows and the latent (and class input) behind it."""
    z = view_latent(ctx, view)
    emb = view_class_input(ctx, view)
    return Rendered(render_latent(ctx, z, view.label, emb=emb, model=view_generator(ctx, view)), z, view.label, emb)


def class_reading(ctx: AppContext, view: View, top: int = 3) -> str:
    """The metric classifier's reading of a view's image, e.g. 'Pullover 71%, Coat 22%, Shirt 5%' ('' without one)."""
    from ..classifier import metric_classifier
    clf = metric_classifier(ctx.model)
    if clf is None or not ctx.conditional:
        return ""
    z, emb = view_latent(ctx, view), view_class_input(ctx, view)
    emb = L.class_embedding(ctx.model, view.label) if emb is None else emb
    with torch.no_grad():
        p = torch.softmax(clf(L.render(view_generator(ctx, view), z.reshape(1, -1), emb.reshape(1, -1))), 1)[0]
    best = p.argsort(descending=True)[:top].tolist()
    return ", ".join(f"{ctx.model.class_names[i]} {float(p[i]):.0%}" for i in best)


def random_seed() -> int:
    """A fresh random seed for the dice button."""
    return int.from_bytes(os.urandom(4), "little") % 1_000_000


def variations_grid(ctx: AppContext, view: View, *, n: int = 16, strength: float = VARIATION_STRENGTH) -> Image.Image:
    """A 4x4 grid of nearby latents (z + strength * noise; the noise is fixed by the seed)."""
    z = view_latent(ctx, view)
    g = torch.Generator().manual_seed(view.seed + 7919)
    zs = z.reshape(1, -1) + strength * torch.randn(n, ctx.model.z_dim, generator=g)
    zs[0] = z  # top-left: the current image
    emb = view_class_input(ctx, view)
    G = view_generator(ctx, view)
    imgs = L.render_path(G, zs, view.label) if emb is None else L.render(G, zs, emb.expand(n, -1))
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


def direction_info(ctx: AppContext, name: str, label: int | None = None) -> str | None:
    """The note under a slider: what it measurably does for the class shown (or which classes it acts on)."""
    d = ctx.directions
    i = d.index[name]
    cname = ctx.model.class_names[label] if label is not None and ctx.conditional else None
    per = d.class_info[i].get(cname) if cname else None
    if per:
        other, v = per.get("largest_other", ["-", 0.0])
        where = " (moves z and G's class input)" if per.get("space") == "z+class" else ""
        return (f"for {cname} at +3: {name} {per['own_sd']:+.2f} sd, largest other {other} {v:+.2f} sd; "
                f"class kept {per['class_kept']:.0%}{where}")
    parts = []
    cls = d.classes(name)
    if cls is not None:
        parts.append("acts on " + ", ".join(ctx.model.class_names[c] for c in cls))
    kept = d.class_kept[i]
    if not math.isnan(kept):
        parts.append(f"class kept at +3 for {kept:.0%}")
    return "; ".join(parts) or None


def slider_label(ctx: AppContext, name: str, label: int | None = None) -> str:
    """A slider's label, with its own measured effect for the class shown where it was measured per class."""
    d = ctx.directions
    i = d.index[name]
    cname = ctx.model.class_names[label] if label is not None and ctx.conditional else None
    per = d.class_info[i].get(cname) if cname else None
    if not per or d.kinds[i] != "attribute":
        return d.labels[i]
    a = L.ATTRIBUTES.get(name)
    words = f"{a.more} / {a.less}" if a is not None else name
    return f"{name}: {words} ({per['own_sd']:+.2f} sd at +3)"


def slider_states(ctx: AppContext, label: int | None) -> list[tuple[bool, str, str | None]]:
    """(visible, label, note) of every slider, in direction order, for the class shown: only those acting on it."""
    d = ctx.directions
    if d is None:
        return []
    return [(d.acts_on(n, label), slider_label(ctx, n, label), direction_info(ctx, n, label)) for n in d.names]


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
