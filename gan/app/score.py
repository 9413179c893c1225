"""The Score tab: is an upload real or generated? One verdict from the critic, the detector and the distance to
the data, the game's discriminator beside it."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from .. import latent as L
from ..images import ImageInputError
from .context import IMAGE_SCALE, AppContext
from .inputs import AppInputError
from .score_table import score_table
from .uploads import preprocess_uploads

log = logging.getLogger(__name__)

MAX_SCORE_FILES = 16
def _trust(auc: float) -> str:
    return "a strong" if auc >= 0.9 else "a useful" if auc >= 0.75 else "a weak" if auc >= 0.6 else "almost no"


def auc_markdown(ctx: AppContext) -> str:
    """Who answers and how far to trust it: the critic's and the game D's ROC AUC on held-out data."""
    d_auc = _calibration_auc(ctx)
    d_text = ("the game's discriminator has no calibration.json: its accuracy on held-out data is unknown"
              if d_auc is None else f"the game's discriminator reaches {d_auc:.3f} ({_trust(d_auc)} signal)")
    critic = ctx.critic
    if critic is None:
        return ("_The game's discriminator answers here (this model folder has no critic; refine one with "
                f"`fashion-gan critic DIR`)._ On held-out data (real test images vs. generated samples) "
                f"{d_text}: 0.5 = coin flip, 1.0 = perfect.")
    if critic.auc is None:
        return ("**The critic answers, uncalibrated** (its raw sigmoid): the calibration in critic.json was made for "
                "other weights, so its accuracy is unknown; rerun `fashion-gan critic DIR`. On held-out "
                f"data {d_text}.")
    m = critic.info.get("metrics", {})
    photo = m.get("photo", {}).get("auc")
    after = f", {photo:.3f} after a photo-like round trip (JPEG, tint, rotation)" if photo is not None else ""
    critic_text = (f"On held-out data (real test images vs. samples it never saw) the critic reaches a "
                   f"**ROC AUC of {critic.auc:.3f}**{after}; {d_text} (0.5 = coin flip, 1.0 = perfect).")
    if ctx.detector is None or ctx.detector.combination is None:
        return "**The critic answers.** " + critic_text
    n = len(ctx.detector.info.get("families") or [])
    sigs = ctx.detector.combination.get("signals") or []
    return (f"**One verdict from {len(sigs)} signals.** The **critic** knows this model's own samples; the **detector** "
            f"looks for the traces any generator leaves (it learned from this model and {n} other families: "
            "fully connected, transposed-conv and upsampling GANs, WGAN-GP, a VAE)" + (
                ", in the image and in its mirror image" if "mirror" in sigs else "") + "; the **distance to the data** "
            "says whether the image is like Fashion-MNIST at all" + (
                ", and the **nearest real garment** whether any real one is close to it (these two need no "
                "generator at all). " if "nearest" in sigs else ". ") + (
                "An image is called real only when every signal finds it real: one signal sure of \"generated\" "
                "is enough. " if ctx.detector.combination.get("form") == "softmin" else "") +
            "An image unlike the data is never called real, and the answer names the signal that decided. "
            + critic_text)


def _calibration_auc(ctx: AppContext) -> float | None:
    cal = ctx.calibration
    if cal is None:
        return None
    for key in ("roc_auc", "auc"):
        v = cal.get(key) if isinstance(cal, dict) else getattr(cal, key, None)
        if v is not None:
            return float(v)
    return None


def two_discriminators_markdown(ctx: AppContext) -> str:
    """Why there are two discriminators, and what each one is (shown under the Score tab)."""
    d_auc = _calibration_auc(ctx)
    c_auc = ctx.critic.auc if ctx.critic is not None else None
    fmt = (lambda v: "unknown" if v is None else f"{v:.3f}")  # noqa: E731
    return (
        "**Why the game's discriminator sits at 1/2.** A GAN trains D and G against each other. As G gets "
        "better, the best D can do against it approaches a coin flip: when G's samples are distributed like the "
        "data, D(x) = 1/2 everywhere (Goodfellow et al. 2014). The D that trained this model only had to keep up "
        f"with a moving G, and its held-out ROC AUC is {fmt(d_auc)}.\n\n"
        "**The critic.** Proposition 1 of the same paper names the discriminator that is optimal against a *fixed* "
        "generator: D\\*(x) = p_data(x) / (p_data(x) + p_g(x)). The critic estimates it for the final, frozen "
        "generator: a copy of the game's D trained to convergence on real training images against fresh samples "
        "(the paper's inner loop run to the end), with upload-like augmentations (the app's preprocessing, JPEG, "
        "tint, small rotations), early stopping on held-out images, and Platt scaling for an honest probability "
        f"(50/50 prior). Its held-out ROC AUC is {fmt(c_auc)}. "
        + ("" if ctx.critic is not None else "This model folder has no critic, so the game's D answers.")).strip()


@dataclass
class ScoreReport:
    """What the Score tab shows for a batch of images (and /score returns for one)."""

    results: list[dict]  # JSON-able, one per scored image
    seen: list[tuple[Image.Image, str]]  # (28x28 as D sees it, upscaled; caption)
    table: Any  # pandas DataFrame with gan.app.score_table's headers
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
    scored = score_images(ctx.model, x, calibration=ctx.calibration, critic=ctx.critic, detector=ctx.detector)
    results = [_score_dict(r, name, pre) for (name, pre), r in zip(ok, scored)]
    seen = [(L.to_pil(p.tensor[0], IMAGE_SCALE), f"{n}: {d['verdict']}, P(real) {d['p_real']:.2f}")
            for (n, p), d in zip(ok, results)]
    sal = _saliency_items(ctx, ok, scored) if saliency else []
    nn_items = _neighbour_items(x[:1]) if neighbours else []
    table = score_table(results, failed)
    return ScoreReport(results, seen, table, _score_markdown(ctx, results, failed), sal, nn_items)


def _score_dict(r: Any, name: str, pre: Any) -> dict:
    """A scoring.ScoreResult as the JSON the app shows and /score returns.

    The answer comes first: ``verdict`` ("real", "generated" or "unlike the data"), ``p_real``, ``scorer``
    ("combined": critic, detector and the distances to the data; else "critic"; else "discriminator"), ``decided_by``
    and ``verdict_reason``.  ``logit``, ``calibrated``, ``p_real_raw``, ``p_real_calibrated`` and the
    percentiles are those of whoever answers (the combination's logit has no percentiles).  Every signal
    is also given by name: ``critic_p_real`` / ``critic_logit`` (None without a critic),
    ``detector_p_real`` / ``detector_logit`` (None without a detector), ``mirror_logit``, ``ood_distance``,
    ``nearest_distance`` (to the nearest real training image; None without a detector bank) and ``d_p_real``
    / ``d_logit`` / ``d_p_real_raw`` (the game D's calibrated probability when it has calibration.json,
    else its sigmoid).  ``label_used``, ``logit_max`` and ``label_max`` describe the game D's label rule.
    """
    d = r.to_dict()
    game = {"d_logit": d["logit"], "d_p_real_raw": d["p_real_raw"], "d_calibrated": d["p_real"] is not None,
            "d_p_real": float(d["p_real"] if d["p_real"] is not None else d["p_real_raw"]),
            "d_percentile_real": d["percentile_real"], "d_percentile_fake": d["percentile_fake"]}
    if d["scorer"] == "combined":
        p = min(max(float(d["combined_p_real"]), 1e-12), 1 - 1e-12)
        answer = {"logit": math.log(p / (1 - p)), "p_real_raw": p, "calibrated": True, "p_real_calibrated": p,
                  "percentile_real": None, "percentile_fake": None}
    elif d["scorer"] == "critic":
        z = d["critic_logit"]
        answer = {"logit": z, "p_real_raw": float(1.0 / (1.0 + math.exp(-max(min(z, 500.0), -500.0)))),
                  "calibrated": bool(d["critic_calibrated"]),
                  "p_real_calibrated": d["critic_p_real"] if d["critic_calibrated"] else None,
                  "percentile_real": d["critic_percentile_real"], "percentile_fake": d["critic_percentile_fake"]}
    else:
        answer = {"calibrated": game["d_calibrated"], "p_real_calibrated": d["p_real"]}
    d.update(game)
    d.update(answer)
    d["p_real"] = float(d["answer_p_real"])
    d.update(image=name, inverted=bool(pre.inverted), preprocessing=list(pre.notes))
    return d


_SIGNAL_NAMES = {"critic": "the critic", "detector": "the detector",
                 "mirror": "the detector on the mirrored image", "distance": "the distance to the data",
                 "nearest": "the nearest real garment"}


def _verdict_words(d: dict) -> str:
    if d["verdict"] == "unlike the data":
        return "is **unlike the data**"
    caveat = " (out of distribution)" if d.get("ood") else " (unsure)" if d["unsure"] else ""
    return f"looks **{d['verdict']}**{caveat}"


def _signals_line(d: dict) -> str:
    """Each signal's own answer, in one line."""
    parts = []
    if d.get("critic_p_real") is not None:
        parts.append(f"critic P(real) {d['critic_p_real']:.2f} (does it look like *this* model's samples?)")
    if d.get("detector_p_real") is not None:
        parts.append(f"detector P(real) {d['detector_p_real']:.2f} (traces of *any* generator?)")
    if d.get("ood_distance") is not None:
        parts.append(f"distance to the data {d['ood_distance']:.1f}")
    if d.get("nearest_distance") is not None:
        parts.append(f"distance to the nearest real garment {d['nearest_distance']:.2f}")
    return "Signals: " + "; ".join(parts) + "." if parts else ""


def _score_markdown(ctx: AppContext, results: list[dict], failed: list[tuple[str, str]]) -> str:
    d = results[0]
    lines = [f"### {d['image']}: {_verdict_words(d).replace('**', '')}, P(real) = {d['p_real']:.2f}"]
    if d["scorer"] == "combined":
        lines.append(f"**Decided by {_SIGNAL_NAMES.get(d['decided_by'], d['decided_by'])}:** {d['verdict_reason']}.")
        lines.append(_signals_line(d))
    else:
        who = "the critic" if d["scorer"] == "critic" else "the game's discriminator"
        how = "calibrated" if d["calibrated"] else "uncalibrated sigmoid"
        lines.append(f"Answer of **{who}** ({how}; logit {d['logit']:+.3f}).")
    if d["scorer"] in ("critic", "combined"):
        lines.append(f"The game's discriminator, beside it: P(real) {d['d_p_real']:.2f} (logit {d['d_logit']:+.3f}).")
    if d.get("percentile_real") is not None:
        lines.append(f"Its score is above {d['percentile_real']:.0f}% of held-out real images and "
                     f"{d['percentile_fake']:.0f}% of generated images.")
    if d.get("pred_name"):
        lines.append(f"The classifier sees a **{d['pred_name']}** ({100 * d['pred_prob']:.0f}%).")
    if d.get("ood") and d["verdict"] != "unlike the data":
        lines.append(f"\n> ⚠️ **Out of distribution:** {d['ood_reason']}.")
    if d.get("preprocessing"):
        lines.append("\nPreprocessing: " + "; ".join(d["preprocessing"]) + ".")
    if d.get("notes"):
        lines.append("\nNotes: " + "; ".join(d["notes"]) + ".")
    if len(results) > 1:
        lines.append("\n" + _summary(results))
    lines.append("\n" + (_trust_line(ctx) if d["scorer"] in ("critic", "combined") else auc_markdown(ctx)))
    if failed:
        lines.append("\n**Not scored:** " + "; ".join(f"{n}: {m}" for n, m in failed))
    return "\n".join(lines)


def _trust_line(ctx: AppContext) -> str:
    """How far to trust the answer, in one line (the tab's introduction says more)."""
    m = ctx.critic.info.get("metrics", {}) if ctx.critic is not None else {}
    parts = [f"{m[v]['auc']:.3f} {what}" for v, what in (("clean", "on clean images"),
                                                         ("photo", "after a photo-like round trip")) if v in m]
    d_auc = _calibration_auc(ctx)
    game = f"; the game's D: {d_auc:.3f}" if d_auc is not None else ""
    det = ""
    if ctx.detector is not None:
        fams = ctx.detector.info.get("families") or []
        v = ctx.detector.info.get("best_val_auc_mean")
        det = (f" The detector learned from real images against this model and {len(fams)} other generator "
               f"families" + (f" (validation ROC AUC {v:.3f})" if v is not None else "") +
               "; docs/critic.md measures it on families it never saw.")
    return f"_Critic's held-out ROC AUC: {', '.join(parts) or 'unknown'}{game}.{det}_"


def _summary(results: list[dict]) -> str:
    """One paragraph over many images: how many look real, how many generated, and each verdict."""
    n_real = sum(d["verdict"] == "real" for d in results)
    n_unlike = sum(d["verdict"] == "unlike the data" for d in results)
    mean = sum(d["p_real"] for d in results) / len(results)
    each = "; ".join(f"{d['image']}: {d['verdict']} ({d['p_real']:.2f})" for d in results)
    n_fake = len(results) - n_real - n_unlike
    looks = (lambda k: f"{k} look{'s' if k == 1 else ''}")  # noqa: E731
    unlike = f", {n_unlike} unlike the data" if n_unlike else ""
    return (f"**{len(results)} images: {looks(n_real)} real, {looks(n_fake)} generated{unlike}** "
            f"(mean P(real) {mean:.2f}). {each}. The table lists every number.")


def _saliency_items(ctx: AppContext, ok: list, scored: list) -> list[tuple[Image.Image, str]]:
    """Saliency of whoever answers: the critic when there is one, else the game D (with its label)."""
    from ..scoring import overlay, saliency_map
    items = []
    for (name, pre), r in zip(ok, scored):
        try:
            if ctx.critic is not None:
                sal = saliency_map(ctx.model, pre.tensor, critic=ctx.critic)
            else:
                sal = saliency_map(ctx.model, pre.tensor, label=r.label_used)
            who = "critic" if ctx.critic is not None else "discriminator"
            items.append((overlay(pre.image28, sal), f"{name}: what the {who} looks at"))
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
