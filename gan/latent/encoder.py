"""The encoder: an image -> G's input (z and the class) in one forward pass, saved with the model.

GAN inversion by optimisation (``gan.latent.projection``) searches z for every image; an encoder
learns the inverse once (e4e, ReStyle, idinvert's domain-guided encoder) and answers in a millisecond.
Its z is the start of the short refinement and the pivot of the tuning in ``gan.latent.inversion``.

    from gan.latent.encoder import load_encoder
    enc = load_encoder("checkpoints")            # None when the folder has none (or one for other weights)
    z, logits = enc(x)                           # x (B, 1, 28, 28) in [-1, 1] -> (B, z_dim), (B, classes)

A model folder keeps it beside the other extras:

    encoder.safetensors   the weights
    encoder.json          architecture, SHA-256 of the weights and of generator.safetensors, training facts
                          and held-out reconstruction metrics

An encoder trained for other generator weights (SHA-256 mismatch) is ignored with a warning. Training is
``gan.latent.encoder_train``; ``fashion-gan finish`` runs it with the other extras, or alone:

    fashion-gan finish DIR --only encoder
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import save_file

from ..fileio import atomic_path, atomic_write_json, sha256_file
from ..models import Generator
from ..pretrained import ModelFormatError, load_weights

ENCODER_FILE = "encoder.safetensors"
ENCODER_CONFIG = "encoder.json"
ENCODER_VERSION = 1
GENERATOR_FILE = "generator.safetensors"


@dataclass
class EncoderConfig:
    """Architecture arguments (stored in encoder.json): what the encoder reads and what it predicts."""

    resolution: int = 28
    channels: int = 1
    z_dim: int = 64
    num_classes: int = 10  # 0: an unconditional generator, no class head
    width: int = 32  # channels of the first conv; doubled per stride-2 stage
    hidden: int = 256  # the MLP head's hidden units

    @classmethod
    def for_generator(cls, G: Generator, **kw: int) -> "EncoderConfig":
        """The config that inverts G (its resolution, channels, z_dim and classes)."""
        c = G.cfg
        return cls(resolution=c.resolution, channels=c.channels, z_dim=c.z_dim, num_classes=c.num_classes, **kw)


class Encoder(nn.Module):
    """E(x) -> (z (B, z_dim), class logits (B, num_classes) or None); x (B, C, R, R) in [-1, 1]."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        act = lambda: nn.LeakyReLU(0.2, inplace=True)  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(cfg.channels, w, 3, padding=1), act(),  # (B, w, R, R)
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1), act(),  # (B, 2w, R/2, R/2)
            nn.Conv2d(2 * w, 4 * w, 4, stride=2, padding=1), act(),  # (B, 4w, R/4, R/4)
            nn.Conv2d(4 * w, 2 * w, 3, padding=1), act(),  # (B, 2w, R/4, R/4): fewer channels for the head
            nn.Flatten(1),
        )
        side = cfg.resolution // 4
        self.head = nn.Sequential(nn.Linear(2 * w * side * side, cfg.hidden), act(),
                                  nn.Linear(cfg.hidden, cfg.z_dim + cfg.num_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.head(self.features(x))  # (B, z_dim + num_classes)
        z, logits = out[:, :self.cfg.z_dim], out[:, self.cfg.z_dim:]
        return z, (logits if self.cfg.num_classes else None)


def check_pair(enc: Encoder, G: Generator) -> None:
    """Raise ValueError when the encoder does not invert this generator's input and image shapes."""
    want = EncoderConfig.for_generator(G, width=enc.cfg.width, hidden=enc.cfg.hidden)
    if want != enc.cfg:
        raise ValueError(f"encoder config {asdict(enc.cfg)} does not match the generator {asdict(want)}")


def save_encoder(folder: str | Path, enc: Encoder, info: dict) -> Path:
    """Write folder/encoder.safetensors, then folder/encoder.json (architecture, SHA-256s, info); return the JSON."""
    folder = Path(folder)
    weights = folder / ENCODER_FILE
    state = {k: v.detach().float().contiguous().cpu() for k, v in enc.state_dict().items()}
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    gen = folder / GENERATOR_FILE
    meta = {"version": ENCODER_VERSION,
            "architecture": {"class": "Encoder", "config": asdict(enc.cfg),
                             "parameters": sum(p.numel() for p in enc.parameters())},
            "weights": ENCODER_FILE, "weights_sha256": sha256_file(weights),
            "generator_sha256": sha256_file(gen) if gen.is_file() else None, **info}
    return atomic_write_json(folder / ENCODER_CONFIG, meta)  # the JSON last: its presence marks a complete pair


def read_encoder_info(folder: str | Path) -> dict | None:
    """encoder.json's contents (None when missing or unreadable)."""
    try:
        meta = json.loads((Path(folder) / ENCODER_CONFIG).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _read_config(meta: dict) -> EncoderConfig:
    if meta.get("version") != ENCODER_VERSION:
        raise ValueError(f"version {meta.get('version')!r} is not {ENCODER_VERSION}")
    arch = meta.get("architecture") or {}
    if arch.get("class") != "Encoder":
        raise ValueError("its 'architecture' must name class Encoder")
    try:
        return EncoderConfig(**(arch.get("config") or {}))
    except TypeError as e:
        raise ValueError(f"bad encoder config: {e}") from None


def load_encoder(folder: str | Path, *, map_location: str = "cpu") -> Encoder | None:
    """folder's encoder in eval mode, or None when it has none, or one for other weights (with a warning)."""
    folder = Path(folder)
    path, weights = folder / ENCODER_CONFIG, folder / ENCODER_FILE
    if not path.is_file() and not weights.is_file():
        return None
    fix = f"retrain it: fashion-gan finish {folder} --only encoder"
    meta = read_encoder_info(folder)
    try:
        if meta is None:
            raise ValueError(f"{ENCODER_CONFIG} is missing or not JSON")
        enc = Encoder(_read_config(meta))
        load_weights(enc, weights, map_location)
    except (OSError, ValueError, TypeError, ModelFormatError) as e:
        warnings.warn(f"ignoring the encoder in {folder} ({type(e).__name__}: {str(e)[:200]}); {fix}", stacklevel=2)
        return None
    if meta.get("weights_sha256") != sha256_file(weights):
        warnings.warn(f"ignoring the encoder in {folder}: {ENCODER_FILE} is not the file {ENCODER_CONFIG} describes; "
                      f"{fix}", stacklevel=2)
        return None
    gen = folder / GENERATOR_FILE
    if gen.is_file() and meta.get("generator_sha256") != sha256_file(gen):
        warnings.warn(f"ignoring the encoder in {folder}: it was trained for other generator weights; {fix}",
                      stacklevel=2)
        return None
    return enc.eval().requires_grad_(False)
