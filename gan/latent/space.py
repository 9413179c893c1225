"""Where a slider moves: the latent z alone, or z together with the generator's class input.

A conditional generator G(z, e) takes the latent z and the class embedding e = embed(y). An attribute
slider is a direction in z; where no direction in z moves an attribute of a class cleanly enough (the
upper-body classes sit close together, so most moves in z also change what the classifier reads),
it may also move e by a small offset near the class's own embedding: the class label stays, but the
slider can use G's class input to hold the class while the attribute changes. One slider move is
still one forward pass, ``G.forward_with_embedding(z + v * dz, embed(y) + v * de)``.

The fitting works in a whitened input u = [z, e_offset / sigma_e], where sigma_e is the spread of the
class embeddings around their mean, so one unit along any coordinate is a comparable step.

    S = InputSpace(G, with_embedding=True)
    images = S(u, y)                          # u (B, S.dim): z and the whitened embedding offset
    dz, de = S.split(w)                       # a direction in u as a z step and an embedding step
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..models import Generator

SPACES = {"z": "the latent z", "z+class": "z and G's class input (embedding), near the class's own"}


def embedding_spread(G: Generator) -> float:
    """sigma_e: the standard deviation of the class embeddings' entries around their mean embedding."""
    W = G.embed.weight.detach()
    return max(float((W - W.mean(0, keepdim=True)).std()), 1e-3)


class InputSpace(nn.Module):
    """G as a function of u = [z, e_offset / sigma_e] (or z alone) and the label y: what a fit explores."""

    def __init__(self, G: Generator, with_embedding: bool) -> None:
        super().__init__()
        if with_embedding and not G.conditional:
            raise ValueError("the class input only exists for a class-conditional generator")
        self.G = G
        self.with_embedding = with_embedding
        self.sigma = embedding_spread(G) if with_embedding else 0.0
        self.z_dim = G.cfg.z_dim
        self.dim = self.z_dim * (2 if with_embedding else 1)

    @property
    def name(self) -> str:
        return "z+class" if self.with_embedding else "z"

    def split(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(z part, embedding offset in the embedding's own units, or None) of u (..., dim)."""
        if not self.with_embedding:
            return u, None
        return u[..., : self.z_dim], self.sigma * u[..., self.z_dim:]

    def pad(self, z: torch.Tensor) -> torch.Tensor:
        """u for latents z (B, z_dim) with no embedding offset."""
        if not self.with_embedding:
            return z
        return torch.cat([z, torch.zeros_like(z)], dim=1)

    def forward(self, u: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        z, de = self.split(u)
        if not self.G.conditional:
            return self.G(z, None)
        emb = self.G.embed(y)
        return self.G.forward_with_embedding(z, emb if de is None else emb + de)
