"""The Interpolate tab: a path between two endpoints, its frames and GIF, and D's and the classifier's view of it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from .. import latent as L
from ..visualize import grid_image
from .context import IMAGE_SCALE, AppContext, classifier_names
from .generate import View, make_view, view_latent
from .inputs import RANDOM_CLASS, AppInputError, check_latent, class_name, parse_int
from .plots import path_plot
from .scratch import scratch_dir

STRIP_SCALE = 3
MAX_FRAMES = 64


@dataclass
class Endpoint:
    """One end of an interpolation: a latent, its class and how it was made."""

    z: torch.Tensor  # (z_dim,)
    label: int | None
    description: str

    def to_state(self) -> dict:
        """JSON-able form kept in a gr.State."""
        return {"z": self.z.tolist(), "label": self.label, "description": self.description}


def endpoint_from_state(ctx: AppContext, state: Any) -> Endpoint:
    """An Endpoint from its gr.State form, checked against the model."""
    if not isinstance(state, dict) or "z" not in state:
        raise AppInputError("no pinned latent yet: use 'Use as endpoint' in the Generate or Project tab first")
    z = torch.tensor(check_latent(ctx, state["z"]))
    label = state.get("label")
    if ctx.conditional and (label is None or not 0 <= int(label) < ctx.model.num_classes):
        raise AppInputError(f"pinned latent has label {label!r}; this model has classes 0..{ctx.model.num_classes - 1}")
    return Endpoint(z, int(label) if ctx.conditional else None, str(state.get("description", "pinned latent")))


def endpoint_from_view(ctx: AppContext, view: View) -> Endpoint:
    """The current Generate view as an interpolation endpoint."""
    z = view_latent(ctx, view)
    what = "pinned latent" if view.base is not None else f"seed {view.seed}"
    extra = f", {len(view.sliders)} slider(s) moved" if view.sliders else ""
    return Endpoint(z, view.label, f"{what}, {class_name(ctx, view.label)}, truncation {view.truncation:g}{extra}")


def endpoint_from_seed(ctx: AppContext, seed: Any, class_choice: Any = RANDOM_CLASS, truncation: Any = 1.0) -> Endpoint:
    """An endpoint from a seed and class."""
    return endpoint_from_view(ctx, make_view(ctx, seed, class_choice, truncation))


@dataclass
class PathResult:
    """An interpolation path with what D and the classifier think of each frame."""

    frames: torch.Tensor  # (T, 1, 28, 28) in [-1, 1]
    t: list[float]
    strip: Image.Image
    gif: Path
    d_logit: list[float]
    p_real: list[float]  # calibrated when calibration.json exists, else sigmoid(logit)
    calibrated: bool
    class_probs: np.ndarray | None  # (T, K) classifier softmax, None without the classifier
    plot: Image.Image

    def summary(self, ctx: AppContext) -> dict:
        """JSON-able per-frame numbers (what the /interpolate API returns besides the files)."""
        out: dict[str, Any] = {"t": [round(x, 4) for x in self.t], "d_logit": [round(x, 4) for x in self.d_logit],
                               "p_real": [round(x, 4) for x in self.p_real], "p_real_calibrated": self.calibrated}
        if self.class_probs is not None:
            names = classifier_names(ctx)
            top = self.class_probs.argmax(1)
            out["predicted_class"] = [names[i] for i in top]
            out["predicted_prob"] = [round(float(self.class_probs[j, i]), 4) for j, i in enumerate(top)]
        return out


def interpolate_path(ctx: AppContext, a: Endpoint, b: Endpoint, n_frames: Any = 16,
                     method: Literal["lerp", "slerp"] | str = "slerp", *, duration_ms: int = 80) -> PathResult:
    """Frames from a to b (z by lerp/slerp; the class embedding blends linearly), a GIF, and per-frame scores.

    Each frame is scored exactly as the Score tab scores an upload (gan.scoring.score_images: a
    conditional D gets the classifier's predicted class), so a frame and its PNG get the same score.
    """
    T = parse_int("frames", n_frames, 2, MAX_FRAMES, default=16)
    if method not in ("lerp", "slerp"):
        raise AppInputError(f"method {method!r} is not supported; use 'lerp' or 'slerp'")
    zs = L.interpolate(a.z, b.z, T, method=method)  # (T, z_dim)
    t = torch.linspace(0.0, 1.0, T)
    if ctx.conditional:
        ea, eb = L.class_embedding(ctx.model, a.label), L.class_embedding(ctx.model, b.label)
        emb = L.lerp(ea, eb, t.unsqueeze(1))
        emb[0], emb[-1] = ea, eb
        frames = L.render(ctx.model, zs, emb)
    else:
        frames = L.render(ctx.model, zs)
    from ..scoring import score_images
    scored = score_images(ctx.model, frames, calibration=ctx.calibration)
    logits = [r.logit for r in scored]
    calibrated = ctx.calibration is not None
    p_real = [r.p_real if calibrated else r.p_real_raw for r in scored]
    probs = classifier_probs(ctx, frames)
    strip = grid_image(frames, nrow=min(T, 16), scale=STRIP_SCALE, padding=2)
    pil = [L.to_pil(f, IMAGE_SCALE // 2) for f in frames]
    gif = L.make_gif(pil + pil[-2:0:-1], scratch_dir() / "interpolation.gif", duration_ms=duration_ms)
    plot = path_plot(ctx, t.tolist(), p_real, calibrated, probs)
    return PathResult(frames, t.tolist(), strip, gif, logits, p_real, calibrated, probs, plot)


@torch.no_grad()
def classifier_probs(ctx: AppContext, x: torch.Tensor) -> np.ndarray | None:
    """(N, K) class probabilities of the metric classifier for images (N, 1, 28, 28) in [-1, 1], or None."""
    if ctx.classifier is None:
        return None
    return torch.softmax(ctx.classifier(x), dim=1).numpy()
