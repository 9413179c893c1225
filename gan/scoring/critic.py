"""The critic: Goodfellow's optimal discriminator for the *final* generator, estimated and saved with the model.

At the end of the game the discriminator sits near 1/2 everywhere: it was trained against a moving
generator and only ever had to keep up with it.  Proposition 1 of Goodfellow et al. (2014) names the
discriminator that would be optimal against the final generator G,

    D*(x) = p_data(x) / (p_data(x) + p_g(x)),

and the paper's inner loop estimates it by training D with G fixed, "k steps" run to the end.  The
critic is that estimate: a copy of the game's D (or the same architecture from scratch, or the
conditional D with the metric classifier's labels; ``gan.scoring.refine`` tries each and keeps what
measures best on held-out data) trained with binary cross-entropy on real training images against fresh
samples of the frozen EMA generator, with upload-like augmentations (``gan.scoring.roundtrip``).

A model folder keeps it beside the game's D (which stays: it is part of the GAN):

    critic.safetensors   the critic's weights (a Discriminator state dict)
    critic.json          architecture, label rule, SHA-256 of the weights, training facts, the critic's own
                         calibration (Platt scaling on held-out validation images) and its held-out metrics
                         on real *test* images against samples it never saw, next to the game D's

A calibration made for other weights (SHA-256 mismatch) is ignored with a warning; the critic then
answers with its raw sigmoid.  Folders without a critic still load: the app falls back to the game's D.

Training it is ``gan.scoring.refine`` (train.py runs it after training, through gan.finish); its command line:

    fashion-gan critic DIR [--steps 6000] [--candidates refine,refine-classifier,scratch] [--data-dir D]
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..fileio import sha256_file
from ..models import Discriminator, DiscriminatorConfig
from ..pretrained import GAN, ModelFormatError, load_weights, save_tied_weights
from . import analysis
from .calibration import LogitCalibration

CRITIC_FILE = "critic.safetensors"
CRITIC_CONFIG = "critic.json"
CRITIC_VERSION = 1
LABEL_RULES = ("unconditional", "classifier")


@dataclass
class Critic:
    """A trained critic: its network, label rule, calibration (None when stale or missing) and critic.json."""

    net: Discriminator
    label_rule: str  # "unconditional", or "classifier": a conditional net fed the metric classifier's class
    calibration: LogitCalibration | None
    info: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def conditional(self) -> bool:
        return self.net.conditional

    @property
    def auc(self) -> float | None:
        """Held-out ROC AUC on clean real test images vs unseen samples (None without a valid calibration)."""
        if self.calibration is None:
            return None
        return (self.info.get("metrics", {}).get("clean") or {}).get("auc")

    def labels_for(self, x: torch.Tensor) -> torch.Tensor | None:
        """A conditional critic's labels (B,) for x: the metric classifier's classes (None: max over classes)."""
        if not self.conditional:
            return None
        return analysis.classifier_labels(analysis.get_classifier(), x)

    @torch.no_grad()
    def logits(self, x: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 500) -> torch.Tensor:
        """The critic's logits (B,) float32 on the CPU for x (B, C, R, R) in [-1, 1] (eval mode, deterministic)."""
        dev = next(self.net.parameters()).device
        if self.conditional and labels is None:
            labels = self.labels_for(x)
        out = []
        with analysis.eval_mode(self.net):
            for i in range(0, x.size(0), batch_size):
                xb = x[i:i + batch_size].to(dev).float()
                if not self.conditional:
                    out.append(self.net(xb).float().cpu())
                elif labels is None:  # no classifier: the class the critic finds most real
                    out.append(self.net.class_logits(xb).max(dim=1).values.float().cpu())
                else:
                    out.append(self.net(xb, labels[i:i + batch_size].to(dev)).float().cpu())
        return torch.cat(out)

    def p_real(self, x: torch.Tensor) -> np.ndarray:
        """Calibrated P(real) (B,) for x (the raw sigmoid when the calibration is missing or stale)."""
        z = self.logits(x).double().numpy()
        if self.calibration is not None:
            return self.calibration.p_real(z)
        return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))


def critic_config(model: GAN, label_rule: str) -> DiscriminatorConfig:
    """The critic's architecture: the game D's, conditional only for the classifier label rule."""
    if label_rule not in LABEL_RULES:
        raise ValueError(f"label rule {label_rule!r} is not one of {', '.join(LABEL_RULES)}")
    d = model.discriminator.cfg
    return DiscriminatorConfig(resolution=d.resolution, channels=d.channels, width=d.width,
                               num_classes=d.num_classes if label_rule == "classifier" else 0,
                               spectral_norm=d.spectral_norm, max_width=d.max_width)


def save_critic(folder: str | Path, net: Discriminator, label_rule: str, info: dict) -> Path:
    """Write folder/critic.safetensors, then folder/critic.json (architecture, SHA-256 of the weights, info)."""
    arch = {"class": "Discriminator", "config": asdict(net.cfg), "label_rule": label_rule,
            "parameters": sum(p.numel() for p in net.parameters())}
    return save_tied_weights(net, Path(folder), CRITIC_FILE, CRITIC_CONFIG,
                             {"version": CRITIC_VERSION, "architecture": arch, **info})


def _read_meta(path: Path) -> tuple[DiscriminatorConfig, str, dict]:
    meta = json.loads(path.read_text())
    if not isinstance(meta, dict) or meta.get("version") != CRITIC_VERSION:
        raise ValueError(f"version {meta.get('version') if isinstance(meta, dict) else None!r} is not {CRITIC_VERSION}")
    arch = meta.get("architecture") or {}
    rule = arch.get("label_rule")
    if arch.get("class") != "Discriminator" or rule not in LABEL_RULES:
        raise ValueError("its 'architecture' must name class Discriminator and a label_rule in "
                         f"{', '.join(LABEL_RULES)}")
    return DiscriminatorConfig.from_dict(arch.get("config") or {}), rule, meta


def load_critic(folder: str | Path, *, map_location: str = "cpu") -> Critic | None:
    """folder's critic, or None when it has none (or an unusable one, with a warning).

    A calibration whose SHA-256 does not match critic.safetensors is ignored with a warning: the critic
    then answers with its raw sigmoid and says so in ``notes``.
    """
    folder = Path(folder)
    path, weights = folder / CRITIC_CONFIG, folder / CRITIC_FILE
    if not path.is_file() and not weights.is_file():
        return None
    fix = f"rerun: fashion-gan critic {folder}"
    try:
        cfg, rule, meta = _read_meta(path)
        net = Discriminator(cfg)
        load_weights(net, weights, map_location)
    except (OSError, ValueError, TypeError, ModelFormatError) as e:
        warnings.warn(f"ignoring the critic in {folder}: {CRITIC_CONFIG} or {CRITIC_FILE} unusable "
                      f"({type(e).__name__}: {str(e)[:200]}); {fix}", stacklevel=2)
        return None
    net.eval().requires_grad_(False)
    cal, notes = None, []
    if meta.get("weights_sha256") != sha256_file(weights):
        msg = f"the critic's calibration in {CRITIC_CONFIG} was made for other weights and is ignored; {fix}"
        warnings.warn(msg, stacklevel=2)
        notes.append(msg)
    else:
        try:
            clean = dict((meta.get("metrics") or {}).get("clean") or {})  # held-out metrics of the clean view
            cal = LogitCalibration.from_dict({**(meta.get("calibration") or {}), "metrics": clean})
        except (ValueError, TypeError) as e:
            warnings.warn(f"the critic's calibration in {CRITIC_CONFIG} is invalid ({e}); {fix}", stacklevel=2)
            notes.append(f"critic uncalibrated ({e})")
    return Critic(net=net, label_rule=rule, calibration=cal, info=meta, notes=notes)
