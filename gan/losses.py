"""GAN objectives as small pure functions of discriminator logits.

The classic minimax game of Goodfellow et al. 2014 is
    min_G max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))],   D(x) = sigmoid(logit(x)).
D maximises it; in practice G maximises log D(G(z)) instead (the *non-saturating* loss), which gives
strong gradients early in training.  ``softplus(-l) = -log sigmoid(l)`` keeps it numerically stable.

``rpgan`` is the relativistic pairing loss of RpGAN (Jolicoeur-Martineau 2018) that R3GAN (Huang et al.,
NeurIPS 2024) combines with R1 and R2 penalties: D scores each real image against a generated one,
D wants sigmoid(D(x) - D(G(z))) -> 1, G wants the reverse.  Use it with ``--r1 G --r2 G``.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

LOSSES = ("ns", "hinge", "wgan-gp", "rpgan")
PAIRED_LOSSES = ("rpgan",)  # G losses that also need D(x) of a real batch


def ns_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """-[log D(x) + log(1 - D(G(z)))]: D's side of the minimax game."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def ns_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """-log D(G(z)): the non-saturating generator loss."""
    return F.softplus(-fake).mean()


def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Hinge loss for D (Lim & Ye 2017, used by SNGAN/BigGAN)."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def wasserstein_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Critic loss of WGAN: E[D(G(z))] - E[D(x)] (pair with ``gradient_penalty``)."""
    return fake.mean() - real.mean()


def generator_mean_loss(fake: torch.Tensor) -> torch.Tensor:
    """-E[D(G(z))]: the generator loss for hinge and WGAN."""
    return -fake.mean()


def rpgan_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(D(x) - D(G(z))) over (real, fake) pairs: the relativistic pairing loss for D."""
    return F.softplus(fake - real).mean()


def rpgan_g_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(D(G(z)) - D(x)): the relativistic pairing loss for G (real: D's logits of real images)."""
    return F.softplus(real - fake).mean()


def d_loss_fn(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Discriminator loss by name."""
    return {"ns": ns_d_loss, "hinge": hinge_d_loss, "wgan-gp": wasserstein_d_loss,
            "rpgan": rpgan_d_loss}[check_loss(name)]


def g_loss_fn(name: str) -> Callable[..., torch.Tensor]:
    """Generator loss by name: fn(fake_logits), or fn(fake_logits, real_logits) for PAIRED_LOSSES."""
    return {"ns": ns_g_loss, "hinge": generator_mean_loss, "wgan-gp": generator_mean_loss,
            "rpgan": rpgan_g_loss}[check_loss(name)]


def check_loss(name: str) -> str:
    """Return name if it is a known loss, else raise a ValueError listing the known ones."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return name


def r1_penalty(logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """E[||grad_x D(x)||^2] (Mescheder et al. 2018); ``images`` must require grad.

    On real images this is R1; on generated images (detached from G) it is R2, as R3GAN uses it.
    """
    (grad,) = torch.autograd.grad(logits.sum(), images, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def r1_r2_penalties(logits: torch.Tensor, images: torch.Tensor, n_real: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(R1, R2) from one pass of D over ``images`` = cat(real (n_real, ...), generated); ``images`` must require grad.

    D scores each image on its own (no batch-dependent layers), so one input gradient holds both penalties.
    """
    (grad,) = torch.autograd.grad(logits.sum(), images, create_graph=True)
    sq = grad.pow(2).flatten(1).sum(1)  # (2B,) squared gradient norm per image
    return sq[:n_real].mean(), sq[n_real:].mean()


def gradient_penalty(D: Callable[..., torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     y: torch.Tensor | None = None) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(||grad D(x_hat)|| - 1)^2] on real/fake interpolates."""
    eps = torch.rand(real.size(0), 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    out = D(x_hat, y)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()
