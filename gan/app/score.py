"""The Score tab: ask the discriminator (and the classifier) about uploaded or drawn images."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from .. import latent as L
from ..images import ImageInputError
from .context import IMAGE_SCALE, AppContext
from .inputs import AppInputError
from .uploads import preprocess_uploads

log = logging.getLogger(__name__)

MAX_SCORE_FILES = 16
_SCORE_HEADERS = ["image", "P(real)", "logit", "real below", "generated below", "class", "OOD"]


def empty_score_table() -> Any:
    """An empty score table with its column headers."""
    import pandas as pd
    return pd.DataFrame([], columns=_SCORE_HEADERS)


def auc_markdown(ctx: AppContext) -> str:
    """One sentence on how far to trust D: its ROC AUC on held-out real vs generated images."""
    auc = _calibration_auc(ctx)
    if auc is None:
        return ("_No calibration.json for this model: P(real) is the raw sigmoid of D's output, and D's accuracy "
                "on held-out data is unknown._")
    trust = "a strong" if auc >= 0.9 else "a useful" if auc >= 0.75 else "a weak" if auc >= 0.6 else "almost no"
    return (f"On held-out data (real test images vs. generated samples) the discriminator reaches a **ROC AUC of "
            f"{auc:.3f}**: {trust} signal (0.5 = coin flip, 1.0 = perfect).")


def _calibration_auc(ctx: AppContext) -> float | None:
    cal = ctx.calibration
    if cal is None:
        return None
    for key in ("roc_auc", "auc"):
        v = cal.get(key) if isinstance(cal, dict) else getattr(cal, key, None)
        if v is not None:
            return float(v)
    return None


@dataclass
class ScoreReport:
    """What the Score tab shows for a batch of images (and /score returns for one)."""

    results: list[dict]  # JSON-able, one per scored image
    seen: list[tuple[Image.Image, str]]  # (28x28 as D sees it, upscaled; caption)
    table: Any  # pandas DataFrame with _SCORE_HEADERS
    markdown: str
    saliency: list[tuple[Image.Image, str]]
    neighbours: list[tuple[Image.Image, str]]


def score_inputs(ctx: AppContext, inputs: list[Any], *, names: list[str] | None = None,
                 neighbours: bool = True, saliency: bool = True) -> ScoreReport:
    """Preprocess and score images (paths, editor values, arrays); unreadable ones are reported, not fatal.

    Raises ImageInputError only when no image at all could be used (naming each file and its problem).
    """
    from ..scoring import score_images
    if not inputs:
        raise AppInputError("no images: upload one or more image files (or draw one)")
    if len(inputs) > MAX_SCORE_FILES:
        raise AppInputError(f"{len(inputs)} images given; score at most {MAX_SCORE_FILES} at a time")
    ok, failed = preprocess_uploads(inputs, names)
    if not ok:
        raise ImageInputError("; ".join(f"{n}: {m}" for n, m in failed))
    x = torch.cat([p.tensor for _, p in ok])  # (N, 1, 28, 28) in [-1, 1]
    scored = score_images(ctx.model, x, calibration=ctx.calibration)
    results = [_score_dict(r, name, pre) for (name, pre), r in zip(ok, scored)]
    seen = [(L.to_pil(p.tensor[0], IMAGE_SCALE), f"{n}: P(real) {d['p_real']:.2f}") for (n, p), d in zip(ok, results)]
    sal = _saliency_items(ctx, ok, scored) if saliency else []
    nn_items = _neighbour_items(x[:1]) if neighbours else []
    import pandas as pd
    rows = [[d["image"], _fmt(d["p_real"]) + ("" if d["calibrated"] else " (sigmoid)"), _fmt(d["logit"]),
             _fmt(d["percentile_real"], "%"), _fmt(d["percentile_fake"], "%"),
             f"{d['pred_name']} ({100 * d['pred_prob']:.0f}%)" if d["pred_name"] else "-",
             "-" if d["ood"] is None else ("yes" if d["ood"] else "no")] for d in results]
    rows += [[n, "-", "-", "-", "-", "-", f"not scored: {m}"] for n, m in failed]
    table = pd.DataFrame(rows, columns=_SCORE_HEADERS)
    return ScoreReport(results, seen, table, _score_markdown(ctx, results, failed), sal, nn_items)


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}{unit}" if unit == "%" else f"{v:.3f}"
    return str(v)


def _score_dict(r: Any, name: str, pre: Any) -> dict:
    """A scoring.ScoreResult as the JSON the app shows and /score returns.

    ``p_real`` is the calibrated probability when the model has calibration.json, else D's own
    sigmoid(logit); ``calibrated`` says which.  Everything else keeps gan.scoring's names.
    """
    d = r.to_dict()
    calibrated = d.get("p_real") is not None
    d["p_real_calibrated"] = d.get("p_real")
    d["p_real"] = float(d["p_real"] if calibrated else d["p_real_raw"])
    d.update(image=name, calibrated=calibrated, inverted=bool(pre.inverted), preprocessing=list(pre.notes))
    return d


def _score_markdown(ctx: AppContext, results: list[dict], failed: list[tuple[str, str]]) -> str:
    d = results[0]
    how = "calibrated" if d["calibrated"] else "uncalibrated: D's own sigmoid"
    lines = [f"### {d['image']}: P(real) = {d['p_real']:.2f} ({how})",
             f"Raw discriminator logit {d['logit']:+.3f} (sigmoid {d['p_real_raw']:.3f})."]
    if d.get("percentile_real") is not None:
        lines.append(f"Its score is above {d['percentile_real']:.0f}% of held-out real test images and "
                     f"{d['percentile_fake']:.0f}% of generated images.")
    if d.get("pred_name"):
        lines.append(f"The classifier sees a **{d['pred_name']}** ({100 * d['pred_prob']:.0f}%).")
    if d.get("ood"):
        lines.append(f"\n> ⚠️ **Out of distribution:** this image looks unlike Fashion-MNIST ({d['ood_reason']}); "
                     f"the score means little.")
    if d.get("preprocessing"):
        lines.append("\nPreprocessing: " + "; ".join(d["preprocessing"]) + ".")
    if d.get("notes"):
        lines.append("\nNotes: " + "; ".join(d["notes"]) + ".")
    lines.append("\n" + auc_markdown(ctx))
    if len(results) > 1:
        lines.append(f"\n{len(results)} images scored; the table lists all of them.")
    if failed:
        lines.append("\n**Not scored:** " + "; ".join(f"{n}: {m}" for n, m in failed))
    return "\n".join(lines)


def _saliency_items(ctx: AppContext, ok: list, scored: list) -> list[tuple[Image.Image, str]]:
    from ..scoring import overlay, saliency_map
    items = []
    for (name, pre), r in zip(ok, scored):
        try:
            sal = saliency_map(ctx.model, pre.tensor, label=r.label_used)
            items.append((overlay(pre.image28, sal), name))
        except Exception as e:  # noqa: BLE001 - saliency is a bonus, the score stands without it
            log.warning("saliency failed for %s: %s", name, e)
    return items


def _neighbour_items(x: torch.Tensor, k: int = 8) -> list[tuple[Image.Image, str]]:
    from ..scoring import nearest_training_images
    try:
        images, dist, idx = nearest_training_images(x, k)
    except Exception as e:  # noqa: BLE001 - e.g. the training data is not installed on this machine
        log.warning("nearest training images unavailable: %s", e)
        return []
    return [(Image.fromarray(im).resize((28 * 4, 28 * 4), Image.Resampling.NEAREST),
             f"#{int(i)} d={float(d):.2f}") for im, d, i in zip(images, dist, idx)]
