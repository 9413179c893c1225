"""Score images: the critic's verdict (when the model folder has one), the game discriminator beside it.

    [res] = score_images(model, x, calibration=cal, critic=critic)   # x (1, 1, 28, 28) in [-1, 1]
    res.verdict, res.answer_p_real        # "real" / "generated" and the probability behind it
    res.critic_p_real, res.p_real         # the critic's calibrated P(real); the game D's
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

if TYPE_CHECKING:  # the critic module is imported lazily (it is also a CLI: python -m gan.scoring.critic)
    from .critic import Critic

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
    notes: list[str] = field(default_factory=list)

    @property
    def scorer(self) -> str:
        """Who answers: "critic" when the folder has one, else "discriminator" (the game's D)."""
        return "critic" if self.critic_p_real is not None else "discriminator"

    @property
    def answer_p_real(self) -> float:
        """The answer: the critic's P(real), else the game D's calibrated one, else its sigmoid."""
        if self.critic_p_real is not None:
            return self.critic_p_real
        return self.p_real if self.p_real is not None else self.p_real_raw

    @property
    def verdict(self) -> str:
        """"real" or "generated" for answer_p_real (see ``verdict``)."""
        return verdict(self.answer_p_real)

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


def score_images(model: GAN, x: torch.Tensor, *, labels: torch.Tensor | list[int] | int | None = None,
                 calibration: Calibration | None = None, critic: "Critic | None" = None) -> list[ScoreResult]:
    """Score images x (B, C, R, R) in [-1, 1] with the critic (optional), D, the classifier and a calibration."""
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
            ood_distance=None if ood_d is None else float(ood_d[i]), notes=list(notes), **crit[i]))
    return results
