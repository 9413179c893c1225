"""Saliency: which pixels move a discriminator's logit (SmoothGrad), and a heatmap overlay to show it.

    sal = saliency_map(model, x, critic=critic)   # explains the critic; without it, the game's D
    overlay(image28, sal)                         # the image upscaled with a red-to-yellow heatmap
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from ..pretrained import GAN
from . import analysis

if TYPE_CHECKING:
    from .critic import Critic


def _label_for(net: torch.nn.Module, model: GAN, x: torch.Tensor, label: int | None, critic: "Critic | None") -> int | None:
    """The label a conditional net gets for one image under the label rule (None for an unconditional net)."""
    if not net.conditional:
        return None
    if label is None:
        if critic is not None:
            label = critic.labels_for(x.cpu())
        else:
            label = int(analysis.analyse(model, x.cpu(), None)["label"][0])
    if not 0 <= int(label) < net.cfg.num_classes:
        raise ValueError(f"label={label} must be in [0, {net.cfg.num_classes - 1}]")
    return int(label)


def saliency_map(model: GAN, x: torch.Tensor, label: int | None = None, *, critic: "Critic | None" = None,
                 samples: int = 16, noise: float = 0.15, seed: int = 0) -> np.ndarray:
    """(R, R) in [0, 1]: SmoothGrad |d logit / d x| over `samples` noisy copies (noise = fraction of [-1, 1]).

    The logit is the critic's when one is given, else the game D's; ``label`` (a conditional net's y)
    defaults to the label rule.
    """
    net = critic.net if critic is not None else model.discriminator
    if x.dim() != 4 or x.size(0) != 1:
        raise ValueError(f"saliency_map takes one image (1, C, R, R), got shape {tuple(x.shape)}")
    dev = next(net.parameters()).device
    x = x.detach().float().to(dev)
    lab = _label_for(net, model, x, label, critic)
    n = max(samples, 1)
    y = torch.full((n,), lab, dtype=torch.long, device=dev) if lab is not None else None
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn((n, *x.shape[1:]), generator=g).to(dev) * (noise * 2.0)
    if samples <= 1:
        eps.zero_()  # plain gradient
    with analysis.eval_mode(net), torch.enable_grad():
        xn = (x + eps).requires_grad_(True)  # (S, C, R, R)
        logits = net(xn, y) if net.conditional else net(xn)
        (grad,) = torch.autograd.grad(logits.sum(), xn)  # touches no parameter's .grad
    sal = grad.abs().mean(dim=0).sum(dim=0).cpu().numpy()  # (R, R)
    top = float(sal.max())
    return (sal / top if top > 0 else sal).astype(np.float32)


def overlay(image28: Image.Image, saliency: np.ndarray, *, scale: int = 8, alpha: float = 0.6) -> Image.Image:
    """The grayscale image upscaled `scale` times (nearest) with a red-to-yellow saliency heatmap blended on top."""
    base = np.asarray(image28.convert("L").resize((image28.width * scale, image28.height * scale),
                                                  Image.Resampling.NEAREST), dtype=np.float32) / 255.0
    s = np.clip(np.asarray(saliency, np.float32), 0.0, 1.0)
    s_big = np.asarray(Image.fromarray(s).resize((base.shape[1], base.shape[0]), Image.Resampling.BILINEAR))
    s_big = np.clip(s_big, 0.0, 1.0)
    heat = np.stack([np.clip(2 * s_big, 0, 1), np.clip(2 * s_big - 1, 0, 1), np.zeros_like(s_big)], -1)  # red->yellow
    w = (alpha * s_big)[..., None]
    rgb = (1.0 - w) * base[..., None] + w * heat
    return Image.fromarray(np.round(rgb * 255).astype(np.uint8))
