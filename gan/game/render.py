"""Pictures of a game session: D's heatmap with points and arrows, the sample grid, and the charts.

Matplotlib's object API (no pyplot state), so renders from several request threads do not interfere.
"""

from __future__ import annotations

import io
import math

import numpy as np
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from PIL import Image

from gan.game.engine import EQUILIBRIUM_VALUE, OBJECTIVES
from gan.game.fashion import HIST_BINS
from gan.game.plane import PlaneView
from gan.game.toy import LIMIT

REAL, FAKE, D_COLOR, G_COLOR = "#1a9850", "#7b3294", "#d95f02", "#1f78b4"
# D's read-out: purple where D says "generated" (0), white at 1/2, green where it says "real" (1)
D_MAP = LinearSegmentedColormap.from_list("d_map", ["#c2a5cf", "#ffffff", "#a6dba0"])
ARROW_SCALE = 0.1  # plane units per unit of per-point gradient (linear: a vanishing gradient looks short)
ARROW_MAX = 0.5


def _to_image(fig: Figure, dpi: int = 80) -> Image.Image:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def plane_image(view: PlaneView, title: str = "", size: float = 4.6) -> Image.Image:
    """D's heatmap over the plane, real (green) and generated (purple) points, G's gradient arrows."""
    fig = Figure(figsize=(size, size))
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.9))
    ax.imshow(view.heat, cmap=D_MAP, vmin=0, vmax=1, extent=(-LIMIT, LIMIT, -LIMIT, LIMIT), interpolation="bilinear")
    ax.contour(np.linspace(-LIMIT, LIMIT, view.heat.shape[1]), np.linspace(LIMIT, -LIMIT, view.heat.shape[0]),
               view.heat, levels=[0.5], colors="#999999", linewidths=0.8, linestyles="--")
    ax.scatter(view.real[:, 0], view.real[:, 1], s=6, c=REAL, alpha=0.7, linewidths=0, label="real")
    ax.scatter(view.fake[:, 0], view.fake[:, 1], s=6, c=FAKE, alpha=0.8, linewidths=0, label="generated")
    arrows = view.arrows * ARROW_SCALE
    length = np.linalg.norm(arrows, axis=1, keepdims=True)
    arrows = arrows * np.minimum(1.0, ARROW_MAX / np.maximum(length, 1e-12))
    every = max(1, len(arrows) // 96)
    ax.quiver(view.fake[::every, 0], view.fake[::every, 1], arrows[::every, 0], arrows[::every, 1], angles="xy",
              scale_units="xy", scale=1, color=FAKE, width=0.004, alpha=0.8)
    ax.set_xlim(-LIMIT, LIMIT)
    ax.set_ylim(-LIMIT, LIMIT)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or "D(x) over the plane; arrows: where G's loss pushes its points", fontsize=9)
    ax.legend(loc="lower right", fontsize=7, markerscale=2, framealpha=0.8)
    return _to_image(fig)


def grid_frame(samples_grid: Image.Image, title: str) -> Image.Image:
    """The fixed-noise sample grid with a caption line above it."""
    from PIL import ImageDraw
    out = Image.new("RGB", (samples_grid.width, samples_grid.height + 18), "white")
    out.paste(samples_grid.convert("RGB"), (0, 18))
    ImageDraw.Draw(out).text((4, 3), title, fill="black")
    return out


def _series(history: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [(r["d_steps"] + r["g_steps"], r[key]) for r in history if r.get(key) is not None]
    if not rows:
        return np.zeros(0), np.zeros(0)
    a = np.asarray(rows, dtype=float)
    return a[:, 0], a[:, 1]


def _smooth(y: np.ndarray, n: int) -> np.ndarray:
    if len(y) < 3 or n <= 1:
        return y
    n = min(n, len(y))
    c = np.cumsum(np.insert(y, 0, 0.0))
    head = c[1:n] / np.arange(1, n)
    return np.concatenate([head, (c[n:] - c[:-n]) / n])


def _thin(history: list[dict], limit: int = 1500) -> list[dict]:
    every = max(1, math.ceil(len(history) / limit))
    return history[::every] if every > 1 else history


def charts_image(history: list[dict], kind: str, loss: str, width: float = 6.4) -> Image.Image:
    """Four small charts: losses, mean D read-outs with the 1/2 line, V(D, G) with its equilibrium, and
    JS (toy) or G's gradient norm (both modes also show the gradient in the toy's fourth panel)."""
    rows = _thin(history)
    smooth = max(1, len(rows) // 60)
    fig = Figure(figsize=(width, 4.6))
    axes = fig.subplots(2, 2)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.94, bottom=0.1, hspace=0.45, wspace=0.3)
    ax = axes[0, 0]
    for key, color, label in (("d_loss", D_COLOR, "D loss"), ("g_loss", G_COLOR, "G loss")):
        x, y = _series(rows, key)
        ax.plot(x, _smooth(y, smooth), color=color, lw=1, label=label)
    ax.set_title(f"{OBJECTIVES[loss]}: losses at each own last update", fontsize=8)
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    for key, color, label in (("d_real", REAL, "mean D(x)"), ("d_fake", FAKE, "mean D(G(z))")):
        x, y = _series(rows, key)
        ax.plot(x, _smooth(y, smooth), color=color, lw=1, label=label)
    ax.axhline(0.5, color="#555555", ls="--", lw=0.8, label="D = 1/2")
    ax.set_ylim(0, 1)
    ax.set_title("D's read-out (optimum: 1/2)", fontsize=8)
    ax.legend(fontsize=7)
    ax = axes[1, 0]
    x, y = _series(rows, "value")
    ax.plot(x, _smooth(y, smooth), color="#444444", lw=1, label="V(D, G)")
    ax.axhline(EQUILIBRIUM_VALUE[loss], color="#555555", ls="--", lw=0.8,
               label=f"equilibrium {EQUILIBRIUM_VALUE[loss]:.2f}")
    ax.set_title("value of the game V(D, G)", fontsize=8)
    ax.legend(fontsize=7)
    ax = axes[1, 1]
    key, title = ("js", "JS(real, generated), bits") if kind == "toy" else ("g_grad", "G's gradient norm")
    x, y = _series(rows, key)
    ax.plot(x, y if key == "js" else _smooth(y, smooth), color=G_COLOR if key == "g_grad" else "#000000", lw=1)
    if key == "js":
        ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=8)
    for a in axes.flat:
        a.tick_params(labelsize=7)
        a.set_xlabel("updates (D + G)", fontsize=7)
    return _to_image(fig)


def histograms_image(history: list[dict], width: float = 6.4) -> Image.Image:
    """D(x) and D(G(z)) histograms over time (columns = measurements), with the D = 1/2 line."""
    rows = [r for r in history if "hist_real" in r]
    fig = Figure(figsize=(width, 2.5))
    axes = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.86, bottom=0.2, wspace=0.2)
    x_end = (rows[-1]["d_steps"] + rows[-1]["g_steps"]) if rows else 1
    for ax, key, cmap, title in ((axes[0], "hist_real", "Greens", "D(x) on real images"),
                                 (axes[1], "hist_fake", "Purples", "D(G(z)) on generated images")):
        if rows:
            h = np.asarray([r[key] for r in _thin(rows, 400)], dtype=float).T  # (bins, time)
            h = h / np.maximum(h.sum(0, keepdims=True), 1)
            ax.imshow(h, origin="lower", aspect="auto", cmap=cmap, vmin=0, vmax=0.3,
                      extent=(0, max(x_end, 1), 0, 1), interpolation="nearest")
        ax.axhline(0.5, color="#d62728", ls="--", lw=1)
        ax.text(0.01, 0.52, "D = 1/2", color="#d62728", fontsize=7, transform=ax.transAxes)
        ax.set_ylim(0, 1)
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("updates (D + G)", fontsize=7)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel(f"D's output ({HIST_BINS} bins)", fontsize=7)
    return _to_image(fig)


def side_by_side(*images: Image.Image) -> Image.Image:
    """Images next to each other, top-aligned on white (a frame of the headless GIF)."""
    h = max(im.height for im in images)
    out = Image.new("RGB", (sum(im.width for im in images), h), "white")
    x = 0
    for im in images:
        out.paste(im, (x, 0))
        x += im.width
    return out
