"""The 2-D mode: a Game on points of the plane, measured by a JS estimate and seen as D's heatmap.

JS estimate: 4,096 fixed real points and G's image of 4,096 fixed latents are binned on a 64 x 64 grid over
[-2, 2]^2, each histogram smoothed by a Gaussian of one cell's width (a binned kernel density estimate)
and normalised; mass that falls off the grid counts as one extra cell. JS is in bits (0 = same, 1 = disjoint).
Two independent samples of one distribution read about 0.03 bits (the estimator's floor at this size).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gan.game.engine import Game, Settings, g_objective, probabilities
from gan.game.toy import ToyDiscriminator, ToyGenerator, grid_density, grid_points, js_divergence, toy_sampler

JS_SAMPLES = 4096
SHOWN_POINTS = 384  # points drawn on the frame (and arrows on the generated ones)
HEATMAP_CELLS = 64


def default_settings() -> Settings:
    """The toy's defaults: non-saturating loss, a small R1 (0.1), Adam(0.5, 0.999) at 5e-4, batch 256."""
    return Settings(loss="ns", lr_d=5e-4, lr_g=5e-4, k=1, gamma=0.1, batch=256)


@dataclass(frozen=True)
class ToyNets:
    """Sizes of the toy's players (a 'too-strong G' preset makes G wider and deeper than D)."""

    z_dim: int = 2
    g_width: int = 64
    g_depth: int = 2
    d_width: int = 64
    d_depth: int = 2


@dataclass
class PlaneView:
    """What one frame of the 2-D mode shows (numpy arrays, ready to draw)."""

    heat: np.ndarray  # (C, C) D's read-out over the plane, row 0 at the top, in [0, 1]
    real: np.ndarray  # (N, 2)
    fake: np.ndarray  # (N, 2)
    arrows: np.ndarray  # (N, 2) the direction each generated point is pushed by G's loss (minus its gradient)


class PlaneGame:
    """The 2-D toy: a Game plus its fixed real sample, fixed latents and the JS estimate."""

    kind = "toy"

    def __init__(self, data: str = "ring", settings: Settings | None = None, *, points: torch.Tensor | None = None,
                 nets: ToyNets | None = None, seed: int = 0):
        nets = nets or ToyNets()
        torch.manual_seed(seed)  # the players' initial weights
        sampler = toy_sampler(data, points)
        G = ToyGenerator(nets.z_dim, nets.g_width, nets.g_depth)
        D = ToyDiscriminator(nets.d_width, nets.d_depth)
        self.data, self.nets = data, nets
        self.game = Game(G, D, sampler, nets.z_dim, settings or default_settings(), seed=seed)
        fixed = torch.Generator().manual_seed(seed + 1)
        self.real_ref = sampler(JS_SAMPLES, fixed)  # (JS_SAMPLES, 2)
        self.z_ref = torch.randn(JS_SAMPLES, nets.z_dim, generator=fixed)
        self.p_real = grid_density(self.real_ref)
        self.grid = grid_points(HEATMAP_CELLS)

    def measure(self) -> dict:
        """Numbers only this mode has: the JS estimate between real and generated points."""
        with torch.no_grad():
            fake = self.game.G(self.z_ref)
        return {"js": js_divergence(self.p_real, grid_density(fake))}

    def view(self) -> PlaneView:
        """D's heatmap, shown real and generated points, and G's gradient arrows on its points."""
        g, loss = self.game, self.game.settings.loss
        n = SHOWN_POINTS
        with torch.no_grad():
            grid_logits = g.D(self.grid)
            real_logits = g.D(self.real_ref[:n])
            fake = g.G(self.z_ref[:n])
        x = fake.clone().requires_grad_(True)
        fake_logits = g.D(x)
        obj = g_objective(loss, fake_logits, real_logits) * n  # per-point gradients, not divided by n
        (grad,) = torch.autograd.grad(obj, x)
        g.D.zero_grad(set_to_none=True)
        if loss == "r3gan":  # relativistic: how a point at p would be judged against G's average sample
            heat = probabilities(loss, grid_logits, fake_logits.detach().mean().expand_as(grid_logits))[0]
        else:
            heat = torch.sigmoid(grid_logits)
        return PlaneView(heat.view(HEATMAP_CELLS, HEATMAP_CELLS).numpy(), self.real_ref[:n].numpy(),
                         fake.numpy(), (-grad).numpy())

