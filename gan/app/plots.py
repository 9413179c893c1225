"""Matplotlib figures the app shows as images: scores along an interpolation path, projection loss."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from .context import AppContext, classifier_names


def _figure():
    """A matplotlib Figure on the Agg backend (no display, thread-safe: no pyplot state)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    return Figure


def figure_to_image(fig: Any) -> Image.Image:
    """Render a matplotlib Figure to an RGB PIL image."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def path_plot(ctx: AppContext, t: list[float], p_real: list[float], calibrated: bool,
              probs: np.ndarray | None) -> Image.Image:
    """Two stacked line plots along the path: D's P(real), and the classifier's class probabilities."""
    Figure = _figure()
    rows = 2 if probs is not None else 1
    fig = Figure(figsize=(7.0, 2.2 * rows + 0.4), dpi=100)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    ax = axes[0]
    ax.plot(t, p_real, marker="o", ms=3, color="#d62728")
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("P(real)" + ("" if calibrated else "\n(sigmoid)"))
    ax.set_title("Discriminator along the path" + ("" if calibrated else " (uncalibrated)"), fontsize=10)
    ax.grid(alpha=0.3)
    if probs is not None:
        ax2 = axes[1]
        names = classifier_names(ctx)
        shown = [k for k in range(probs.shape[1]) if probs[:, k].max() >= 0.1] or [int(probs.mean(0).argmax())]
        for k in shown:
            ax2.plot(t, probs[:, k], marker=".", ms=3, label=names[k])
        rest = [k for k in range(probs.shape[1]) if k not in shown]
        if rest:
            ax2.plot(t, probs[:, rest].sum(1), ls="--", color="grey", label="other classes")
        ax2.set_ylim(-0.02, 1.02)
        ax2.set_ylabel("class prob.")
        ax2.set_title("Classifier along the path", fontsize=10)
        ax2.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
        ax2.grid(alpha=0.3)
    axes[-1].set_xlabel("t (0 = endpoint A, 1 = endpoint B)")
    fig.tight_layout()
    return figure_to_image(fig)


def loss_plot(history: list[float]) -> Image.Image:
    """A small line plot of the projection loss per step."""
    Figure = _figure()
    fig = Figure(figsize=(5, 2.2), dpi=100)
    ax = fig.subplots()
    if history:
        ax.plot(range(1, len(history) + 1), history, color="#1f77b4")
        ax.set_yscale("log" if min(history) > 0 else "linear")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return figure_to_image(fig)
