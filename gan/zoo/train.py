"""Training one zoo family on Fashion-MNIST and taking its samples (uint8) at the recipe's snapshots.

    samples, info = train_family(FAMILIES["dcgan-convT"], real_uint8, labels, n_samples=2500, seed=0)

The losses are the textbook ones, written out here rather than taken from ``gan.losses`` so that the zoo
stays independent of the project's own recipe (only ``project-early`` uses that, through train.py).
"""

from __future__ import annotations

import time
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .families import Family


def d_loss(loss: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's (critic's) loss on logits of real and generated images."""
    if loss == "ns":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if loss == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if loss == "lsgan":
        return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake ** 2).mean()
    if loss == "wgan-gp":
        return fake.mean() - real.mean()
    raise ValueError(f"unknown zoo loss {loss!r}")


def g_loss(loss: str, fake: torch.Tensor) -> torch.Tensor:
    """The generator's loss on D's logits of its images."""
    if loss == "ns":
        return F.softplus(-fake).mean()
    if loss in ("hinge", "wgan-gp"):
        return -fake.mean()
    if loss == "lsgan":
        return 0.5 * ((fake - 1) ** 2).mean()
    raise ValueError(f"unknown zoo loss {loss!r}")


def gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): (||grad D(x_hat)|| - 1)^2 on random interpolates."""
    a = torch.rand(real.size(0), 1, 1, 1)
    x = (a * real + (1 - a) * fake).requires_grad_(True)
    (g,) = torch.autograd.grad(D(x, y).sum(), x, create_graph=True)
    return ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()


@torch.no_grad()
def sample_uint8(G: nn.Module, n: int, z_dim: int, conditional: bool, seed: int) -> torch.Tensor:
    """n samples (n, 28, 28) uint8 of G in eval mode, classes uniform when conditional."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, z_dim, generator=gen)
    y = torch.arange(n) % 10 if conditional else None
    was = G.training
    G.eval()
    x = torch.cat([G(z[i:i + 500], None if y is None else y[i:i + 500]) for i in range(0, n, 500)])
    G.train(was)
    return x.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)[:, 0]


def _batches(n: int, batch: int, gen: torch.Generator):
    while True:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n - batch + 1, batch):
            yield perm[i:i + batch]


def train_family(fam: Family, real: torch.Tensor, labels: torch.Tensor, *, n_samples: int, seed: int = 0,
                 log: Callable[[str], None] = print) -> tuple[torch.Tensor, dict]:
    """Train fam on real (N, 1, 28, 28) floats in [-1, 1]; return (samples (n, 28, 28) uint8, facts).

    The samples are split evenly over the recipe's snapshots (e.g. 40% and 100% of the steps).
    """
    torch.manual_seed(seed)
    G, D = fam.build()
    opt_g = torch.optim.Adam(G.parameters(), lr=fam.lr, betas=fam.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=fam.lr, betas=fam.betas) if D is not None else None
    gen = torch.Generator().manual_seed(seed)
    batches = _batches(real.size(0), fam.batch_size, gen)
    marks = sorted({max(1, round(s * fam.steps)) for s in fam.snapshots})
    per = [n_samples // len(marks) + (1 if i < n_samples % len(marks) else 0) for i in range(len(marks))]
    out, t0, last = [], time.time(), {}
    for step in range(1, fam.steps + 1):
        if D is None:  # the VAE
            idx = next(batches)
            loss = G.loss(real[idx])
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
            opt_g.step()
            last = {"loss": loss.item()}
        else:
            last = _gan_step(fam, G, D, opt_g, opt_d, real, labels, batches)
        if step in marks:
            k = marks.index(step)
            out.append(sample_uint8(G, per[k], fam.z_dim, fam.conditional, seed=seed * 1000 + step))
            log(f"  {fam.name}: step {step}/{fam.steps}, {time.time() - t0:.0f} s, "
                + ", ".join(f"{a} {b:.3f}" for a, b in last.items()))
    return torch.cat(out), {"seconds": round(time.time() - t0, 1), "snapshots": marks,
                            "parameters_g": sum(p.numel() for p in G.parameters())}


def _gan_step(fam: Family, G: nn.Module, D: nn.Module, opt_g, opt_d, real: torch.Tensor, labels: torch.Tensor,
              batches) -> dict:  # noqa: ANN001 (optimisers and a generator of index batches)
    """(1) update D (fam.d_steps times): real batch vs detached samples; (2) update G through D."""
    for _ in range(fam.d_steps):
        idx = next(batches)
        x, y = real[idx], (labels[idx] if fam.conditional else None)
        z = torch.randn(x.size(0), fam.z_dim)
        fake = G(z, y).detach()
        loss_d = d_loss(fam.loss, D(x, y), D(fake, y))
        if fam.loss == "wgan-gp":
            loss_d = loss_d + 10.0 * gradient_penalty(D, x, fake, y)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
    y = torch.randint(0, 10, (fam.batch_size,)) if fam.conditional else None
    loss_g = g_loss(fam.loss, D(G(torch.randn(fam.batch_size, fam.z_dim), y), y))
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}
