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
              probs: np.ndarray | None, *, d_p_real: list[float] | None = None,
              stop_names: list[str] | None = None) -> Image.Image:
    """Two stacked line plots along the path: P(real), and the classifier's class probabilities.

    With ``d_p_real`` (a model folder with a critic), p_real is the critic's and the game D's is a second line.
    """
    Figure = _figure()
    rows = 2 if probs is not None else 1
    fig = Figure(figsize=(7.0, 2.2 * rows + 0.4), dpi=100)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    ax = axes[0]
    who = "critic" if d_p_real is not None else "discriminator"
    ax.plot(t, p_real, marker="o", ms=3, color="#d62728", label=who)
    if d_p_real is not None:
        ax.plot(t, d_p_real, marker=".", ms=3, ls="--", color="#7f7f7f", label="game's D")
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("P(real)" + ("" if calibrated else "\n(sigmoid)"))
    title = "Critic and the game's discriminator" if d_p_real is not None else "Discriminator"
    ax.set_title(title + " along the path" + ("" if calibrated else " (uncalibrated)"), fontsize=10)
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
    stop_names = stop_names or ["A", "B"]
    if len(stop_names) > 2:  # a path through several stops: mark each one
        for ax_ in axes:
            for k in range(1, len(stop_names) - 1):
                ax_.axvline(k, color="grey", lw=0.8, ls=":")
        axes[-1].set_xticks(range(len(stop_names)), [f"{k}\n{n}" for k, n in enumerate(stop_names)])
    axes[-1].set_xlabel("t (" + ", ".join(f"{k} = endpoint {n}" for k, n in enumerate(stop_names)) + ")")
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


def directions_heatmap(d: Any, attributes: list[str] | None = None) -> Image.Image | None:
    """Slider (rows) x measured attribute change at +3 (columns, in sd of real images), plus class retention.

    The numbers are those stored with the directions (gan.latent.fitting measured them on a tuning batch;
    benchmarks/sliders.py re-measures them on fresh seeds). None for directions without them (format 1).
    """
    if d is None or not any(d.effects_sd):
        return None
    from ..latent.attributes import ATTRIBUTES
    seen = {a for e in d.effects_sd for a in e}
    cols = attributes or [a for a in ATTRIBUTES if a in seen] + sorted(seen - set(ATTRIBUTES))
    M = np.array([[e.get(a, np.nan) for a in cols] for e in d.effects_sd], dtype=float)  # (K, A)
    kept = np.array(d.class_kept, dtype=float)
    Figure = _figure()
    fig = Figure(figsize=(1.2 + 0.62 * (len(cols) + 1), 0.9 + 0.34 * len(d.names)), dpi=100)
    ax, ax_k = fig.subplots(1, 2, gridspec_kw={"width_ratios": [len(cols), 1.3]})
    lim = max(2.0, float(np.nanmax(np.abs(M))) if np.isfinite(M).any() else 2.0)
    ax.imshow(np.ma.masked_invalid(M), cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    for (i, j), v in np.ndenumerate(M):
        if np.isfinite(v):
            ax.text(j, i, f"{v:+.1f}", ha="center", va="center", fontsize=7,
                    color="white" if abs(v) > 0.6 * lim else "black")
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(d.names)), d.names, fontsize=8)
    ax.set_title("attribute change at +3 (sd of real images)", fontsize=9)
    ax_k.imshow(kept[:, None], cmap="Greens", vmin=0.5, vmax=1.0, aspect="auto")
    for i, v in enumerate(kept):
        ax_k.text(0, i, "-" if np.isnan(v) else f"{v:.0%}", ha="center", va="center", fontsize=7)
    ax_k.set_xticks([0], ["class kept"], rotation=45, ha="right", fontsize=8)
    ax_k.set_yticks([])
    fig.tight_layout()
    return figure_to_image(fig)
