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

Command line (also run by train.py after training):

    python -m gan.scoring.critic DIR [--steps 6000] [--candidates refine,refine-classifier,scratch] [--data-dir D]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from ..fileio import atomic_path, atomic_write_json, sha256_file
from ..models import Discriminator, DiscriminatorConfig
from ..pretrained import GAN, ModelFormatError, load_weights
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
    folder = Path(folder)
    weights = folder / CRITIC_FILE
    state = {k: v.detach().float().contiguous().cpu() for k, v in net.state_dict().items()}
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    meta = {"version": CRITIC_VERSION,
            "architecture": {"class": "Discriminator", "config": asdict(net.cfg), "label_rule": label_rule,
                             "parameters": sum(p.numel() for p in net.parameters())},
            "weights": CRITIC_FILE, "weights_sha256": sha256_file(weights), **info}
    return atomic_write_json(folder / CRITIC_CONFIG, meta)


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
    fix = f"rerun: python -m gan.scoring.critic {folder}"
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


def write_critic(folder: str | Path, *, model: GAN | None = None, data_dir: str | Path | None = None,
                 **options) -> Path:
    """Refine a critic for the model in folder (``gan.scoring.refine``) and save it there; returns critic.json."""
    from .refine import RefineOptions, refine_critic
    folder = Path(folder)
    if model is None:
        if not (folder / "config.json").is_file():
            raise ValueError(f"{folder} is not a model folder (no config.json); pass the folder train.py wrote")
        model = GAN.from_pretrained(str(folder))
    result = refine_critic(model, RefineOptions(data_dir=str(data_dir) if data_dir else None, **options))
    path = save_critic(folder, result.net, result.label_rule, result.info)
    if (folder / "README.md").is_file():  # the model card reports the critic's metrics
        try:
            from ..modelcard import rerender
            rerender(folder)
        except Exception as e:  # noqa: BLE001 - the card is documentation: never fail over it
            print(f"warning: model card not re-rendered ({type(e).__name__}: {str(e)[:160]}); "
                  f"run: python -m gan.modelcard {folder}")
    return path


def format_report(meta: dict) -> str:
    """The candidates compared on validation data and the chosen critic's held-out test metrics, as text."""
    lines = ["candidate            val AUC clean  upload  photo  mean   steps (best)  seconds"]
    for name, c in (meta.get("candidates") or {}).items():
        v = c["val"]
        mark = " <- kept" if name == meta.get("candidate") else ""
        lines.append(f"{name:<20} {v['clean']:>13.4f}  {v['upload']:.4f}  {v['photo']:.4f}  {c['score']:.4f}  "
                     f"{c['steps']:>5} ({c['best_step']:>5})  {c['seconds']:>7.1f}{mark}")
    lines.append("held-out test (real test images vs unseen samples):  ROC AUC  AP      acc@0.5  ECE     FPR real")
    for who, key in (("critic", "metrics"), ("game D", "game_discriminator")):
        for view, m in (meta.get(key) or {}).items():
            lines.append(f"  {who:<7} {view:<44} {m['auc']:.4f}   {m['ap']:.4f}  {m['accuracy']:.4f}   "
                         f"{m['ece']:.4f}  {m['fpr_real']:.4f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: python -m gan.scoring.critic DIR -> DIR/critic.safetensors + critic.json and a report."""
    from .refine import RefineOptions
    d = RefineOptions()
    p = argparse.ArgumentParser(prog="python -m gan.scoring.critic",
                                description="Refine a critic (the optimal discriminator for the final generator) "
                                            "and save it in the model folder.")
    p.add_argument("folder", help="model folder (config.json + *.safetensors)")
    p.add_argument("--steps", type=int, default=d.steps,
                   help=f"most training steps of the best candidate (default: {d.steps})")
    p.add_argument("--screen-steps", type=int, default=d.screen_steps,
                   help=f"steps of every candidate before the best is chosen (default: {d.screen_steps})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"real (and as many generated) images per step "
                                                                        f"(default: {d.batch_size})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate (default: {d.lr})")
    p.add_argument("--candidates", default=",".join(d.candidates),
                   help=f"comma-separated candidates to try (default: {','.join(d.candidates)})")
    p.add_argument("--pool", type=int, default=d.pool, help=f"round-tripped images per side and mode (default: {d.pool})")
    p.add_argument("--n-val", type=int, default=d.n_val, help=f"validation images per side (default: {d.n_val})")
    p.add_argument("--n-test", type=int, default=d.n_test, help=f"test images per side (default: {d.n_test})")
    p.add_argument("--n-train", type=int, default=None, help="use at most N real training images (default: all)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default: {d.seed})")
    p.add_argument("--data-dir", default=None, help="folder with the data set files (default: auto)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    try:
        path = write_critic(a.folder, data_dir=a.data_dir, steps=a.steps, screen_steps=a.screen_steps,
                            batch_size=a.batch_size, lr=a.lr,
                            candidates=tuple(c.strip() for c in a.candidates.split(",") if c.strip()),
                            pool=a.pool, n_val=a.n_val, n_test=a.n_test, n_train=a.n_train, seed=a.seed)
    except (ValueError, OSError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    meta = json.loads(path.read_text())
    print(format_report(meta))
    print(f"wrote {path.parent / CRITIC_FILE} ({(path.parent / CRITIC_FILE).stat().st_size / 1e6:.2f} MB) and {path.name} "
          f"in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
