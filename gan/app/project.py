"""The Project tab and /project: find the latent (and class) of an upload, then edit it in Generate.

Methods (``gan.latent.inversion``): "encoder" (one pass), "refine" (plus a short optimisation of z),
"tune" (plus pivotal tuning of a per-request copy of G), "optimise" (the multi-start optimisation of z
alone, ``gan.latent.projection``), and "auto": the best the model folder allows within a time budget,
that is "tune" when the folder has an encoder, else "optimise" followed by "tune".
"""

from __future__ import annotations

import math
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from PIL import Image

from .. import latent as L
from .context import IMAGE_SCALE, AppContext
from .inputs import AUTO_CLASS, RANDOM_CLASS, AppInputError, class_name, parse_class, parse_float, parse_int
from .interpolate import Endpoint
from .plots import loss_plot
from .uploads import input_name, preprocess_upload

MAX_PROJECT_STEPS = 1000
DEFAULT_PROJECT_STEPS = 10  # steps of the z optimisation after the encoder
OPTIMISE_STEPS = 150  # steps of the optimisation without an encoder (method "optimise")
DEFAULT_TUNE_STEPS = 70
MAX_TUNE_STEPS = 500
METHODS = ("auto", "encoder", "refine", "tune", "optimise")
BUDGET_S = float(os.environ.get("GAN_APP_PROJECT_BUDGET_S", "0.3"))  # "auto": seconds of compute per projection
MAX_BUDGET_S = 30.0
STAGE_WORDS = {"encoder": "the encoder", "refine": "a refinement of z", "optimise": "an optimisation of z",
               "tune": "a tuned copy of G"}
_ENCODERS: dict[str, Any] = {}  # model folder -> its encoder (or None), loaded once per process
_LOCK = threading.Lock()


@dataclass
class Projection:
    """A projected upload: the latent as an endpoint, pictures, numbers, and the generator that draws it."""

    endpoint: Endpoint
    target: Image.Image
    reconstruction: Image.Image
    plot: Image.Image | None
    markdown: str
    summary: dict
    generator: Any = None  # a tuned copy of G (stage "tune"), else None: the shipped G draws it


def model_encoder(ctx: AppContext) -> Any:
    """The served folder's encoder (gan.latent.encoder), loaded once; None when it has none usable."""
    from ..latent.encoder import load_encoder
    key = str(Path(ctx.folder).resolve())
    with _LOCK:
        if key not in _ENCODERS:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                _ENCODERS[key] = load_encoder(key)
            if _ENCODERS[key] is None:
                ctx.notes.setdefault("encoder", str(caught[-1].message) if caught else
                                     f"not found in {ctx.folder}; projection optimises z instead "
                                     f"(train one with: fashion-gan finish {ctx.folder} --only encoder)")
        return _ENCODERS[key]


def _parse_method(ctx: AppContext, method: Any) -> str:
    m = str(method or "auto").strip().lower()
    if m not in METHODS:
        raise AppInputError(f"method {method!r} is not one of: {', '.join(METHODS)}")
    if m in ("encoder", "refine") and model_encoder(ctx) is None:
        raise AppInputError(f"method {m!r} needs an encoder, and this model has none; use 'auto', 'tune' or "
                            f"'optimise'")
    return m


def _invert(ctx: AppContext, x: torch.Tensor, label: int | None, method: str, steps: int | None, tune_steps: int,
            budget_s: float | None):
    """Run the chosen method; an "auto" or "tune" without an encoder starts from the optimisation."""
    from ..latent.inversion import invert
    enc = None if method == "optimise" else model_encoder(ctx)
    stage = {"auto": "tune", "optimise": "tune"}.get(method, method)
    if enc is None:
        n = steps if steps is not None else (OPTIMISE_STEPS if method != "auto" else DEFAULT_PROJECT_STEPS)
        return invert(ctx.model, x, encoder=None, label=label, directions=ctx.directions, optimise_steps=max(2, n),
                      tune_steps=0 if method == "optimise" else tune_steps,
                      budget_s=budget_s if method == "auto" else None), n
    n = DEFAULT_PROJECT_STEPS if steps is None else steps
    return invert(ctx.model, x, encoder=enc, label=label, directions=ctx.directions, stage=stage, refine_steps=n,
                  tune_steps=tune_steps,
                  budget_s=budget_s if method == "auto" else None), n


def project_input(ctx: AppContext, src: Any, class_choice: Any = AUTO_CLASS, *, steps: Any = None,
                  method: Any = "auto", tune_steps: Any = None, budget_s: Any = None, plot: bool = True,
                  progress: Callable[[int, int], None] | None = None) -> Projection:
    """Find z (and the class, when 'auto') whose image matches an uploaded one, with the chosen method."""
    n = None if steps is None else parse_int("steps", steps, 2, MAX_PROJECT_STEPS, default=DEFAULT_PROJECT_STEPS)
    nt = parse_int("tune_steps", tune_steps, 0, MAX_TUNE_STEPS, default=DEFAULT_TUNE_STEPS)
    budget = parse_float("budget_s", budget_s, 0.0, MAX_BUDGET_S, default=BUDGET_S)
    m = _parse_method(ctx, method)
    if isinstance(class_choice, str) and class_choice.strip().lower() == RANDOM_CLASS:
        class_choice = AUTO_CLASS
    label = parse_class(ctx, class_choice, allow_auto=True)
    name = input_name(src, 0, None)
    pre = preprocess_upload(src, name)
    if progress is not None:
        progress(0, 1)
    r, n = _invert(ctx, pre.tensor[0], label, m, n, nt, budget)
    if progress is not None:
        progress(1, 1)
    return _projection(ctx, r, pre, name, m, n, budget, plot)


def _stages_words(steps: dict) -> str:
    """'the encoder, a refinement of z and a tuned copy of G' for the stages that ran."""
    words = [STAGE_WORDS.get(s, s) for s in steps if steps[s]]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _markdown(ctx: AppContext, r: Any, name: str, lab: int | None, seconds: float, notes: list[str],
              cands: dict) -> str:
    md = [f"Best match for `{name.replace('`', '')}`: **{class_name(ctx, lab)}**; pixel RMS error {100 * r.rms:.1f}% of full scale with "
          f"{_stages_words(r.steps)} ({seconds:.2f} s)."]
    if r.tuned:
        md.append("**Edit in Generate** carries the tuned copy of G: the sliders then move this garment itself, "
                  "each fitted to it so that it moves its own attribute and the others as little as it can.")
    if len(cands) > 1:
        md.append("Classes tried (pixel error, lower is better): "
                  + ", ".join(f"{k} {v:.4f}" for k, v in sorted(cands.items(), key=lambda kv: kv[1])) + ".")
    if notes:
        md.append("Preprocessing: " + "; ".join(notes) + ".")
    return "\n\n".join(md)


def _projection(ctx: AppContext, r: Any, pre: Any, name: str, method: str, n: int, budget: float,
                plot: bool) -> Projection:
    """The tab's pictures and text, and /project's dict, from an inversion result."""
    z = r.z.reshape(-1).float()
    lab = None if r.label is None else int(r.label)
    ep = Endpoint(z, lab, f"projection of {name} ({class_name(ctx, lab)})")
    cands = {class_name(ctx, int(k)): round(float(v), 5) for k, v in (r.candidates or {}).items()}
    seconds = round(sum(r.seconds.values()), 3)
    fd = None if math.isnan(r.feature_distance) else round(float(r.feature_distance), 4)
    summary = {"label": lab, "class_name": class_name(ctx, lab), "loss": round(float(r.mse), 6),
               "mse": round(float(r.mse), 6), "steps": int(r.steps.get("refine", r.steps.get("optimise", 0))),
               "seconds": seconds, "candidates": cands, "z": [round(v, 5) for v in z.tolist()],
               "preprocessing": list(pre.notes), "method": method, "stage": r.stage, "tuned": r.tuned,
               "rms": round(r.rms, 5), "feature_distance": fd, "budget_s": budget if method == "auto" else None,
               "stages": {s: {"steps": int(r.steps[s]), "seconds": r.seconds.get(s, 0.0)} for s in r.steps}}
    recon = L.to_pil(r.image.reshape(1, *r.image.shape[-2:]), IMAGE_SCALE)
    return Projection(ep, L.to_pil(pre.tensor[0], IMAGE_SCALE), recon, loss_plot(r.history) if plot else None,
                      _markdown(ctx, r, Path(name).name, lab, seconds, list(pre.notes), cands), summary,
                      r.generator if r.tuned else None)
