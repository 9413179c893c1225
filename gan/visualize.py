"""Pictures of a run: sample grids, the training-progress GIF and the loss/score curves."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image


def grid_image(images: torch.Tensor, nrow: int, *, scale: int = 1, padding: int = 2) -> Image.Image:
    """(B, C, H, W) in [-1, 1] -> a PIL grid image, optionally upscaled with nearest neighbour."""
    from torchvision.utils import make_grid
    g = make_grid(images.detach().float().cpu(), nrow=nrow, padding=padding, normalize=True, value_range=(-1, 1))
    arr = g.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    im = Image.fromarray(arr[..., 0] if images.size(1) == 1 else arr, mode="L" if images.size(1) == 1 else "RGB")
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    return im


def save_gif(frames: list[Path], out: Path, *, duration_ms: int = 200, last_frame_ms: int = 1500) -> Path | None:
    """Animated GIF from PNG frames (the 'GAN learning to generate images' picture)."""
    if not frames:
        return None
    ims = [Image.open(p).convert("P", palette=Image.ADAPTIVE) for p in frames]
    durations = [duration_ms] * (len(ims) - 1) + [last_frame_ms]
    ims[0].save(out, save_all=True, append_images=ims[1:], duration=durations, loop=0, optimize=True)
    return out


def read_metrics(path: Path) -> list[dict]:
    """Rows of a metrics.jsonl file; a torn last line (from a crash) is skipped."""
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def plot_curves(metrics_path: Path, out: Path) -> Path | None:
    """PNG of D/G losses, mean D(x) and D(G(z)), and FID (when evaluated) against training step."""
    rows = read_metrics(metrics_path)
    train = [r for r in rows if "d_loss" in r]
    evals = [r for r in rows if "fid" in r]
    if not train:
        return None
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("warning: matplotlib is not installed; skipping curves.png")
        return None
    n = 3 if evals else 2
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 3.6))
    steps = [r["step"] for r in train]
    axes[0].plot(steps, [r["d_loss"] for r in train], label="D loss", lw=1)
    axes[0].plot(steps, [r["g_loss"] for r in train], label="G loss", lw=1)
    axes[0].set_xlabel("step"); axes[0].set_title("losses"); axes[0].legend()
    axes[1].plot(steps, [r["d_real"] for r in train], label="mean D(x)", lw=1)
    axes[1].plot(steps, [r["d_fake"] for r in train], label="mean D(G(z))", lw=1)
    axes[1].set_ylim(0, 1); axes[1].set_xlabel("step"); axes[1].set_title("discriminator output"); axes[1].legend()
    if evals:
        axes[2].plot([r["step"] for r in evals], [r["fid"] for r in evals], "o-", label="FID (EMA G)")
        axes[2].set_xlabel("step"); axes[2].set_title("FID, classifier features (lower is better)")
        axes[2].set_yscale("log"); axes[2].legend()
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
