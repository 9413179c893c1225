"""The zoo's families: generators of the kinds a person trains for minutes after a tutorial.

Each recipe names its nets, loss, optimiser and length.  Families differ in architecture (fully
connected, transposed convolutions, nearest or sub-pixel upsampling, a VAE decoder, this project's own
DCGAN), in loss (non-saturating, hinge, least squares, WGAN-GP, ELBO) and in training length.  Samples
are taken at two points of each run (``snapshots``), so that a family holds both its early, blobby
samples and its later ones.

``SEALED`` families are made the same way and kept apart (``assets/zoo/sealed``): no detector learns from
them and no choice is made on them.  They are measured, never tuned on, so they stay an honest estimate of
a generator nobody here has seen (``python benchmarks/critic.py --lofo --sealed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch.nn as nn

from .nets import ConvDiscriminator, ConvGenerator, ConvVAE, MLPDiscriminator, MLPGenerator

LOSSES = ("ns", "hinge", "lsgan", "wgan-gp", "vae", "recipe")


@dataclass(frozen=True)
class Family:
    """One family's recipe: what trains, how, and for how long."""

    name: str
    description: str
    loss: str
    steps: int  # G updates (VAE: optimiser steps)
    batch_size: int = 64
    z_dim: int = 100
    conditional: bool = False
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    d_steps: int = 1  # D (critic) updates per G update
    snapshots: tuple[float, ...] = (0.4, 1.0)  # fractions of `steps` at which samples are taken
    g: dict = field(default_factory=dict)  # keyword arguments of the G (or VAE) constructor
    d: dict = field(default_factory=dict)
    recipe: dict = field(default_factory=dict)  # loss "recipe": train.py options other than its defaults

    def build(self) -> tuple[nn.Module, nn.Module | None]:
        """(G, D) for this recipe; D is None for the VAE and for this project's recipe (trained by train.py)."""
        k = 10 if self.conditional else 0
        if self.loss == "vae":
            return ConvVAE(z_dim=self.z_dim, **self.g), None
        if self.loss == "recipe":
            return None, None  # type: ignore[return-value]
        if self.g.get("kind", "mlp") == "mlp":
            G = MLPGenerator(self.z_dim, num_classes=k, **{a: b for a, b in self.g.items() if a != "kind"})
        else:
            G = ConvGenerator(self.z_dim, **{a: b for a, b in self.g.items() if a != "kind"})
        if self.d.get("kind", "mlp") == "mlp":
            D = MLPDiscriminator(num_classes=k, **{a: b for a, b in self.d.items() if a != "kind"})
        else:
            D = ConvDiscriminator(**{a: b for a, b in self.d.items() if a != "kind"})
        return G, D


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("mlp-gan", "fully connected G and D, the 2014 paper's non-saturating loss (the classic tutorial GAN)",
           loss="ns", steps=2500),
    Family("cgan-mlp", "conditional fully connected GAN (label embedding concatenated), least-squares loss",
           loss="lsgan", steps=2000, conditional=True, g={"hidden": (256, 512)}, d={"hidden": (512, 256)}),
    Family("dcgan-convT", "DCGAN: transposed 4x4 convolutions with batch norm, non-saturating loss",
           loss="ns", steps=1000, g={"kind": "conv", "upsample": "convT", "width": 32},
           d={"kind": "conv", "norm": "batch", "width": 32}),
    Family("upsample-hinge", "nearest-neighbour upsampling + 3x3 convs, spectral-norm D, hinge loss",
           loss="hinge", steps=1000, g={"kind": "conv", "upsample": "nearest", "width": 32},
           d={"kind": "conv", "norm": "spectral", "width": 32}),
    Family("wgan-gp", "WGAN-GP: sub-pixel (pixel-shuffle) G, critic without normalisation, 5 critic steps",
           loss="wgan-gp", steps=300, d_steps=5, lr=1e-4, betas=(0.0, 0.9),
           g={"kind": "conv", "upsample": "shuffle", "width": 32}, d={"kind": "conv", "norm": "none", "width": 32}),
    Family("vae", "convolutional VAE (16-d latent), samples of the decoder from the prior: blurry",
           loss="vae", steps=1000, batch_size=128, z_dim=16, lr=1e-3, betas=(0.9, 0.999)),
    Family("project-early", "this project's own recipe (train.py, width 32, another seed) stopped early",
           loss="recipe", steps=400, batch_size=128, z_dim=64, conditional=True),
    Family("project-ns", "this project's G and D (train.py, width 32, another seed) with the 2014 paper's "
           "non-saturating loss, no R1/R2 and no EMA, for longer",
           loss="recipe", steps=1200, batch_size=128, z_dim=64, conditional=True,
           recipe={"loss": "ns", "r1": 0.0, "r2": 0.0, "ema": False, "seed_offset": 23}),
)}


SEALED: dict[str, Family] = {f.name: f for f in (
    Family("bilinear-lsgan", "bilinear upsampling + 3x3 convs (width 48), batch-norm D, least-squares loss",
           loss="lsgan", steps=1500, g={"kind": "conv", "upsample": "bilinear", "width": 48},
           d={"kind": "conv", "norm": "batch", "width": 32}),
    Family("dcgan-hinge-long", "DCGAN G (transposed 4x4 convs, batch norm) against a spectral-norm D, hinge loss, "
           "trained twice as long as dcgan-convT", loss="hinge", steps=2000, lr=1e-4, betas=(0.0, 0.9),
           g={"kind": "conv", "upsample": "convT", "width": 32}, d={"kind": "conv", "norm": "spectral", "width": 32}),
    Family("project-hinge", "this project's G and D (train.py, width 32, another seed) with the hinge loss and "
           "EMA, no R1/R2", loss="recipe", steps=1600, batch_size=128, z_dim=64, conditional=True,
           recipe={"loss": "hinge", "r1": 0.0, "r2": 0.0, "seed_offset": 41}),
)}
