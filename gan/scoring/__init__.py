"""Scoring images as real or generated: the critic, the game's discriminator, and what explains them.

    from gan.scoring import load_calibration, load_critic, score_images
    cal, critic = load_calibration("checkpoints"), load_critic("checkpoints")
    [res] = score_images(model, x, calibration=cal, critic=critic)   # x (1, 1, 28, 28) in [-1, 1]
    res.verdict, res.critic_p_real, res.p_real                        # the answer, the critic's and the game D's

One concern per module:

| module | what |
| --- | --- |
| ``analysis`` | one pass of the game's D (label rule for a conditional D) and the metric classifier |
| ``measures`` | ROC AUC, average precision, accuracy, calibration error (torchmetrics) |
| ``calibration`` | Platt scaling and percentiles of a logit; the game D's ``calibration.json`` |
| ``ood`` | the out-of-distribution flag (Mahalanobis distance of classifier statistics) |
| ``score`` | ``score_images``: the verdict per image, the critic's and the game D's numbers |
| ``saliency`` | SmoothGrad saliency of the critic (or D) and a heatmap overlay |
| ``neighbours`` | the nearest training images in pixel space |
| ``roundtrip`` | upload and photo-like round trips (training augmentation and benchmark alike) |
| ``critic`` | the critic (Goodfellow's optimal D for the final G): the type, load and save |
| ``critic_data`` | the critic's training, validation and test images (and round-trip pools) |
| ``refine`` | training the critic: candidates, early stopping, held-out measurement; ``write_critic`` and its CLI |

Command lines: ``python -m gan.scoring DIR`` (``cli``) writes the game D's calibration.json;
``fashion-gan critic DIR`` (``refine.main``, through gan.cli) refines and writes the critic.  ``train.py``
runs both after training, through ``gan.finish``.
"""

from __future__ import annotations

from typing import Any

from .analysis import (OOD_STAGES, classifier_status, d_logits_all_classes, get_classifier, label_rule,
                       uses_classifier)
from .calibration import (CALIBRATION_FILE, CALIBRATION_VERSION, N_QUANTILES, Calibration, LogitCalibration,
                          calibrate, fit_platt, generate_images, load_calibration, write_calibration)
from .measures import average_precision, roc_auc, separation_metrics
from .neighbours import nearest_training_images
from .ood import OOD_DISTANCE_PCT, OOD_MSP_PCT, OOD_SHRINKAGE, OOD_TRAIN_IMAGES
from .saliency import overlay, saliency_map
from .score import ScoreResult, score_images, verdict

# The critic modules are loaded on first use: training the critic pulls in the data and round-trip stack,
# which scoring an image does not need.
_LAZY = {"Critic": "critic", "load_critic": "critic", "save_critic": "critic", "write_critic": "refine",
         "CRITIC_FILE": "critic", "CRITIC_CONFIG": "critic", "RefineOptions": "refine", "refine_critic": "refine",
         "round_trip": "roundtrip", "photo_jpeg": "roundtrip"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CALIBRATION_FILE", "CALIBRATION_VERSION", "N_QUANTILES", "OOD_DISTANCE_PCT", "OOD_MSP_PCT",
           "OOD_SHRINKAGE", "OOD_STAGES", "OOD_TRAIN_IMAGES", "Calibration", "LogitCalibration", "ScoreResult", "average_precision", "calibrate", "classifier_status",
           "d_logits_all_classes", "fit_platt", "generate_images", "get_classifier", "label_rule",
           "load_calibration", "nearest_training_images", "overlay", "roc_auc", "saliency_map",
           "score_images", "separation_metrics", "uses_classifier", "verdict", "write_calibration", *_LAZY]
