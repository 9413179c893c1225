"""Score images: one verdict from every signal the model folder has, the game discriminator beside it.

    [res] = score_images(model, x, calibration=cal, critic=critic, detector=det)   # x (1, 1, 28, 28) in [-1, 1]
    res.verdict, res.answer_p_real        # "real" / "generated" / "unlike the data", and P(real) behind it
    res.decided_by, res.verdict_reason    # which signal weighed most, in plain words
    res.critic_p_real, res.detector_p_real, res.p_real   # the critic's, the detector's and the game D's own

With a detector (``gan.scoring.detector``) the answer combines the critic, the detector and the distance
to the real data (``gan.scoring.combine``); without one, the critic answers alone, else the game's D.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..data import FASHION_MNIST_CLASSES
from ..pretrained import GAN
from . import analysis
from .calibration import Calibration
from .ood import ood_for_batch, ood_verdict

if TYPE_CHECKING:  # the critic and detector modules are imported lazily
    from .critic import Critic
    from .detector import Detector

UNSURE_BAND = (0.35, 0.65)  # answers in this band are reported as "unsure" next to the verdict


def verdict(p_real: float) -> str:
    """The verdict for a calibrated P(real): "real" at 0.5 or above, else "generated"."""
    return "real" if p_real >= 0.5 else "generated"


@dataclass
class ScoreResult:
    """The verdict on one image: the critic's (when there is one) and the game D's, with calibrated context.

    The plain fields (logit, p_real, percentiles, labels) are the game discriminator's, as they always
    were; the ``critic_*`` fields are the critic's; ``answer_p_real``, ``scorer`` and ``verdict`` say
    which one answers (the critic when present, else the game D).
    """

    logit: float  # the game D's logit with label_used (conditional D) or without a label
    p_real_raw: float  # sigmoid(logit): D's own, uncalibrated P(real)
    p_real: float | None  # the game D's calibrated P(real), 50/50 prior (None without calibration)
    percentile_real: float | None  # % of held-out real test images with a lower D logit
    percentile_fake: float | None  # % of generated images with a lower D logit
    label_used: int | None  # the y fed to a conditional D (None if unconditional)
    label_rule: str  # how label_used was chosen: "given", "classifier", "max-over-classes", "unconditional"
    logit_max: float | None  # conditional D: max over classes of D(x, y)
    label_max: int | None  # ... and its argmax
    pred_class: int | None  # the metric classifier's prediction (None if it is unavailable)
    pred_name: str | None
    pred_prob: float | None
    ood: bool | None  # out of distribution (None: no classifier or no OOD statistics)
    ood_reason: str
    ood_distance: float | None = None  # Mahalanobis distance to the nearest class mean (classifier features)
    critic_logit: float | None = None  # the critic's logit (None: the folder has no critic)
    critic_p_real: float | None = None  # its calibrated P(real) (sigmoid of the logit when uncalibrated)
    critic_calibrated: bool | None = None
    critic_percentile_real: float | None = None  # % of held-out real images with a lower critic logit
    critic_percentile_fake: float | None = None  # % of held-out generated images with a lower critic logit
    detector_logit: float | None = None  # the any-generator detector's logit (None: the folder has none)
    detector_p_real: float | None = None  # its own calibrated P(real)
    mirror_logit: float | None = None  # the detector's logit of the mirrored image (when the verdict reads it)
    nearest_distance: float | None = None  # distance to the nearest real training image (classifier embedding)
    combined_p_real: float | None = None  # P(real) of every signal combined (None without a detector)
    combined_verdict: str | None = None  # "real", "generated" or "unlike the data" (None without a detector)
    decided_by: str | None = None  # the signal that decided: "critic", "detector", "mirror", "distance" or "nearest"
    verdict_reason: str = ""  # why, in plain words
    disagree: list[str] = field(default_factory=list)  # signals that alone would say the opposite
    notes: list[str] = field(default_factory=list)

    @property
    def scorer(self) -> str:
        """Who answers: "combined" (critic, detector and data distance), "critic", or "discriminator"."""
        if self.combined_p_real is not None:
            return "combined"
        return "critic" if self.critic_p_real is not None else "discriminator"

    @property
    def answer_p_real(self) -> float:
        """The answer: the combined P(real), else the critic's, else the game D's calibrated one, else its sigmoid."""
        if self.combined_p_real is not None:
            return self.combined_p_real
        if self.critic_p_real is not None:
            return self.critic_p_real
        return self.p_real if self.p_real is not None else self.p_real_raw

    @property
    def verdict(self) -> str:
        """"real", "generated" or (with a detector) "unlike the data"."""
        return self.combined_verdict if self.combined_verdict is not None else verdict(self.answer_p_real)

    @property
    def unsure(self) -> bool:
        """Whether the answer lies in UNSURE_BAND."""
        return UNSURE_BAND[0] < self.answer_p_real < UNSURE_BAND[1]

    def to_dict(self) -> dict:
        """JSON-serialisable dict, with scorer, answer_p_real, verdict and unsure added."""
        return {**asdict(self), "scorer": self.scorer, "answer_p_real": self.answer_p_real,
                "verdict": self.verdict, "unsure": self.unsure}


def _check_inputs(model: GAN, x: torch.Tensor, labels) -> tuple[torch.Tensor, torch.Tensor | None]:
    dcfg = model.discriminator.cfg
    if x.dim() != 4 or x.shape[1:] != (dcfg.channels, dcfg.resolution, dcfg.resolution):
        raise ValueError(f"x has shape {tuple(x.shape)}; this model scores (B, {dcfg.channels}, {dcfg.resolution}, "
                         f"{dcfg.resolution}) images in [-1, 1]")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values")
    x = x.detach().float().clamp(-1.0, 1.0)
    y = None
    if labels is not None and model.discriminator.conditional:
        y = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
        if y.numel() == 1:
            y = y.expand(x.size(0)).clone()  # one label for every image
        if y.shape != (x.size(0),) or y.min() < 0 or y.max() >= model.num_classes:
            raise ValueError(f"labels must be {x.size(0)} class ids in [0, {model.num_classes - 1}], "
                             f"got {y.tolist()[:8]}")
    return x, y


def _critic_fields(critic: "Critic", x: torch.Tensor, probs: np.ndarray | None) -> list[dict]:
    """Per image: the critic's logit, P(real) and percentiles (labels from the classifier's probabilities)."""
    pred = torch.as_tensor(probs.argmax(1)) if probs is not None else None
    logits = critic.logits(x, labels=pred).double().numpy()
    cal = critic.calibration
    p = cal.p_real(logits) if cal is not None else 1.0 / (1.0 + np.exp(-np.clip(logits, -500, 500)))
    out = []
    for i, z in enumerate(logits):
        out.append({"critic_logit": float(z), "critic_p_real": float(p[i]), "critic_calibrated": cal is not None,
                    "critic_percentile_real": None if cal is None else float(cal.percentile_real(z)),
                    "critic_percentile_fake": None if cal is None else float(cal.percentile_fake(z))})
    return out


def _combined_fields(detector: "Detector", x: torch.Tensor, crit: list[dict], ood_d: np.ndarray | None,
                     calibration: Calibration | None) -> list[dict]:
    """Per image: the detector's logit and P(real), and the combined decision (``gan.scoring.combine``)."""
    from .combine import Combination, decide
    from .nearest import log_nearest
    dl = detector.logits(x)
    platt = detector.info.get("platt") or {}
    dp = 1.0 / (1.0 + np.exp(-np.clip(platt.get("a", 1.0) * dl + platt.get("b", 0.0), -500, 500)))
    out = [{"detector_logit": float(dl[i]), "detector_p_real": float(dp[i])} for i in range(len(dl))]
    clf = analysis.get_classifier()
    near = log_nearest(clf, detector.bank, x) if detector.bank is not None and clf is not None else None
    if near is not None:
        for i, o in enumerate(out):
            o["nearest_distance"] = float(np.exp(near[i]))
    try:
        comb = Combination.from_dict(detector.combination or {})
    except (KeyError, TypeError, ValueError):
        return out
    ood = calibration.ood if calibration is not None else None
    have = {"critic": bool(crit and "critic_logit" in crit[0]), "detector": True, "mirror": True,
            "distance": ood_d is not None, "nearest": near is not None}
    mirror = detector.logits(x.flip(-1)) if "mirror" in comb.signals else None  # left to right
    for i, o in enumerate(out if mirror is not None else []):
        o["mirror_logit"] = float(mirror[i])
    if not all(have[s] for s in comb.signals):
        return out  # a signal the combination needs is missing: the critic (or D) answers alone
    for i, o in enumerate(out):
        feats, alone = [], {"detector": o["detector_p_real"] >= 0.5}
        for s in comb.signals:
            if s == "critic":
                feats.append(crit[i]["critic_logit"])
                alone["critic"] = crit[i]["critic_p_real"] >= 0.5
            elif s == "detector":
                feats.append(o["detector_logit"])
            elif s == "mirror":
                feats.append(float(mirror[i]))
            elif s == "nearest":
                feats.append(near[i])
            else:
                feats.append(math.log(max(float(ood_d[i]), 1e-6)))
        unlike = bool(ood and ood_d[i] > ood["distance_threshold"])
        alone["distance"] = not unlike
        why = (f"unlike the data: farther from every Fashion-MNIST class than 99% of real images (feature distance "
               f"{float(ood_d[i]):.1f} > {ood['distance_threshold']:.1f})") if unlike else ""
        d = decide(comb, np.array(feats), alone, unlike, why)
        o.update(combined_p_real=d.p_real, combined_verdict=d.verdict, decided_by=d.decided_by,
                 verdict_reason=d.reason, disagree=list(d.disagree))
    return out


def score_images(model: GAN, x: torch.Tensor, *, labels: torch.Tensor | list[int] | int | None = None,
                 calibration: Calibration | None = None, critic: "Critic | None" = None,
                 detector: "Detector | None" = None) -> list[ScoreResult]:
    """Score images x (B, C, R, R) in [-1, 1] with every signal given: the critic, the detector (both
    optional), the game's D, the classifier and a calibration."""
    x, y = _check_inputs(model, x, labels)
    rule = analysis.label_rule(model, labels_given=y is not None)
    a = analysis.analyse(model, x, y)
    notes = []
    if calibration is not None and calibration.label_rule != rule:
        notes.append(f"calibrated with labels from '{calibration.label_rule}' but scored with '{rule}': "
                     f"percentiles are approximate")
    if "probs" not in a and analysis.uses_classifier(model):
        notes.append(analysis.classifier_status())
    ood_d, ood_m, note = ood_for_batch(calibration.ood if calibration is not None else None, a)
    if note:
        notes.append(note)
    crit = _critic_fields(critic, x, a.get("probs")) if critic is not None else [{}] * x.size(0)
    if critic is not None and critic.notes:
        notes += critic.notes
    comb = (_combined_fields(detector, x, crit if critic is not None else [], ood_d, calibration)
            if detector is not None and x.shape[1:] == (1, 28, 28) else [{}] * x.size(0))
    results = []
    for i in range(x.size(0)):
        logit = float(a["logit"][i])
        pred = prob = name = None
        if "probs" in a:
            pred, prob = int(a["probs"][i].argmax()), float(a["probs"][i].max())
            name = FASHION_MNIST_CLASSES[pred] if pred < len(FASHION_MNIST_CLASSES) else str(pred)
        ood, reason = ood_verdict(calibration.ood if calibration is not None else None,
                                  None if ood_d is None else (ood_d[i], ood_m[i]), "probs" in a)
        results.append(ScoreResult(
            logit=logit, p_real_raw=float(1.0 / (1.0 + math.exp(-max(min(logit, 500.0), -500.0)))),
            p_real=None if calibration is None else float(calibration.p_real(logit)),
            percentile_real=None if calibration is None else float(calibration.percentile_real(logit)),
            percentile_fake=None if calibration is None else float(calibration.percentile_fake(logit)),
            label_used=int(a["label"][i]) if "label" in a else None, label_rule=rule,
            logit_max=float(a["logit_max"][i]) if "logit_max" in a else None,
            label_max=int(a["label_max"][i]) if "label_max" in a else None,
            pred_class=pred, pred_name=name, pred_prob=prob, ood=ood, ood_reason=reason,
            ood_distance=None if ood_d is None else float(ood_d[i]), notes=list(notes), **crit[i], **comb[i]))
    return results
