"""The Interpolate tab: a path between two endpoints, its frames and GIF, and D's and the classifier's view of it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
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

log = logging.getLogger(__name__)

STRIP_SCALE = 3
MAX_FRAMES = 64
MAX_STOPS = 8  # endpoints of one path, A included


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
    p_real: list[float]  # the answer: the critic's P(real) when there is one, else the game D's (see calibrated)
    calibrated: bool
    class_probs: np.ndarray | None  # (T, K) classifier softmax, None without the classifier
    plot: Image.Image
    d_p_real: list[float] | None = None  # the game D's P(real) (calibrated when calibration.json exists)
    critic_logit: list[float] | None = None  # None when the folder has no critic
    scorer: str = "discriminator"  # who answers in p_real: "critic" or "discriminator"
    mp4: Path | None = None  # the same animation as an H.264 video (None when PyAV is not installed)
    stops: list[str] = field(default_factory=lambda: ["A", "B"])  # stop k sits at t = k

    def summary(self, ctx: AppContext) -> dict:
        """JSON-able per-frame numbers (what the /interpolate API returns besides the files)."""
        out: dict[str, Any] = {"t": [round(x, 4) for x in self.t], "d_logit": [round(x, 4) for x in self.d_logit],
                               "p_real": [round(x, 4) for x in self.p_real], "p_real_calibrated": self.calibrated,
                               "scorer": self.scorer, "d_p_real": [round(x, 4) for x in self.d_p_real or self.p_real],
                               "critic_p_real": ([round(x, 4) for x in self.p_real] if self.critic_logit else None),
                               "critic_logit": ([round(x, 4) for x in self.critic_logit] if self.critic_logit else None)}
        out["stops"] = list(self.stops)  # stop k sits at t = k (a loop ends at A again)
        if self.class_probs is not None:
            names = classifier_names(ctx)
            top = self.class_probs.argmax(1)
            out["predicted_class"] = [names[i] for i in top]
            out["predicted_prob"] = [round(float(self.class_probs[j, i]), 4) for j, i in enumerate(top)]
        return out


def interpolate_path(ctx: AppContext, a: Endpoint, b: Endpoint, n_frames: Any = 16,
                     method: Literal["lerp", "slerp"] | str = "slerp", *, duration_ms: int = 80,
                     more: list[Endpoint] | tuple = (), loop: bool = False) -> PathResult:
    """Frames from a to b (then through `more`, back to a with `loop`), a GIF, an MP4, and per-frame scores.

    z moves by lerp/slerp and the class embedding blends linearly on each leg; the frame count is rounded
    so that every stop is a frame (gan.latent.path_frames), and t runs from 0 (A) to the number of legs.

    Each frame is scored exactly as the Score tab scores an upload (gan.scoring.score_images: a
    conditional D gets the classifier's predicted class), so a frame and its PNG get the same score.
    """
    T = parse_int("frames", n_frames, 2, MAX_FRAMES, default=16)
    if method not in ("lerp", "slerp"):
        raise AppInputError(f"method {method!r} is not supported; use 'lerp' or 'slerp'")
    ends = [a, b, *more]
    if len(ends) > MAX_STOPS:
        raise AppInputError(f"{len(ends)} stops is too many; use at most {MAX_STOPS}")
    zs = L.interpolate_stops([e.z for e in ends], T, method=method, loop=loop)  # (T', z_dim)
    leg, tt = L.path_frames(len(ends), T, loop=loop)
    t, T = leg + tt, len(zs)  # position along the path: stop k at t = k
    if ctx.conditional:
        emb = L.interpolate_stops([L.class_embedding(ctx.model, e.label) for e in ends], T, method="lerp", loop=loop)
        frames = L.render(ctx.model, zs, emb)
    else:
        frames = L.render(ctx.model, zs)
    from ..scoring import score_images
    scored = score_images(ctx.model, frames, calibration=ctx.calibration, critic=ctx.critic, detector=ctx.detector)
    logits = [r.logit for r in scored]
    d_p_real = [r.p_real if ctx.calibration is not None else r.p_real_raw for r in scored]
    p_real = [r.answer_p_real for r in scored]
    critic_logit = [r.critic_logit for r in scored] if ctx.critic is not None else None
    calibrated = bool(scored[0].critic_calibrated) if ctx.critic is not None else ctx.calibration is not None
    probs = classifier_probs(ctx, frames)
    strip = grid_image(frames, nrow=min(T, 16), scale=STRIP_SCALE, padding=2)
    pil = [L.to_pil(f, IMAGE_SCALE // 2) for f in frames]
    sequence = pil[:-1] if loop else pil + pil[-2:0:-1]  # a loop ends where it starts; a path plays back and forth
    folder = scratch_dir()
    gif = L.make_gif(sequence, folder / "interpolation.gif", duration_ms=duration_ms)
    mp4 = _mp4(sequence, folder / "interpolation.mp4", fps=round(1000 / duration_ms))
    stops = [chr(ord("A") + k) for k in range(len(ends))] + (["A"] if loop else [])
    plot = path_plot(ctx, t.tolist(), p_real, calibrated, probs, d_p_real=d_p_real if critic_logit else None,
                     stop_names=stops)
    return PathResult(frames, t.tolist(), strip, gif, logits, p_real, calibrated, probs, plot, d_p_real, critic_logit,
                      scored[0].scorer, mp4=mp4, stops=stops)


def _mp4(frames: list[Image.Image], path: Path, fps: int) -> Path | None:
    """The animation as MP4 (gan.latent.make_mp4), or None when PyAV is missing (the GIF still works)."""
    try:
        return L.make_mp4(frames, path, fps=fps)
    except ImportError:
        log.warning("PyAV is not installed: no MP4 export (pip install av)")
        return None


@torch.no_grad()
def classifier_probs(ctx: AppContext, x: torch.Tensor) -> np.ndarray | None:
    """(N, K) class probabilities of the metric classifier for images (N, 1, 28, 28) in [-1, 1], or None."""
    if ctx.classifier is None:
        return None
    return torch.softmax(ctx.classifier(x), dim=1).numpy()
