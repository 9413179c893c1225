"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) applied to real *and* fake images.

Every op is differentiable w.r.t. the image, so G gets gradients through the augmented D input.
Policies are comma-separated: "color", "translation", "cutout".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy: str) -> list[str]:
    """Split and validate a policy string like "color,translation"."""
    ops = [p.strip() for p in policy.split(",") if p.strip()]
    bad = [p for p in ops if p not in POLICIES]
    if bad:
        raise ValueError(f"unknown augmentation {bad}; choose from {', '.join(POLICIES)}")
    return ops


def diff_augment(x: torch.Tensor, policy: str | list[str]) -> torch.Tensor:
    """Augment a batch (B, C, H, W) in [-1, 1] with the given ops; same op family for real and fake."""
    ops = parse_policy(policy) if isinstance(policy, str) else policy
    for op in ops:
        x = _OPS[op](x)
    return x


def rand_color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness (+-0.5) and contrast (x0.5..1.5), per sample."""
    b = x.size(0)
    x = x + (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean
    return x


def rand_translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each sample by up to ratio*size pixels, zero ("black") padding, via one gather."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = torch.randint(-sh, sh + 1, (b, 1, 1), device=x.device)
    ty = torch.randint(-sw, sw + 1, (b, 1, 1), device=x.device)
    gi, gj = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gi = torch.clamp(gi.unsqueeze(0) + tx + 1, 0, h + 1)
    gj = torch.clamp(gj.unsqueeze(0) + ty + 1, 0, w + 1)
    pad = F.pad(x, [1, 1, 1, 1], value=-1.0)  # (B, C, H+2, W+2); -1 is background
    idx = (gi * (w + 2) + gj).view(b, 1, h * w).expand(-1, x.size(1), -1)
    return pad.flatten(2).gather(2, idx).view_as(x)


def rand_cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Blank a random square of ratio*size per sample (set to background -1)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device) - ch // 2
    oy = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device) - cw // 2
    gi = torch.arange(h, device=x.device).view(1, h, 1)
    gj = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (gi >= ox) & (gi < ox + ch) & (gj >= oy) & (gj < oy + cw)  # (B, H, W)
    keep = (~inside).unsqueeze(1).to(x.dtype)
    return x * keep - (1 - keep)


_OPS = {"color": rand_color, "translation": rand_translation, "cutout": rand_cutout}
