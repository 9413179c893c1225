"""The Model tab: which model is served, its pictures, its eval.json metrics and its model card."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from ..evalreport import class_table, evaluation_markdown
from .context import AppContext
from .scratch import scratch_dir

log = logging.getLogger(__name__)

MODEL_ASSETS = ("samples.png", "curves.png", "progress.gif")


_FRONT_MATTER = re.compile(r"\A---\s*\n.*?\n---\s*\n", re.S)
_LOCAL_IMAGE = re.compile(r"!\[([^\]]*)\]\((?!https?://|data:)([^)\s]+)[^)]*\)")


def model_card_markdown(ctx: AppContext) -> str:
    """README.md of the model folder without its YAML front matter; local image links become notes."""
    if not ctx.card:
        return f"_No model card (README.md) in {ctx.folder}._"
    text = _FRONT_MATTER.sub("", ctx.card, count=1)
    return _LOCAL_IMAGE.sub(lambda m: f"_(image `{m.group(2)}`: shown above)_" if Path(m.group(2)).name in MODEL_ASSETS
                            else f"_(image `{m.group(2)}`)_", text).strip()


def model_summary_markdown(ctx: AppContext) -> str:
    """Which model is loaded, from where, and which optional parts are missing."""
    m = ctx.model
    g, d = m.generator.cfg, m.discriminator.cfg
    lines = [f"**Loaded from:** {ctx.source.description}"]
    if getattr(ctx.source, "warning", None):
        lines.append(f"\n> ⚠️ {ctx.source.warning}")
    kind = f"class-conditional ({m.num_classes} classes)" if m.num_classes else "unconditional"
    lines.append(f"\n**Model:** DCGAN-family GAN on {m.dataset}, {kind}; z_dim={g.z_dim}, "
                 f"{g.resolution}x{g.resolution}x{g.channels}, G width {g.width}, D width {d.width}"
                 f"{', spectral norm' if d.spectral_norm else ''}.")
    parts = {"directions": "latent directions (Generate sliders)", "calibration": "score calibration (Score tab)",
             "critic": "critic (Score tab: the game's discriminator answers instead)",
             "classifier": "metric classifier (class predictions)", "metrics": "eval.json (metrics table)",
             "card": "model card"}
    missing = [f"- {parts[k]}: {v}" for k, v in ctx.notes.items() if k in parts]
    if missing:
        lines.append("\n**Not available for this model** (the app hides what needs them):\n" + "\n".join(missing))
    return "\n".join(lines)


def metrics_rows(ctx: AppContext) -> list[list[str]]:
    """[metric, value] rows flattened from eval.json (nested keys joined with '.')."""
    rows: list[list[str]] = []

    def walk(prefix: str, v: Any) -> None:
        if isinstance(v, dict):
            for k, sub in v.items():
                walk(f"{prefix}.{k}" if prefix else str(k), sub)
        elif isinstance(v, list) and len(v) > 12:
            rows.append([prefix, f"[{len(v)} values]"])
        elif isinstance(v, float):
            rows.append([prefix, f"{v:.4g}"])
        else:
            rows.append([prefix, str(v)])

    if ctx.eval_metrics:
        walk("", ctx.eval_metrics)
    return rows


def metrics_markdown(ctx: AppContext) -> str:
    """The eval.json tables as Markdown (gan.evalreport, as the model card renders them); a flat list otherwise."""
    ev = ctx.eval_metrics
    if not ev:
        return f"_No eval.json in the model folder: run `python -m gan.evaluate --model {ctx.folder} --write`._"
    md = evaluation_markdown(ev)
    if md:
        return md
    return "| metric | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in metrics_rows(ctx))


def class_metrics_markdown(ctx: AppContext) -> str:
    """Per-class table from eval.json (FID within each class, share of samples); empty when absent."""
    return class_table(ctx.eval_metrics)


def model_asset(ctx: AppContext, name: str) -> Path | None:
    """Path of samples.png / curves.png / progress.gif in the model folder, or None."""
    if name not in MODEL_ASSETS:
        raise ValueError(f"{name!r} is not a model asset; use one of {MODEL_ASSETS}")
    p = ctx.folder / name
    if not p.is_file():
        return None
    copy = scratch_dir() / name  # served from a scratch copy: the model folder itself is never exposed
    copy.write_bytes(p.read_bytes())
    return copy
