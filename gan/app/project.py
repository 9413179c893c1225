"""The Project tab: find the latent (and class) whose generated image matches an upload."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
from PIL import Image

from .. import latent as L
from .context import IMAGE_SCALE, AppContext
from .inputs import AUTO_CLASS, RANDOM_CLASS, class_name, parse_class, parse_int
from .interpolate import Endpoint
from .plots import loss_plot
from .uploads import input_name, preprocess_upload

MAX_PROJECT_STEPS = 1000
DEFAULT_PROJECT_STEPS = 150


@dataclass
class Projection:
    """A projected upload: the latent as an endpoint, pictures and numbers."""

    endpoint: Endpoint
    target: Image.Image
    reconstruction: Image.Image
    plot: Image.Image
    markdown: str
    summary: dict


def project_input(ctx: AppContext, src: Any, class_choice: Any = AUTO_CLASS, *, steps: Any = DEFAULT_PROJECT_STEPS,
                  progress: Callable[[int, int], None] | None = None) -> Projection:
    """Find z (and the class, when 'auto') whose image matches an uploaded one."""
    from ..latent import project
    n = parse_int("steps", steps, 2, MAX_PROJECT_STEPS, default=DEFAULT_PROJECT_STEPS)
    if isinstance(class_choice, str) and class_choice.strip().lower() == RANDOM_CLASS:
        class_choice = AUTO_CLASS
    label = parse_class(ctx, class_choice, allow_auto=True)
    name = input_name(src, 0, None)
    pre = preprocess_upload(src, name)
    res = project(ctx.model, pre.tensor[0], label=label, num_steps=n, seed=0, progress=progress)
    z = torch.as_tensor(res.z, dtype=torch.float32).reshape(-1)
    lab = None if res.label is None else int(res.label)
    ep = Endpoint(z, lab, f"projection of {name} ({class_name(ctx, lab)})")
    history = [float(v) for v in (res.history or [])]
    rmse = math.sqrt(res.mse) / 2 if math.isfinite(res.mse) else float("nan")  # [-1, 1] -> fraction of full scale
    cands = {class_name(ctx, int(k)): round(float(v), 5) for k, v in (res.candidates or {}).items()}
    summary = {"label": lab, "class_name": class_name(ctx, lab), "loss": round(float(res.loss), 6),
               "mse": round(float(res.mse), 6), "steps": n, "seconds": res.seconds, "candidates": cands,
               "z": [round(v, 5) for v in z.tolist()], "preprocessing": list(pre.notes)}
    md = [f"Best match: **{class_name(ctx, lab)}**; pixel RMS error {100 * rmse:.1f}% of full scale after "
          f"{n} steps ({res.seconds:.1f} s)."]
    if len(cands) > 1:
        md.append("Classes tried (objective after the multi-start search, lower is better): "
                  + ", ".join(f"{k} {v:.4f}" for k, v in sorted(cands.items(), key=lambda kv: kv[1])) + ".")
    if pre.notes:
        md.append("Preprocessing: " + "; ".join(pre.notes) + ".")
    recon = L.to_pil(torch.as_tensor(res.image).reshape(1, 28, 28), IMAGE_SCALE)
    return Projection(ep, L.to_pil(pre.tensor[0], IMAGE_SCALE), recon, loss_plot(history), "\n\n".join(md), summary)
