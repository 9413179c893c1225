"""Everything the Gradio app does, as typed functions; app.py only lays out components and wires events.

    from gan.app_logic import load_context, View, generate_view
    ctx = load_context()                                  # GAN_MODEL_DIR / GAN_MODEL_REPO / checkpoints/
    image = generate_view(ctx, View(seed=42, label=8)).image   # crisp 224x224 PIL image

The context holds the model and the optional parts of its folder (directions, calibration, metrics,
model card); each missing part is recorded in ``ctx.notes`` and the app hides what needs it.
User mistakes raise :class:`AppInputError` (or ``gan.images.ImageInputError``) with a short message
that names the bad value; app.py shows those messages as they are.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import re
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import torch
from PIL import Image

from . import images as _images  # noqa: F401 - first: installs PIL's decompression-bomb guard process-wide
from . import latent as L
from .pretrained import GAN
from .visualize import grid_image

log = logging.getLogger(__name__)

RANDOM_CLASS = "random"  # class choice: the class the seed picks, as model.generate(1, seed=seed) does
AUTO_CLASS = "auto"  # projection: try every class and keep the best
IMAGE_SCALE = 8  # 28x28 -> 224x224, nearest neighbour: crisp pixels, a ~2 KB PNG
STRIP_SCALE = 3
MAX_FRAMES = 64
MAX_SCORE_FILES = 16
MAX_PROJECT_STEPS = 1000
DEFAULT_PROJECT_STEPS = 150
VARIATION_STRENGTH = 0.75  # std of the noise added to z for the "nearby variations" grid
MODEL_ASSETS = ("samples.png", "curves.png", "progress.gif")
_SCRATCH_MAX_AGE_S = 3600


class AppInputError(ValueError):
    """A user input the app cannot use; the message names the bad value and is shown as is."""


# ---- the loaded model and its optional parts -----------------------------------------------------
@dataclass
class AppContext:
    """The model the app serves and the optional parts of its folder (None when missing; see notes)."""

    model: GAN
    source: Any  # gan.hub.ModelSource
    folder: Path
    directions: Any = None  # gan.directions.Directions | None
    calibration: Any = None  # gan.scoring calibration | None
    classifier: Any = None  # gan.classifier.FashionClassifier | None
    eval_metrics: dict | None = None
    card: str | None = None
    notes: dict[str, str] = field(default_factory=dict)  # part -> why it is missing
    lock: threading.Lock = field(default_factory=threading.Lock)  # for code that needs gradients (projection)

    @property
    def conditional(self) -> bool:
        return self.model.num_classes > 0

    @property
    def direction_names(self) -> list[str]:
        return list(self.directions.names) if self.directions is not None else []


def load_context(repo: str | None = None, revision: str | None = None, local_dir: str | None = None) -> AppContext:
    """Load the model (arguments, else GAN_MODEL_DIR / GAN_MODEL_REPO / GAN_MODEL_REVISION, else checkpoints/)."""
    from .hub import load_from_env, load_model
    if repo or revision or local_dir:
        model, source = load_model(repo, revision, local_dir)
    else:
        model, source = load_from_env()
    model.eval().requires_grad_(False)
    folder = Path(source.folder)
    ctx = AppContext(model=model, source=source, folder=folder)
    ctx.directions = _optional(ctx, "directions", lambda: _load_directions(folder, model.z_dim))
    ctx.classifier = _optional(ctx, "classifier", _load_classifier)
    ctx.calibration = _optional(ctx, "calibration", lambda: _load_calibration(folder, model))
    ctx.eval_metrics = _optional(ctx, "metrics", lambda: _read_json(folder / "eval.json", "eval.json"))
    ctx.card = _optional(ctx, "card", lambda: _read_card(folder / "README.md"))
    return ctx


_FIX_HINTS = {"calibration": "; recompute it with: python -m gan.scoring {folder}",
              "directions": "; recompute them with: python -m gan.directions {folder}",
              "metrics": "; recompute it with: python -m gan.evaluate {folder}"}


def _optional(ctx: AppContext, part: str, load: Callable[[], Any]) -> Any:
    """Run a loader; a missing or broken part becomes a note instead of an error.

    Loaders that skip a stale or invalid file with a warning (directions, calibration) get that
    warning as their note, instead of "not found".
    """
    import warnings
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = load()
        if value is None and caught:
            raise ValueError(str(caught[-1].message))
    except Exception as e:  # noqa: BLE001 - an optional part must never stop the app
        ctx.notes[part] = f"{type(e).__name__}: {e}"[:300] + _FIX_HINTS.get(part, "").format(folder=ctx.folder)
        log.warning("optional part %s not loaded: %s", part, ctx.notes[part])
        return None
    if value is None:
        ctx.notes.setdefault(part, f"not found in {ctx.folder}")
    return value


def _load_directions(folder: Path, z_dim: int):
    from .directions import load_directions
    d = load_directions(folder, z_dim=z_dim)
    if d is not None and len(d) == 0:
        return None
    return d


def _load_classifier():
    from .classifier import load_classifier
    return load_classifier()


def _load_calibration(folder: Path, model: GAN | None = None):
    """calibration.json, checked by scoring one blank image with it (a stale format fails here, not later)."""
    from .scoring import load_calibration, score_images
    cal = load_calibration(folder)
    if cal is not None and model is not None:
        score_images(model, torch.full((1, model.generator.cfg.channels, model.generator.cfg.resolution,
                                        model.generator.cfg.resolution), -1.0), calibration=cal)
    return cal


def _read_json(path: Path, name: str) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{name} is unreadable: {e}") from None
    return data if isinstance(data, dict) else {"value": data}


def _read_card(path: Path) -> str | None:
    if not path.is_file():
        return None
    return path.read_text(encoding="utf-8", errors="replace")


# ---- small input checks --------------------------------------------------------------------------
def parse_seed(seed: Any) -> int:
    """A seed from a UI/API value: a whole number in latent.SEED_RANGE, else AppInputError."""
    if seed is None or (isinstance(seed, str) and not seed.strip()):
        raise AppInputError("seed is empty; enter a whole number such as 42")
    try:
        x = float(seed)
    except (TypeError, ValueError):
        raise AppInputError(f"seed {seed!r} is not a number; enter a whole number such as 42") from None
    if not math.isfinite(x) or x != int(x):
        raise AppInputError(f"seed {seed!r} is not a whole number; enter e.g. 42")
    lo, hi = L.SEED_RANGE
    if not lo <= int(x) <= hi:
        raise AppInputError(f"seed {int(x)} is out of range; use {lo}..{hi}")
    return int(x)


def parse_float(name: str, value: Any, lo: float, hi: float, default: float | None = None) -> float:
    """A finite float in [lo, hi] (None -> default), else AppInputError naming it."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if default is None:
            raise AppInputError(f"{name} is empty; use a number in [{lo:g}, {hi:g}]")
        return float(default)
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise AppInputError(f"{name} {value!r} is not a number; use a number in [{lo:g}, {hi:g}]") from None
    if not math.isfinite(x) or not lo <= x <= hi:
        raise AppInputError(f"{name}={value!r} is out of range; use a number in [{lo:g}, {hi:g}]")
    return x


def parse_int(name: str, value: Any, lo: int, hi: int, default: int | None = None) -> int:
    """A whole number in [lo, hi] (None -> default), else AppInputError naming it."""
    x = parse_float(name, value, lo, hi, default)
    if x != int(x):
        raise AppInputError(f"{name}={value!r} is not a whole number")
    return int(x)


def class_choices(ctx: AppContext) -> list[str]:
    """Dropdown choices: 'random' then the class names (empty for an unconditional model)."""
    return [RANDOM_CLASS, *ctx.model.class_names] if ctx.conditional else []


def seed_label(ctx: AppContext, seed: int) -> int | None:
    """The class that model.generate(1, seed=seed) picks (None when unconditional)."""
    if not ctx.conditional:
        return None
    g = torch.Generator().manual_seed(int(seed) + 1)
    return int(torch.randint(0, ctx.model.num_classes, (1,), generator=g)[0])


def parse_class(ctx: AppContext, choice: Any, seed: int | None = None, *, allow_auto: bool = False) -> int | None:
    """A class choice (name, index, 'random' or 'auto') -> label; None for unconditional models or 'auto'."""
    if not ctx.conditional:
        return None
    names = ctx.model.class_names
    if choice is None or (isinstance(choice, str) and choice.strip().lower() in ("", RANDOM_CLASS)):
        if seed is None:
            raise AppInputError("class 'random' needs a seed; pick a class name instead")
        return seed_label(ctx, seed)
    if allow_auto and isinstance(choice, str) and choice.strip().lower() == AUTO_CLASS:
        return None
    if isinstance(choice, str) and choice in names:
        return names.index(choice)
    try:
        x = float(choice)
        if x == int(x) and 0 <= int(x) < len(names):
            return int(x)
    except (TypeError, ValueError):
        pass
    extra = f"{AUTO_CLASS}, " if allow_auto else ""
    raise AppInputError(f"class {choice!r} is not one of: {extra}{RANDOM_CLASS}, {', '.join(names)} "
                        f"(or an index 0..{len(names) - 1})")


def class_name(ctx: AppContext, label: int | None) -> str:
    """Display name of a label ('-' for none)."""
    return ctx.model.class_names[label] if label is not None and ctx.conditional else "-"


# ---- Generate ------------------------------------------------------------------------------------
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
        base = _check_latent(ctx, base)
    return View(seed=s, label=label, truncation=trunc, sliders=sliders, base=base)


def _check_latent(ctx: AppContext, z: Any) -> list[float]:
    t = torch.as_tensor(z, dtype=torch.float32).reshape(-1)
    if t.numel() != ctx.model.z_dim or not torch.isfinite(t).all():
        raise AppInputError(f"latent has {t.numel()} values (or non-finite ones); this model needs {ctx.model.z_dim}")
    return t.tolist()


def view_latent(ctx: AppContext, view: View) -> torch.Tensor:
    """z (z_dim,) of a view: seed latent (or the pinned one) times truncation, moved along the sliders."""
    if view.base is not None:
        z = torch.tensor(view.base, dtype=torch.float32) * float(view.truncation)
    else:
        z = L.latent_for_seed(view.seed, ctx.model.z_dim, view.truncation)
    if view.sliders and ctx.directions is not None:
        from .directions import apply_directions
        z = apply_directions(z, ctx.directions, view.sliders)
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


# ---- Interpolate ---------------------------------------------------------------------------------
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
    z = torch.tensor(_check_latent(ctx, state["z"]))
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
            names = _classifier_names(ctx)
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
    from .scoring import score_images
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


def _classifier_names(ctx: AppContext) -> list[str]:
    if ctx.classifier is None:
        return []
    from .data import FASHION_MNIST_CLASSES
    k = ctx.classifier.cfg.num_classes
    return list(FASHION_MNIST_CLASSES) if k == len(FASHION_MNIST_CLASSES) else [str(i) for i in range(k)]


def path_plot(ctx: AppContext, t: list[float], p_real: list[float], calibrated: bool,
              probs: np.ndarray | None) -> Image.Image:
    """Two stacked line plots along the path: D's P(real), and the classifier's class probabilities."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    rows = 2 if probs is not None else 1
    fig = Figure(figsize=(7.0, 2.2 * rows + 0.4), dpi=100)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    ax = axes[0]
    ax.plot(t, p_real, marker="o", ms=3, color="#d62728")
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("P(real)" + ("" if calibrated else "\n(sigmoid)"))
    ax.set_title("Discriminator along the path" + ("" if calibrated else " (uncalibrated)"), fontsize=10)
    ax.grid(alpha=0.3)
    if probs is not None:
        ax2 = axes[1]
        names = _classifier_names(ctx)
        shown = [k for k in range(probs.shape[1]) if probs[:, k].max() >= 0.1] or [int(probs.mean(0).argmax())]
        for k in shown:
            ax2.plot(t, probs[:, k], marker=".", ms=3, label=names[k])
        rest = [k for k in range(probs.shape[1]) if k not in shown]
        if rest:
            ax2.plot(t, probs[:, rest].sum(1), ls="--", color="grey", label="other classes")
        ax2.set_ylim(-0.02, 1.02)
        ax2.set_ylabel("class prob.")
        ax2.set_title("Classifier along the path", fontsize=10)
        ax2.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
        ax2.grid(alpha=0.3)
    axes[-1].set_xlabel("t (0 = endpoint A, 1 = endpoint B)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    buf.seek(0)
    return Image.open(buf).convert("RGB")


# ---- scratch files -------------------------------------------------------------------------------
_PRUNE = {"last": 0.0}
_PRUNE_LOCK = threading.Lock()


def scratch_dir() -> Path:
    """A fresh folder for one request's output files (GAN_APP_SCRATCH, default $TMPDIR/gan-app).

    Folders older than an hour are pruned, at most once a minute.  The root must lie under the
    system temp folder or the working directory: Gradio only copies output files from there.
    """
    root = Path(os.environ.get("GAN_APP_SCRATCH", Path(tempfile.gettempdir()) / "gan-app"))
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    with _PRUNE_LOCK:
        due = now - _PRUNE["last"] > 60
        if due:
            _PRUNE["last"] = now
    if due:
        for old in root.iterdir():
            try:
                if now - old.stat().st_mtime > _SCRATCH_MAX_AGE_S:
                    for f in old.iterdir():
                        f.unlink(missing_ok=True)
                    old.rmdir()
            except OSError:
                pass  # another request is pruning or using it
    d = root / uuid.uuid4().hex[:16]
    d.mkdir()
    return d


def save_png(image: Image.Image, name: str = "image.png", folder: Path | None = None) -> Path:
    """Write a PIL image as a PNG into a fresh scratch folder; returns its path.

    The app returns such paths instead of PIL images for every image it serves as a file: Gradio
    copies a file into its cache atomically, but writes a PIL output in place under a content hash,
    so two concurrent requests producing the same image (the same seed, the same example) could
    serve a half-written file.
    """
    path = (folder or scratch_dir()) / name
    image.save(path, format="PNG")
    return path


# ---- Model tab -----------------------------------------------------------------------------------
_FRONT_MATTER = re.compile(r"\A---\s*\n.*?\n---\s*\n", re.S)
_LOCAL_IMAGE = re.compile(r"!\[([^\]]*)\]\((?!https?://|data:)([^)\s]+)[^)]*\)")


def model_card_markdown(ctx: AppContext) -> str:
    """README.md of the model folder without its YAML front matter; local image links become notes."""
    if not ctx.card:
        return f"_No model card (README.md) in {ctx.folder}._"
    text = _FRONT_MATTER.sub("", ctx.card, count=1)
    return _LOCAL_IMAGE.sub(lambda m: f"_(image `{m.group(2)}`: shown above)_" if Path(m.group(2)).name in MODEL_ASSETS
                            else f"_(image `{m.group(2)}`)_", text).strip()


def model_summary_markdown(ctx: AppContext) -> str:
    """Which model is loaded, from where, and which optional parts are missing."""
    m = ctx.model
    g, d = m.generator.cfg, m.discriminator.cfg
    lines = [f"**Loaded from:** {ctx.source.description}"]
    if getattr(ctx.source, "warning", None):
        lines.append(f"\n> ⚠️ {ctx.source.warning}")
    kind = f"class-conditional ({m.num_classes} classes)" if m.num_classes else "unconditional"
    lines.append(f"\n**Model:** DCGAN-family GAN on {m.dataset}, {kind}; z_dim={g.z_dim}, "
                 f"{g.resolution}x{g.resolution}x{g.channels}, G width {g.width}, D width {d.width}"
                 f"{', spectral norm' if d.spectral_norm else ''}.")
    parts = {"directions": "latent directions (Generate sliders)", "calibration": "score calibration (Score tab)",
             "classifier": "metric classifier (class predictions)", "metrics": "eval.json (metrics table)",
             "card": "model card"}
    missing = [f"- {parts[k]}: {v}" for k, v in ctx.notes.items() if k in parts]
    if missing:
        lines.append("\n**Not available for this model** (the app hides what needs them):\n" + "\n".join(missing))
    return "\n".join(lines)


def metrics_rows(ctx: AppContext) -> list[list[str]]:
    """[metric, value] rows flattened from eval.json (nested keys joined with '.')."""
    rows: list[list[str]] = []

    def walk(prefix: str, v: Any) -> None:
        if isinstance(v, dict):
            for k, sub in v.items():
                walk(f"{prefix}.{k}" if prefix else str(k), sub)
        elif isinstance(v, list) and len(v) > 12:
            rows.append([prefix, f"[{len(v)} values]"])
        elif isinstance(v, float):
            rows.append([prefix, f"{v:.4g}"])
        else:
            rows.append([prefix, str(v)])

    if ctx.eval_metrics:
        walk("", ctx.eval_metrics)
    return rows


def metrics_markdown(ctx: AppContext) -> str:
    """The eval.json tables as Markdown: metrics next to the reference rows, per class, memorization."""
    ev = ctx.eval_metrics
    if not ev:
        return f"_No eval.json in the model folder: run `python -m gan.evaluate --model {ctx.folder} --write`._"
    parts = []
    table = ev.get("table")
    if not table and isinstance(ev.get("metrics"), dict) and isinstance(ev.get("references"), dict):
        try:
            from .metrics import format_table
            table = format_table(ev, ev["references"])
        except Exception as e:  # noqa: BLE001 - fall back to the plain list below
            log.warning("could not format eval.json: %s", e)
    if table:
        parts.append(table)
        facts = []
        if ev.get("n_samples"):
            facts.append(f"{ev['n_samples']} samples, seed {ev.get('seed', '-')}")
        clf = ev.get("classifier")
        if isinstance(clf, dict) and clf.get("test_accuracy") is not None:
            facts.append(f"features of the metric classifier (test accuracy {clf['test_accuracy']:.3f})")
        if ev.get("date"):
            facts.append(f"evaluated {ev['date']}")
        if facts:
            parts.append("_" + "; ".join(facts) + "._")
    else:
        parts.append("| metric | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in metrics_rows(ctx)))
    if ev.get("memorization_table"):
        parts.append(ev["memorization_table"])
    elif isinstance(ev.get("memorization"), dict) and ev["memorization"].get("verdict"):
        parts.append(f"Memorization: {ev['memorization']['verdict']}.")
    return "\n\n".join(parts)


def class_metrics_markdown(ctx: AppContext) -> str:
    """Per-class table from eval.json (FID within each class, share of samples); empty when absent."""
    ev = ctx.eval_metrics or {}
    per_class = [k for k in ("class_fid", "coverage") if isinstance(ev.get(k), dict)]
    if not per_class:
        return ""
    names = list(ev[per_class[0]])
    head = "| class | " + " | ".join({"class_fid": "FID within class", "coverage": "share of samples"}[k]
                                       for k in per_class) + " |"
    rows = [f"| {n} | " + " | ".join(_cell(ev[k].get(n)) for k in per_class) + " |" for n in names]
    return "\n".join([head, "|---" * (len(per_class) + 1) + "|", *rows])


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def model_asset(ctx: AppContext, name: str) -> Path | None:
    """Path of samples.png / curves.png / progress.gif in the model folder, or None."""
    if name not in MODEL_ASSETS:
        raise ValueError(f"{name!r} is not a model asset; use one of {MODEL_ASSETS}")
    p = ctx.folder / name
    if not p.is_file():
        return None
    copy = scratch_dir() / name  # served from a scratch copy: the model folder itself is never exposed
    copy.write_bytes(p.read_bytes())
    return copy


# ---- Score ---------------------------------------------------------------------------------------
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "examples"
_SCORE_HEADERS = ["image", "P(real)", "logit", "real below", "generated below", "class", "OOD"]


def example_images() -> list[str]:
    """Paths of the bundled example images (assets/examples/*.png), sorted."""
    return sorted(str(p) for p in EXAMPLES_DIR.glob("*.png")) if EXAMPLES_DIR.is_dir() else []


def example_gallery() -> list[tuple[str, str]]:
    """(path, caption) of the example images, captioned from their file names."""
    items = []
    for p in example_images():
        stem = Path(p).stem
        kind = stem.split("_", 1)[0]
        what = re.sub(r"_(test\d+|seed\d+)$", "", stem.split("_", 1)[1] if "_" in stem else stem).replace("_", " ")
        caption = {"real": f"real: {what}", "generated": f"generated: {what}",
                   "photo": f"photo-like: {what.removeprefix('like ')}", "not": "not a garment"}.get(kind, stem)
        items.append((p, caption))
    return items


def empty_score_table() -> Any:
    """An empty score table with its column headers."""
    import pandas as pd
    return pd.DataFrame([], columns=_SCORE_HEADERS)


def auc_markdown(ctx: AppContext) -> str:
    """One sentence on how far to trust D: its ROC AUC on held-out real vs generated images."""
    auc = _calibration_auc(ctx)
    if auc is None:
        return ("_No calibration.json for this model: P(real) is the raw sigmoid of D's output, and D's accuracy "
                "on held-out data is unknown._")
    trust = "a strong" if auc >= 0.9 else "a useful" if auc >= 0.75 else "a weak" if auc >= 0.6 else "almost no"
    return (f"On held-out data (real test images vs. generated samples) the discriminator reaches a **ROC AUC of "
            f"{auc:.3f}**: {trust} signal (0.5 = coin flip, 1.0 = perfect).")


def _calibration_auc(ctx: AppContext) -> float | None:
    cal = ctx.calibration
    if cal is None:
        return None
    for key in ("roc_auc", "auc"):
        v = cal.get(key) if isinstance(cal, dict) else getattr(cal, key, None)
        if v is not None:
            return float(v)
    return None


@dataclass
class ScoreReport:
    """What the Score tab shows for a batch of images (and /score returns for one)."""

    results: list[dict]  # JSON-able, one per scored image
    seen: list[tuple[Image.Image, str]]  # (28x28 as D sees it, upscaled; caption)
    table: Any  # pandas DataFrame with _SCORE_HEADERS
    markdown: str
    saliency: list[tuple[Image.Image, str]]
    neighbours: list[tuple[Image.Image, str]]


def _input_name(src: Any, i: int, names: list[str] | None) -> str:
    if names and i < len(names):
        return names[i]
    if isinstance(src, (str, Path)):
        return Path(src).name
    return f"image {i + 1}"


def score_inputs(ctx: AppContext, inputs: list[Any], *, names: list[str] | None = None,
                 neighbours: bool = True, saliency: bool = True) -> ScoreReport:
    """Preprocess and score images (paths, editor values, arrays); unreadable ones are reported, not fatal.

    Raises ImageInputError only when no image at all could be used (naming each file and its problem).
    """
    from .images import ImageInputError, load_and_preprocess
    from .scoring import score_images
    if not inputs:
        raise AppInputError("no images: upload one or more image files (or draw one)")
    if len(inputs) > MAX_SCORE_FILES:
        raise AppInputError(f"{len(inputs)} images given; score at most {MAX_SCORE_FILES} at a time")
    ok: list[tuple[str, Any]] = []
    failed: list[tuple[str, str]] = []
    for i, src in enumerate(inputs):
        name = _input_name(src, i, names)
        try:
            ok.append((name, load_and_preprocess(src)))
        except ImageInputError as e:
            failed.append((name, str(e)))
    if not ok:
        raise ImageInputError("; ".join(f"{n}: {m}" for n, m in failed))
    x = torch.cat([p.tensor for _, p in ok])  # (N, 1, 28, 28) in [-1, 1]
    scored = score_images(ctx.model, x, calibration=ctx.calibration)
    results = [_score_dict(r, name, pre) for (name, pre), r in zip(ok, scored)]
    seen = [(L.to_pil(p.tensor[0], IMAGE_SCALE), f"{n}: P(real) {d['p_real']:.2f}") for (n, p), d in zip(ok, results)]
    sal = _saliency_items(ctx, ok, scored) if saliency else []
    nn_items = _neighbour_items(x[:1]) if neighbours else []
    import pandas as pd
    rows = [[d["image"], _fmt(d["p_real"]) + ("" if d["calibrated"] else " (sigmoid)"), _fmt(d["logit"]),
             _fmt(d["percentile_real"], "%"), _fmt(d["percentile_fake"], "%"),
             f"{d['pred_name']} ({100 * d['pred_prob']:.0f}%)" if d["pred_name"] else "-",
             "-" if d["ood"] is None else ("yes" if d["ood"] else "no")] for d in results]
    rows += [[n, "-", "-", "-", "-", "-", f"not scored: {m}"] for n, m in failed]
    table = pd.DataFrame(rows, columns=_SCORE_HEADERS)
    return ScoreReport(results, seen, table, _score_markdown(ctx, results, failed), sal, nn_items)


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}{unit}" if unit == "%" else f"{v:.3f}"
    return str(v)


def _score_dict(r: Any, name: str, pre: Any) -> dict:
    """A scoring.ScoreResult as the JSON the app shows and /score returns.

    ``p_real`` is the calibrated probability when the model has calibration.json, else D's own
    sigmoid(logit); ``calibrated`` says which.  Everything else keeps gan.scoring's names.
    """
    d = r.to_dict()
    calibrated = d.get("p_real") is not None
    d["p_real_calibrated"] = d.get("p_real")
    d["p_real"] = float(d["p_real"] if calibrated else d["p_real_raw"])
    d.update(image=name, calibrated=calibrated, inverted=bool(pre.inverted), preprocessing=list(pre.notes))
    return d


def _score_markdown(ctx: AppContext, results: list[dict], failed: list[tuple[str, str]]) -> str:
    d = results[0]
    how = "calibrated" if d["calibrated"] else "uncalibrated: D's own sigmoid"
    lines = [f"### {d['image']}: P(real) = {d['p_real']:.2f} ({how})",
             f"Raw discriminator logit {d['logit']:+.3f} (sigmoid {d['p_real_raw']:.3f})."]
    if d.get("percentile_real") is not None:
        lines.append(f"Its score is above {d['percentile_real']:.0f}% of held-out real test images and "
                     f"{d['percentile_fake']:.0f}% of generated images.")
    if d.get("pred_name"):
        lines.append(f"The classifier sees a **{d['pred_name']}** ({100 * d['pred_prob']:.0f}%).")
    if d.get("ood"):
        lines.append(f"\n> ⚠️ **Out of distribution:** this image looks unlike Fashion-MNIST ({d['ood_reason']}); "
                     f"the score means little.")
    if d.get("preprocessing"):
        lines.append("\nPreprocessing: " + "; ".join(d["preprocessing"]) + ".")
    if d.get("notes"):
        lines.append("\nNotes: " + "; ".join(d["notes"]) + ".")
    lines.append("\n" + auc_markdown(ctx))
    if len(results) > 1:
        lines.append(f"\n{len(results)} images scored; the table lists all of them.")
    if failed:
        lines.append("\n**Not scored:** " + "; ".join(f"{n}: {m}" for n, m in failed))
    return "\n".join(lines)


def _saliency_items(ctx: AppContext, ok: list, scored: list) -> list[tuple[Image.Image, str]]:
    from .scoring import overlay, saliency_map
    items = []
    for (name, pre), r in zip(ok, scored):
        try:
            sal = saliency_map(ctx.model, pre.tensor, label=r.label_used)
            items.append((overlay(pre.image28, sal), name))
        except Exception as e:  # noqa: BLE001 - saliency is a bonus, the score stands without it
            log.warning("saliency failed for %s: %s", name, e)
    return items


def _neighbour_items(x: torch.Tensor, k: int = 8) -> list[tuple[Image.Image, str]]:
    from .scoring import nearest_training_images
    try:
        images, dist, idx = nearest_training_images(x, k)
    except Exception as e:  # noqa: BLE001 - e.g. the training data is not installed on this machine
        log.warning("nearest training images unavailable: %s", e)
        return []
    return [(Image.fromarray(im).resize((28 * 4, 28 * 4), Image.Resampling.NEAREST),
             f"#{int(i)} d={float(d):.2f}") for im, d, i in zip(images, dist, idx)]


# ---- Project -------------------------------------------------------------------------------------
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
    from .images import load_and_preprocess
    from .projection import project
    n = parse_int("steps", steps, 2, MAX_PROJECT_STEPS, default=DEFAULT_PROJECT_STEPS)
    if isinstance(class_choice, str) and class_choice.strip().lower() == RANDOM_CLASS:
        class_choice = AUTO_CLASS
    label = parse_class(ctx, class_choice, allow_auto=True)
    pre = load_and_preprocess(src)
    res = project(ctx.model, pre.tensor[0], label=label, num_steps=n, seed=0, progress=progress)
    z = torch.as_tensor(res.z, dtype=torch.float32).reshape(-1)
    lab = None if res.label is None else int(res.label)
    name = _input_name(src, 0, None)
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


def loss_plot(history: list[float]) -> Image.Image:
    """A small line plot of the projection loss per step."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    fig = Figure(figsize=(5, 2.2), dpi=100)
    ax = fig.subplots()
    if history:
        ax.plot(range(1, len(history) + 1), history, color="#1f77b4")
        ax.set_yscale("log" if min(history) > 0 else "linear")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def direction_groups(ctx: AppContext) -> list[tuple[str, list[str], bool]]:
    """(accordion title, direction names, open?) per kind: GANSpace PCs, attributes, then classes (closed)."""
    d = ctx.directions
    if d is None:
        return []
    titles = {"pca": ("Principal directions (GANSpace)", True), "attribute": ("Attributes (InterFaceGAN)", True),
              "class": ("Towards a class (InterFaceGAN, with the classifier)", False)}
    groups = []
    for kind in [*titles, *sorted(set(d.kinds) - set(titles))]:
        names = [n for n, k in zip(d.names, d.kinds) if k == kind]
        if names:
            title, is_open = titles.get(kind, (f"Other directions ({kind})", False))
            groups.append((title, names, is_open))
    return groups


def directions_markdown(ctx: AppContext) -> str:
    """A bullet list of the direction sliders with how each was found and what it measurably changes."""
    d = ctx.directions
    if d is None:
        return ""
    kinds = {"pca": "GANSpace principal direction", "attribute": "InterFaceGAN attribute boundary",
             "class": "InterFaceGAN boundary towards a class"}
    return "\n".join(f"- **{lab}** ({kinds.get(k, k)}): {desc}" for lab, k, desc in zip(d.labels, d.kinds, d.descriptions))


# ---- example images for the Score tab --------------------------------------------------------------
def write_examples(folder: str | Path, model: GAN, *, data_dir: str | None = None) -> list[Path]:
    """Small PNGs for the Score tab: real test images, generated ones, a dark-on-light 'photo', an odd one."""
    from .data import FASHION_MNIST_CLASSES, load_dataset
    from .directions import slug
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    test = load_dataset("fashion-mnist", split="test", data_dir=data_dir)
    written = []
    for c in (0, 3, 7, 8):  # T-shirt/top, Dress, Sneaker, Bag: first test image of each
        i = int((test.labels == c).nonzero()[0])
        p = folder / f"real_{slug(FASHION_MNIST_CLASSES[c])}_test{i}.png"
        Image.fromarray(test.images[i, 0].numpy()).save(p)
        written.append(p)
    labels = [1, 4, 5, 9] if model.num_classes else None  # Trouser, Coat, Sandal, Ankle boot
    x = model.generate(4, seed=2024, labels=labels)
    for j in range(4):
        tag = slug(model.class_names[labels[j]]) if labels else str(j)
        p = folder / f"generated_{tag}_seed2024.png"
        L.to_pil(x[j], 1).save(p)
        written.append(p)
    # a real garment as a photo would show it: dark object on a light, larger canvas
    i = int((test.labels == 9).nonzero()[1])
    dark = Image.fromarray(255 - test.images[i, 0].numpy()).resize((112, 112), Image.Resampling.LANCZOS)
    canvas = Image.new("L", (160, 128), 245)
    canvas.paste(dark, (30, 8))
    p = folder / f"photo_like_ankle_boot_on_white_test{i}.png"
    canvas.save(p)
    written.append(p)
    # something that is not a garment at all: the OOD check should flag it
    yy, xx = np.mgrid[0:28, 0:28]
    checker = (((yy // 4) + (xx // 4)) % 2 * 255).astype(np.uint8)
    p = folder / "not_fashion_checkerboard.png"
    Image.fromarray(checker).save(p)
    written.append(p)
    return written


def main(argv: list[str] | None = None) -> int:
    """python -m gan.app_logic write-examples [MODEL_DIR] [--out assets/examples]."""
    import argparse
    ap = argparse.ArgumentParser(prog="python -m gan.app_logic", description="Helpers for the Gradio app.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write-examples", help="write the Score tab's example PNGs")
    w.add_argument("model_dir", nargs="?", default=None, help="model folder (default: the app's model)")
    w.add_argument("--out", default=str(EXAMPLES_DIR))
    w.add_argument("--data-dir", default=None)
    args = ap.parse_args(argv)
    ctx = load_context(local_dir=args.model_dir) if args.model_dir else load_context()
    for p in write_examples(args.out, ctx.model, data_dir=args.data_dir):
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
