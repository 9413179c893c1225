"""The 2-D toy of the game: point distributions on the plane, a small MLP G and D, and the JS estimate.

Everything lives in the square [-LIMIT, LIMIT]^2 so that the heatmap, the JS grid and the data agree.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

LIMIT = 2.0  # the plane shown and measured: [-2, 2]^2
TOY_DATA = ("ring", "grid", "moons", "drawn")
GRID_CELLS = 64  # JS grid: 64 x 64 cells of 1/16 each
MIN_DRAWN_POINTS = 3


class ToyError(ValueError):
    """A toy distribution could not be built from the given choice or points."""


def ring(n: int, gen: torch.Generator, *, modes: int = 8, radius: float = 1.4, sd: float = 0.07) -> torch.Tensor:
    """n points from `modes` Gaussians evenly spaced on a circle (the classic 8-mode ring). (n, 2)"""
    k = torch.randint(modes, (n,), generator=gen).float()
    centres = torch.stack([torch.cos(2 * math.pi * k / modes), torch.sin(2 * math.pi * k / modes)], 1) * radius
    return centres + sd * torch.randn(n, 2, generator=gen)


def gaussian_grid(n: int, gen: torch.Generator, *, side: int = 3, spacing: float = 1.2,
                  sd: float = 0.06) -> torch.Tensor:
    """n points from a side x side grid of Gaussians centred on the origin. (n, 2)"""
    idx = torch.randint(side, (n, 2), generator=gen).float()
    return (idx - (side - 1) / 2) * spacing + sd * torch.randn(n, 2, generator=gen)


def two_moons(n: int, gen: torch.Generator, *, noise: float = 0.06) -> torch.Tensor:
    """n points from two interleaved half circles, centred and scaled into the plane. (n, 2)"""
    t = torch.rand(n, generator=gen) * math.pi
    upper = torch.rand(n, generator=gen) < 0.5
    x = torch.where(upper, torch.cos(t), 1 - torch.cos(t))
    y = torch.where(upper, torch.sin(t), 0.5 - torch.sin(t))
    pts = torch.stack([x - 0.5, y - 0.25], 1) * 1.2
    return pts + noise * torch.randn(n, 2, generator=gen)


def drawn(points: torch.Tensor, sd: float = 0.05):
    """A sampler around user-drawn points (each draw: a random point plus a little Gaussian jitter)."""
    points = torch.as_tensor(points, dtype=torch.float32)
    if points.dim() != 2 or points.size(1) != 2:
        raise ToyError(f"drawn points must have shape (N, 2), got {tuple(points.shape)}")
    if points.size(0) < MIN_DRAWN_POINTS:
        raise ToyError(f"draw at least {MIN_DRAWN_POINTS} points (got {points.size(0)})")
    if not torch.isfinite(points).all() or points.abs().max() > LIMIT:
        raise ToyError(f"drawn points must lie inside the plane [-{LIMIT}, {LIMIT}]^2")

    def sample(n: int, gen: torch.Generator) -> torch.Tensor:
        i = torch.randint(points.size(0), (n,), generator=gen)
        return points[i] + sd * torch.randn(n, 2, generator=gen)
    return sample


def toy_sampler(name: str, points: torch.Tensor | None = None):
    """The sampler fn(n, gen) -> (n, 2) of a toy distribution by name."""
    if name == "ring":
        return ring
    if name == "grid":
        return gaussian_grid
    if name == "moons":
        return two_moons
    if name == "drawn":
        if points is None:
            raise ToyError("data 'drawn' needs points: draw some on the pad first")
        return drawn(points)
    raise ToyError(f"unknown toy data {name!r}; choose one of {', '.join(TOY_DATA)}")


def points_from_sketch(gray: np.ndarray, *, max_points: int = 400) -> torch.Tensor:
    """Dark pixels of a drawing (H, W) with a light background -> points in the plane (y up). (N, 2)"""
    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim != 2 or min(gray.shape) < 8:
        raise ToyError("the drawing must be a 2-D image of at least 8 x 8 pixels")
    ys, xs = np.nonzero(gray < 0.5 * float(gray.max() if gray.max() > 0 else 1))
    if len(xs) < MIN_DRAWN_POINTS:
        raise ToyError("the drawing is empty: draw a few strokes on the pad first")
    keep = np.linspace(0, len(xs) - 1, min(max_points, len(xs))).round().astype(int)
    h, w = gray.shape
    x = (xs[keep] + 0.5) / w * 2 - 1
    y = 1 - (ys[keep] + 0.5) / h * 2
    return torch.tensor(np.stack([x, y], 1) * LIMIT * 0.9, dtype=torch.float32)


class ToyGenerator(nn.Module):
    """z (B, z_dim) -> points (B, 2): an MLP with `depth` hidden layers of `width` units."""

    def __init__(self, z_dim: int = 2, width: int = 64, depth: int = 2):
        super().__init__()
        layers, d = [], z_dim
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.LeakyReLU(0.2)]
            d = width
        self.net = nn.Sequential(*layers, nn.Linear(d, 2))
        self.z_dim = z_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ToyDiscriminator(nn.Module):
    """points (B, 2) -> logits (B,): an MLP with `depth` hidden layers of `width` units."""

    def __init__(self, width: int = 64, depth: int = 2):
        super().__init__()
        layers, d = [], 2
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.LeakyReLU(0.2)]
            d = width
        self.net = nn.Sequential(*layers, nn.Linear(d, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def grid_points(cells: int = GRID_CELLS) -> torch.Tensor:
    """Centres of a cells x cells grid over the plane, row 0 at the top (y = +LIMIT). (cells^2, 2)"""
    c = (torch.arange(cells, dtype=torch.float32) + 0.5) / cells * 2 * LIMIT - LIMIT
    yy, xx = torch.meshgrid(c.flip(0), c, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)


def grid_density(points: torch.Tensor, cells: int = GRID_CELLS, bandwidth_cells: float = 1.0) -> torch.Tensor:
    """A binned Gaussian KDE of points on the grid: 2-D histogram, smoothed, normalised to sum 1. (cells, cells)"""
    p = points.detach().float()
    ij = ((p + LIMIT) / (2 * LIMIT) * cells).floor().long()
    inside = ((ij >= 0) & (ij < cells)).all(1)
    ij = ij[inside]
    hist = torch.zeros(cells * cells)
    hist.index_add_(0, (cells - 1 - ij[:, 1]) * cells + ij[:, 0], torch.ones(ij.size(0)))
    r = max(1, int(math.ceil(3 * bandwidth_cells)))
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float32) / bandwidth_cells) ** 2)
    k = k / k.sum()
    h = hist.view(1, 1, cells, cells)
    h = F.conv2d(h, k.view(1, 1, 1, -1), padding=(0, r))
    h = F.conv2d(h, k.view(1, 1, -1, 1), padding=(r, 0)).view(cells, cells)
    # points outside the plane count as mass in no cell: they still lower the density inside it
    return h / max(points.size(0), 1)


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> float:
    """Jensen-Shannon divergence in bits (0 = same, 1 = disjoint) of two grid densities (each sums to <= 1)."""
    p, q = p.flatten().clamp_min(0), q.flatten().clamp_min(0)
    # mass off the grid (points outside the plane, or smoothed over its edge) is one more cell
    p = torch.cat([p, (1 - p.sum()).clamp_min(0).view(1)])
    q = torch.cat([q, (1 - q.sum()).clamp_min(0).view(1)])
    p, q = p / p.sum().clamp_min(1e-12), q / q.sum().clamp_min(1e-12)
    m = 0.5 * (p + q)

    def kl(a: torch.Tensor) -> torch.Tensor:
        nz = a > 0
        return (a[nz] * (a[nz] / m[nz]).log2()).sum()
    return float(0.5 * kl(p) + 0.5 * kl(q))
