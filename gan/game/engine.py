"""The game itself: one D step, one G step, k D steps per G step, with the losses the seeds compare.

Objectives (logits l = D(.), D(.) read as sigmoid(l)):
* ``minimax``: the seeds' saturating game. D maximises log D(x) + log(1 - D(G(z))); G minimises
  log(1 - D(G(z))), whose gradient vanishes when D confidently rejects G's samples.
* ``ns``: the non-saturating fix: G maximises log D(G(z)) instead (same D loss).
* ``r3gan``: the relativistic pairing loss (RpGAN) with the R1 penalty on real and R2 on generated
  points, as R3GAN combines them. D scores each real point against a generated one, so "D(x)" is read
  as sigmoid(D(x) - D(G(z))) over the pairs and "D(G(z))" as its complement.

The value V(D, G) reported is E[log D(x)] + E[log(1 - D(G(z)))] (its equilibrium is -log 4); for
``r3gan`` it is E[log sigmoid(D(x) - D(G(z)))] (equilibrium -log 2).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from gan.losses import ns_d_loss, ns_g_loss, r1_penalty, rpgan_d_loss, rpgan_g_loss

OBJECTIVES = {"minimax": "minimax (saturating)", "ns": "non-saturating", "r3gan": "R3GAN (RpGAN + R1 + R2)"}
EQUILIBRIUM_VALUE = {"minimax": -math.log(4), "ns": -math.log(4), "r3gan": -math.log(2)}
MAX_K = 20
MAX_LR = 0.05


class GameError(ValueError):
    """A setting of the game is out of range."""


@dataclass(frozen=True)
class Settings:
    """What the player can change while the game runs."""

    loss: str = "ns"
    lr_d: float = 1e-3
    lr_g: float = 1e-3
    k: int = 1  # D steps per G step
    gamma: float = 0.0  # R1 weight (on real points); r3gan also applies it as R2 on generated points
    batch: int = 256

    def checked(self) -> "Settings":
        """self, or a GameError naming the first bad value."""
        if self.loss not in OBJECTIVES:
            raise GameError(f"unknown loss {self.loss!r}; choose one of {', '.join(OBJECTIVES)}")
        for name in ("lr_d", "lr_g"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 < v <= MAX_LR):
                raise GameError(f"{name} must be in (0, {MAX_LR}], got {v!r}")
        if not (isinstance(self.k, int) and 1 <= self.k <= MAX_K):
            raise GameError(f"k (D steps per G step) must be an integer in 1..{MAX_K}, got {self.k!r}")
        if not (isinstance(self.gamma, (int, float)) and 0 <= self.gamma <= 100):
            raise GameError(f"gamma (R1/R2 weight) must be in [0, 100], got {self.gamma!r}")
        if not (isinstance(self.batch, int) and 2 <= self.batch <= 4096):
            raise GameError(f"batch must be an integer in 2..4096, got {self.batch!r}")
        return self

    def changed(self, **changes) -> "Settings":
        """A checked copy with some fields changed."""
        return replace(self, **changes).checked()


def probabilities(loss: str, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """D's read-out per sample: (D(x), D(G(z))) in [0, 1]; relativistic pairs for r3gan."""
    if loss == "r3gan":
        p = torch.sigmoid(real - fake)
        return p, 1 - p
    return torch.sigmoid(real), torch.sigmoid(fake)


def game_value(loss: str, real: torch.Tensor, fake: torch.Tensor) -> float:
    """V(D, G) on one batch of logits (see the module docstring)."""
    if loss == "r3gan":
        return float(-F.softplus(fake - real).mean())
    return float(-F.softplus(-real).mean() - F.softplus(fake).mean())


def g_objective(loss: str, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """G's loss from D's logits on generated (and, for r3gan, real) samples."""
    if loss == "minimax":
        return -F.softplus(fake).mean()  # = E[log(1 - D(G(z)))], minimised by G
    if loss == "ns":
        return ns_g_loss(fake)
    return rpgan_g_loss(fake, real)


class Game:
    """Two players, their optimisers and the latest reading of the game; steps on the CPU."""

    def __init__(self, G: nn.Module, D: nn.Module, sample_real: Callable[[int, torch.Generator], torch.Tensor],
                 z_dim: int, settings: Settings, *, seed: int = 0):
        self.G, self.D, self.sample_real, self.z_dim = G, D, sample_real, z_dim
        self.settings = settings.checked()
        self.gen = torch.Generator().manual_seed(seed)
        self.opt_d = torch.optim.Adam(D.parameters(), lr=settings.lr_d, betas=(0.5, 0.999))
        self.opt_g = torch.optim.Adam(G.parameters(), lr=settings.lr_g, betas=(0.5, 0.999))
        self.d_steps = self.g_steps = self.rounds = 0
        self.last: dict[str, float] = {}
        self.history: list[dict] = []

    def noise(self, n: int) -> torch.Tensor:
        """n latents z ~ N(0, I) from the game's own generator. (n, z_dim)"""
        return torch.randn(n, self.z_dim, generator=self.gen)

    def configure(self, settings: Settings) -> None:
        """Change loss, learning rates, k, gamma or batch between steps (Adam's moments are kept)."""
        self.settings = settings.checked()
        for group in self.opt_d.param_groups:
            group["lr"] = settings.lr_d
        for group in self.opt_g.param_groups:
            group["lr"] = settings.lr_g

    def step_d(self) -> None:
        """(1) Update D on a real and a generated batch: maximise its side of the chosen game."""
        s = self.settings
        real = self.sample_real(s.batch, self.gen)
        with torch.no_grad():
            fake = self.G(self.noise(s.batch))
        pen = s.gamma > 0
        real.requires_grad_(pen)
        fake.requires_grad_(pen and s.loss == "r3gan")
        lr_, lf = self.D(real), self.D(fake)
        loss = rpgan_d_loss(lr_, lf) if s.loss == "r3gan" else ns_d_loss(lr_, lf)
        adv = float(loss.detach())
        if pen:
            loss = loss + s.gamma / 2 * r1_penalty(lr_, real)
            if s.loss == "r3gan":
                loss = loss + s.gamma / 2 * r1_penalty(lf, fake)
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        self.d_steps += 1
        pr, pf = probabilities(s.loss, lr_.detach(), lf.detach())
        self.last.update(d_loss=adv, d_real=float(pr.mean()), d_fake=float(pf.mean()),
                         value=game_value(s.loss, lr_.detach(), lf.detach()))

    def step_g(self) -> None:
        """(2) Update G through D's judgement of a fresh generated batch."""
        s = self.settings
        fake = self.G(self.noise(s.batch))
        for p in self.D.parameters():
            p.requires_grad_(False)
        try:
            real = self.D(self.sample_real(s.batch, self.gen)) if s.loss == "r3gan" else None
            loss = g_objective(s.loss, self.D(fake), real)
            self.opt_g.zero_grad(set_to_none=True)
            loss.backward()
        finally:
            for p in self.D.parameters():
                p.requires_grad_(True)
        grads = [p.grad.flatten() for p in self.G.parameters() if p.grad is not None]
        self.last.update(g_loss=float(loss.detach()), g_grad=float(torch.cat(grads).norm()) if grads else 0.0)
        self.opt_g.step()
        self.g_steps += 1

    def play_round(self) -> None:
        """k D steps, then one G step."""
        for _ in range(self.settings.k):
            self.step_d()
        self.step_g()
        self.rounds += 1

    def reading(self) -> dict:
        """The latest numbers: step counters, settings and each player's loss at its own last update."""
        return {"round": self.rounds, "d_steps": self.d_steps, "g_steps": self.g_steps,
                **{k: v for k, v in asdict(self.settings).items() if k != "batch"}, **self.last}


@dataclass(frozen=True)
class Caps:
    """Bounds of one live session: training stops at whichever comes first."""

    max_steps: int = 20_000  # D + G updates together
    max_seconds: float = 900.0  # wall time since the game was created

    def reason(self, game: Game, started: float) -> str | None:
        """Why the game must stop now, or None."""
        if game.d_steps + game.g_steps >= self.max_steps:
            return f"stopped: the cap of {self.max_steps} steps per session is reached (press Reset to start over)"
        if time.monotonic() - started >= self.max_seconds:
            return (f"stopped: the cap of {self.max_seconds / 60:.0f} minutes per session is reached "
                    f"(press Reset to start over)")
        return None
