"""Batched /generate: the views of many concurrent requests through one forward pass of G.

Gradio's queue hands a ``batch=True`` endpoint every waiting request at once (up to its ``max_batch_size``);
``render_views`` turns their views into images in one pass.  An image never depends on the batch it was in:
G's layers score each image on its own (BatchNorm in eval mode), and the one matrix product whose result
depends on the batch size in PyTorch's CPU kernels (the first linear layer: a matrix-vector product for one
row, a matrix-matrix product for several) runs row by row, exactly as it does for a single request.
"""

from __future__ import annotations

import torch
from PIL import Image

from .. import latent as L
from ..models import Generator
from .context import IMAGE_SCALE, AppContext
from .generate import View, view_class_input, view_latent


@torch.no_grad()
def render_batch(G: Generator, z: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
    """G(z, emb) for a batch (B, z_dim) in eval mode, each row bit-identical to a batch of one; (B, C, R, R)."""
    h = z if emb is None else torch.cat([z, emb], dim=1)  # G's input, as in forward_with_embedding
    was_training = G.training
    G.eval()
    try:
        first = torch.cat([G.fc(h[i:i + 1]) for i in range(h.size(0))])  # (B, C0, S0, S0), row by row
        return torch.tanh(G.to_img(G.blocks(first)))  # (B, C, R, R) in [-1, 1]
    finally:
        G.train(was_training)


def render_views(ctx: AppContext, views: list[View], scale: int = IMAGE_SCALE) -> list[Image.Image]:
    """The Generate tab's image of each view (as generate_view draws it), all in one forward pass."""
    if not views:
        return []
    z = torch.stack([view_latent(ctx, v) for v in views])  # (B, z_dim)
    emb = None
    if ctx.conditional:
        emb = torch.stack([e if (e := view_class_input(ctx, v)) is not None else L.class_embedding(ctx.model, v.label)
                           for v in views])  # (B, z_dim): each view's class input
    x = render_batch(L.generator_of(ctx.model), z, emb)
    return [L.to_pil(img, scale) for img in x]
