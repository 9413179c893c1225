"""The model the app serves and the optional parts of its folder, loaded once at start-up.

    from gan.app.context import load_context
    ctx = load_context()          # arguments, else GAN_MODEL_DIR / GAN_MODEL_REPO, else checkpoints/

Each optional part (directions, calibration, metric classifier, eval.json, model card) that is missing
or broken is recorded in ``ctx.notes`` with how to recompute it; the app hides what needs it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..classifier import load_classifier
from ..pretrained import GAN

log = logging.getLogger(__name__)

IMAGE_SCALE = 8  # 28x28 -> 224x224, nearest neighbour: crisp pixels, a ~2 KB PNG


@dataclass
class AppContext:
    """The model the app serves and the optional parts of its folder (None when missing; see notes)."""

    model: GAN
    source: Any  # gan.hub.ModelSource
    folder: Path
    directions: Any = None  # gan.latent.Directions | None
    calibration: Any = None  # gan.scoring calibration | None
    critic: Any = None  # gan.scoring.critic.Critic | None: None falls back to the game's D
    detector: Any = None  # gan.scoring.detector.Detector | None: None leaves the critic to answer alone
    classifier: Any = None  # gan.classifier.FashionClassifier | None
    eval_metrics: dict | None = None
    card: str | None = None
    notes: dict[str, str] = field(default_factory=dict)  # part -> why it is missing

    @property
    def conditional(self) -> bool:
        return self.model.num_classes > 0

    @property
    def direction_names(self) -> list[str]:
        return list(self.directions.names) if self.directions is not None else []


def load_context(repo: str | None = None, revision: str | None = None, local_dir: str | None = None) -> AppContext:
    """Load the model (arguments, else GAN_MODEL_DIR / GAN_MODEL_REPO / GAN_MODEL_REVISION, else checkpoints/)."""
    from ..hub import load_from_env, load_model
    if repo or revision or local_dir:
        model, source = load_model(repo, revision, local_dir)
    else:
        model, source = load_from_env()
    model.eval().requires_grad_(False)
    folder = Path(source.folder)
    ctx = AppContext(model=model, source=source, folder=folder)
    ctx.directions = _optional(ctx, "directions", lambda: _load_directions(folder, model.z_dim))
    ctx.classifier = _optional(ctx, "classifier", load_classifier)
    ctx.calibration = _optional(ctx, "calibration", lambda: _load_calibration(folder, model))
    ctx.critic = _optional(ctx, "critic", lambda: _load_critic(folder, model))
    ctx.detector = _optional(ctx, "detector", lambda: _load_detector(folder))
    ctx.eval_metrics = _optional(ctx, "metrics", lambda: _read_json(folder / "eval.json", "eval.json"))
    ctx.card = _optional(ctx, "card", lambda: _read_card(folder / "README.md"))
    return ctx


_FIX_HINTS = {"calibration": "; recompute it with: python -m gan.scoring {folder}",
              "critic": "; the game's discriminator answers instead; refine a critic with: "
                        "fashion-gan critic {folder}",
              "detector": "; the critic answers alone (it misses other generators' images); train one with: "
                          "fashion-gan finish {folder} --only detector",
              "directions": "; recompute them with: fashion-gan directions {folder}",
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
    from ..latent import load_directions
    d = load_directions(folder, z_dim=z_dim)
    if d is not None and len(d) == 0:
        return None
    return d


def _load_calibration(folder: Path, model: GAN | None = None):
    """calibration.json, checked by scoring one blank image with it (a stale format fails here, not later)."""
    from ..scoring import load_calibration, score_images
    cal = load_calibration(folder)
    if cal is not None and model is not None:
        score_images(model, torch.full((1, model.generator.cfg.channels, model.generator.cfg.resolution,
                                        model.generator.cfg.resolution), -1.0), calibration=cal)
    return cal


def _load_critic(folder: Path, model: GAN):
    """The critic (critic.safetensors + critic.json), checked by scoring one blank image with it."""
    from ..scoring import load_critic
    critic = load_critic(folder)
    if critic is not None:
        critic.logits(torch.full((1, model.generator.cfg.channels, model.generator.cfg.resolution,
                                  model.generator.cfg.resolution), -1.0))
    return critic


def _load_detector(folder: Path):
    """The any-generator detector (detector.safetensors + detector.json), checked on one blank image."""
    from ..scoring.detector import load_detector
    det = load_detector(folder)
    if det is not None:
        det.logits(torch.full((1, 1, 28, 28), -1.0))
    return det


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


def classifier_names(ctx: AppContext) -> list[str]:
    """Class names of the metric classifier's outputs (Fashion-MNIST's when it has 10; empty without one)."""
    if ctx.classifier is None:
        return []
    from ..data import FASHION_MNIST_CLASSES
    k = ctx.classifier.cfg.num_classes
    return list(FASHION_MNIST_CLASSES) if k == len(FASHION_MNIST_CLASSES) else [str(i) for i in range(k)]
