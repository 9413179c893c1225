"""The detector: "was this made by *a* generator?", for generators the critic never saw.

The critic (``gan.scoring.critic``) estimates D*(x) = p_data / (p_data + p_g) for this model's G only;
on images of other generators it extrapolates, and often answers "real".  The detector is a small CNN
trained on real images against samples of many generators: the shipped G and a zoo of other families
(``gan.zoo``: fully connected GANs, transposed-conv and upsampling DCGANs, WGAN-GP, a VAE, this
project's recipe stopped early), with the augmentations that make such detectors generalise
(CNNDetection, Wang et al. 2020: blur, JPEG, resizing; here also the app's upload preprocessing and the
photo-like round trip of ``gan.scoring.roundtrip``).  Beside the image it reads two residuals:

* NPR (Tan et al. 2024): x minus its 2x2 nearest-neighbour down-and-up copy, the trace that upsampling
  layers leave between neighbouring pixels;
* a high-pass residual (x minus a 3x3 blur): pixel noise, checkerboards and the lack of fine texture.

A model folder keeps it beside the critic, tied to the generator and to its own weights by SHA-256:

    detector.safetensors   the CNN's weights
    detector.json          architecture, the generator's SHA-256, the families it learned from, training
                           facts, the verdict's fitted combination (``gan.scoring.combine``) and held-out
                           metrics
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..fileio import sha256_file
from ..pretrained import load_weights, save_tied_weights
from .nearest import BANK_KEY

DETECTOR_FILE = "detector.safetensors"
DETECTOR_CONFIG = "detector.json"
DETECTOR_VERSION = 1


@dataclass(frozen=True)
class DetectorConfig:
    """The CNN's shape: channel widths of its three resolutions (28, 14, 7)."""

    widths: tuple[int, int, int] = (16, 32, 64)

    @classmethod
    def from_dict(cls, d: dict) -> "DetectorConfig":
        w = tuple(int(v) for v in d.get("widths", cls.widths))
        if len(w) != 3 or min(w) < 1:
            raise ValueError(f"detector widths must be three positive ints, got {w}")
        return cls(widths=w)  # type: ignore[arg-type]


def residuals(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, 28, 28): x, its NPR residual and its high-pass residual, for x (B, 1, 28, 28) in [-1, 1]."""
    npr = x - F.interpolate(x[:, :, ::2, ::2], scale_factor=2, mode="nearest")
    blur = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return torch.cat([x, npr, x - blur], dim=1)


class DetectorNet(nn.Module):
    """Conv-LeakyReLU stages at 28, 14 and 7 pixels on the image and its residuals, then mean and max
    pooling and a linear logit (positive: real)."""

    def __init__(self, cfg: DetectorConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or DetectorConfig()
        a, b, c = self.cfg.widths
        act = nn.LeakyReLU(0.2)
        self.body = nn.Sequential(nn.Conv2d(3, a, 3, 1, 1), act, nn.Conv2d(a, a, 3, 1, 1), act,
                                  nn.Conv2d(a, b, 3, 2, 1), act, nn.Conv2d(b, b, 3, 1, 1), act,
                                  nn.Conv2d(b, c, 3, 2, 1), act, nn.Conv2d(c, c, 3, 1, 1), act)
        self.head = nn.Linear(2 * c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B,) for x (B, 1, 28, 28) in [-1, 1]."""
        h = self.body(residuals(x))
        return self.head(torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1)).flatten()


@dataclass
class Detector:
    """A trained detector: its network, detector.json, and notes (e.g. a stale file)."""

    net: DetectorNet
    info: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    bank: torch.Tensor | None = None  # (N, D) float16 classifier embeddings of real images (gan.scoring.nearest)

    @torch.no_grad()
    def logits(self, x: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
        """The detector's logits (B,) float64 for x (B, 1, 28, 28) in [-1, 1] (positive: real)."""
        self.net.eval()
        return torch.cat([self.net(b.float()) for b in x.split(batch_size)]).double().numpy()

    @property
    def combination(self) -> dict | None:
        """The verdict's fitted combination of signals (``gan.scoring.combine``), or None."""
        return self.info.get("verdict")


def save_detector(folder: str | Path, net: DetectorNet, info: dict, bank: torch.Tensor | None = None) -> Path:
    """Write folder/detector.safetensors (the network, and the real-image bank of the nearest-image signal
    when given), then folder/detector.json (architecture, SHA-256s, info)."""
    arch = {"class": "DetectorNet", "config": asdict(net.cfg), "parameters": sum(p.numel() for p in net.parameters()),
            "real_bank": None if bank is None else list(bank.shape)}
    return save_tied_weights(net, Path(folder), DETECTOR_FILE, DETECTOR_CONFIG,
                             {"version": DETECTOR_VERSION, "architecture": arch, **info},
                             extra=None if bank is None else {BANK_KEY: bank})


def load_detector(folder: str | Path) -> Detector | None:
    """folder's detector, or None when it has none, or when it was made for other weights (with a warning)."""
    folder = Path(folder)
    path, weights = folder / DETECTOR_CONFIG, folder / DETECTOR_FILE
    if not path.is_file() and not weights.is_file():
        return None
    fix = f"rerun: fashion-gan finish {folder} --only detector"
    try:
        meta = json.loads(path.read_text())
        if not isinstance(meta, dict) or meta.get("version") != DETECTOR_VERSION:
            raise ValueError(f"version is not {DETECTOR_VERSION}")
        net = DetectorNet(DetectorConfig.from_dict((meta.get("architecture") or {}).get("config") or {}))
        bank = load_weights(net, weights, "cpu", extra=(BANK_KEY,)).get(BANK_KEY)
    except Exception as e:  # noqa: BLE001 - an unusable extra never breaks loading the model
        warnings.warn(f"ignoring the detector in {folder} ({type(e).__name__}: {str(e)[:200]}); {fix}", stacklevel=2)
        return None
    if meta.get("weights_sha256") != sha256_file(weights):
        warnings.warn(f"ignoring the detector in {folder}: {DETECTOR_FILE} does not match {DETECTOR_CONFIG}; {fix}",
                      stacklevel=2)
        return None
    gen = folder / "generator.safetensors"
    if gen.is_file() and meta.get("generator_sha256") not in (None, sha256_file(gen)):
        warnings.warn(f"ignoring the detector in {folder}: it was trained for other generator weights; {fix}",
                      stacklevel=2)
        return None
    net.eval().requires_grad_(False)
    return Detector(net=net, info=meta, bank=bank)
