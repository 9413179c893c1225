"""The Fashion-MNIST mode: a small GAN that trains from scratch on the CPU while the page watches.

The players are deliberately small (a two-layer transposed-conv G and a two-layer conv D) so that a
round takes milliseconds on one CPU thread. The mode keeps its own fixed noise for the sample grid and
reads D's output on every round as two histograms (D(x) and D(G(z))) for the over-time picture.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from gan.data import load_fashion_mnist, to_float
from gan.game.engine import Game, Settings, probabilities

HIST_BINS = 20  # histograms of D's read-out over [0, 1]
GRID_SIDE = 6  # 6 x 6 fixed-noise samples
Z_DIM = 32


class TinyGenerator(nn.Module):
    """z (B, Z) -> images (B, 1, 28, 28) in [-1, 1]: linear to 7x7, two transposed convs."""

    def __init__(self, z_dim: int = Z_DIM, width: int = 32):
        super().__init__()
        self.z_dim, self.width = z_dim, width
        self.fc = nn.Sequential(nn.Linear(z_dim, 2 * width * 49), nn.BatchNorm1d(2 * width * 49), nn.ReLU())
        self.up = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),  # (B, W, 14, 14)
            nn.ConvTranspose2d(width, 1, 4, 2, 1), nn.Tanh())  # (B, 1, 28, 28)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.up(self.fc(z).view(z.size(0), 2 * self.width, 7, 7))


class TinyDiscriminator(nn.Module):
    """images (B, 1, 28, 28) -> logits (B,): two strided convs and a linear read-out."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 4, 2, 1), nn.LeakyReLU(0.2),  # (B, W, 14, 14)
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),  # (B, 2W, 7, 7)
            nn.Flatten(), nn.Linear(2 * width * 49, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


@lru_cache(maxsize=2)
def training_images(data_dir: str | None = None) -> torch.Tensor:
    """Fashion-MNIST's 60,000 training images as uint8 (N, 1, 28, 28), read once per process (no download)."""
    return load_fashion_mnist("train", Path(data_dir) if data_dir else None, download=False).images


def image_sampler(images: torch.Tensor):
    """A sampler fn(n, gen) -> (n, 1, 28, 28) float in [-1, 1] drawing uniformly from uint8 images."""
    def sample(n: int, gen: torch.Generator) -> torch.Tensor:
        return to_float(images[torch.randint(images.size(0), (n,), generator=gen)])
    return sample


def default_settings() -> Settings:
    """The Fashion-MNIST mode's defaults: the non-saturating loss, Adam(0.5, 0.999) at 1e-3, batch 64.

    1e-3 rather than DCGAN's 2e-4: these players are small, and garments appear in about a third of the rounds.
    """
    return Settings(loss="ns", lr_d=1e-3, lr_g=1e-3, k=1, gamma=0.0, batch=64)


class FashionGame:
    """A Game on Fashion-MNIST plus the fixed noise of its grid and D's read-out histograms."""

    kind = "fashion"

    def __init__(self, settings: Settings | None = None, *, data_dir: str | None = None, seed: int = 0,
                 g_width: int = 32, d_width: int = 32, images: torch.Tensor | None = None):
        torch.manual_seed(seed)
        images = training_images(data_dir) if images is None else images
        G, D = TinyGenerator(Z_DIM, g_width), TinyDiscriminator(d_width)
        self.game = Game(G, D, image_sampler(images), Z_DIM, settings or default_settings(), seed=seed)
        fixed = torch.Generator().manual_seed(seed + 1)
        self.z_fixed = torch.randn(GRID_SIDE * GRID_SIDE, Z_DIM, generator=fixed)
        self.real_ref = image_sampler(images)(256, fixed)  # (256, 1, 28, 28): D's read-out on real images

    def measure(self) -> dict:
        """D's read-out on 256 fixed real images and 256 fresh generated ones, as HIST_BINS-bin histograms."""
        g = self.game
        with torch.no_grad():
            g.G.eval()
            try:
                fake = g.G(g.noise(self.real_ref.size(0)))
            finally:
                g.G.train()
            pr, pf = probabilities(g.settings.loss, g.D(self.real_ref), g.D(fake))
        edges = torch.linspace(0, 1, HIST_BINS + 1)
        return {"hist_real": _hist(pr, edges), "hist_fake": _hist(pf, edges)}

    def samples(self) -> torch.Tensor:
        """G's images of the fixed noise (eval mode: running BatchNorm statistics). (36, 1, 28, 28) in [-1, 1]"""
        g = self.game
        with torch.no_grad():
            g.G.eval()
            try:
                return g.G(self.z_fixed)
            finally:
                g.G.train()


def _hist(p: torch.Tensor, edges: torch.Tensor) -> list[int]:
    counts = np.histogram(p.clamp(0, 1).numpy(), bins=edges.numpy())[0]
    return [int(c) for c in counts]
