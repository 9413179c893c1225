"""One pass over a batch: the game discriminator's logits under the label rule, and the classifier's view.

**Labels for a conditional (projection) D**: its logit depends on y.  The rule, used identically when
calibrating and scoring: explicit ``labels`` if given, else the metric classifier's predicted class
(``gan.classifier``), else (no classifier) the class that maximises D's logit.  The max over classes is
always reported too.  The critic (``gan.scoring.critic``) follows the same rule when it is conditional.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..classifier import optional_classifier
from ..pretrained import GAN

OOD_STAGES = 2  # early classifier stages whose channel statistics are the OOD features


# ---- the classifier (optional) ------------------------------------------------------------------
def get_classifier() -> torch.nn.Module | None:
    """The shipped metric classifier (gan.classifier), or None when it is not installed or not trained."""
    return optional_classifier()[0]


def classifier_status() -> str:
    """'ok' or why the classifier cannot be used."""
    return optional_classifier()[1]


def uses_classifier(model: GAN) -> bool:
    """Whether the metric classifier applies to this model's images (28x28 grayscale Fashion-MNIST)."""
    g = model.generator.cfg
    return model.dataset == "fashion-mnist" and g.resolution == 28 and g.channels == 1


def model_classifier(model: GAN) -> torch.nn.Module | None:
    """The classifier when it applies to this model and is available, else None."""
    return get_classifier() if uses_classifier(model) else None


@contextmanager
def eval_mode(module: torch.nn.Module) -> Iterator[None]:
    """Eval mode for the duration (spectral norm must not run power iterations while scoring)."""
    was = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was)


def d_logits_all_classes(D: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Conditional projection D: logits (B, K) for every class y in one pass (``Discriminator.class_logits``)."""
    return D.class_logits(x)


@torch.no_grad()
def classifier_forward(clf: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits (B, K), OOD features (B, F)) in one pass of the classifier over x (B, 1, 28, 28) in [-1, 1].

    The OOD features are the per-channel mean and standard deviation of the first OOD_STAGES pooled conv
    stages (texture and intensity statistics). The penultimate embedding is trained to be invariant to
    exactly what makes an image unlike Fashion-MNIST: uniform noise, blank or inverted images land near a
    class mean there, while these early statistics separate all of them from real images (measured on
    5,000 training images: 1% of real test images vs 100% of noise, blank, white and inverted images
    beyond the 99th percentile).
    """
    return clf.forward_with_stage_stats(x, OOD_STAGES)


@torch.no_grad()
def classifier_labels(clf: torch.nn.Module | None, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor | None:
    """The classifier's predicted classes (B,) for x (B, 1, 28, 28) in [-1, 1], or None without a classifier."""
    if clf is None:
        return None
    dev = next(clf.parameters()).device
    return torch.cat([clf(b.to(dev).float()).argmax(1).cpu() for b in x.split(batch_size)])


def pick_labels(all_logits: torch.Tensor, given: torch.Tensor | None, probs: torch.Tensor | None) -> torch.Tensor:
    """The label rule: given labels, else the classifier's prediction, else the argmax of D over classes."""
    if given is not None:
        return given.long().cpu()
    if probs is not None and probs.size(1) == all_logits.size(1):
        return probs.argmax(dim=1)
    return all_logits.argmax(dim=1)


@torch.no_grad()
def analyse(model: GAN, x: torch.Tensor, labels: torch.Tensor | None, batch_size: int = 500) -> dict[str, np.ndarray]:
    """D logits (with the label rule), all-class logits, classifier probabilities and features for x (B, C, R, R)."""
    D = model.discriminator
    dev = next(D.parameters()).device
    clf = model_classifier(model)
    out: dict[str, list] = {k: [] for k in ("logit", "label", "logit_max", "label_max", "probs", "feats")}
    with eval_mode(D):
        for i in range(0, x.size(0), batch_size):
            xb = x[i:i + batch_size].to(dev).float()
            probs = None
            if clf is not None:
                logits, feats = classifier_forward(clf, xb.to(next(clf.parameters()).device))
                probs = F.softmax(logits.float(), dim=1).cpu()  # (b, 10)
                out["probs"].append(probs)
                out["feats"].append(feats.float().cpu())  # (b, F)
            if not D.conditional:
                out["logit"].append(D(xb).cpu())
                continue
            all_logits = D.class_logits(xb).cpu()  # (b, K)
            lmax, amax = all_logits.max(dim=1)
            y = pick_labels(all_logits, None if labels is None else labels[i:i + batch_size], probs)
            out["logit"].append(all_logits.gather(1, y[:, None]).squeeze(1))
            out["label"].append(y)
            out["logit_max"].append(lmax)
            out["label_max"].append(amax)
    return {k: torch.cat(v).double().numpy() if k not in ("label", "label_max") else torch.cat(v).numpy()
            for k, v in out.items() if v}


def label_rule(model: GAN, labels_given: bool = False) -> str:
    """Which y a conditional D gets (see the module docstring)."""
    if not model.discriminator.conditional:
        return "unconditional"
    if labels_given:
        return "given"
    clf = model_classifier(model)
    return "classifier" if clf is not None and model.num_classes == 10 else "max-over-classes"
