"""One verdict from every signal: the critic, the detector, and two distances to the real data.

    comb = Combination.fit(signals, features_real, features_fake, weights_fake)   # on validation images only
    p = comb.p_real(features)                                                     # (N, K) -> (N,)
    decision = decide(comb, feats, alone, unlike)                                  # verdict, p_real, who decided

Signals, each a number per image (higher: more like a real image, except the two distances):

* ``critic``: the critic's logit: is this *this model's* sample?  (D* of Goodfellow et al. for the final G)
* ``detector``: the detector's logit: does it carry the traces of *any* generator?  (``gan.scoring.detector``)
* ``distance``: log of the Mahalanobis distance of early classifier statistics to the nearest class mean
  (``gan.scoring.ood``): how unlike every class the image is, whatever made it.
* ``nearest``: log of the distance to the nearest real training image in the classifier's embedding
  (``gan.scoring.nearest``): is any real garment close to it?  Also generator-free.

The form is a **soft minimum** ("softmin") of per-signal logits.  Each signal k is calibrated on its own
(a logistic regression of real against every generated validation image: t_k = a_k * sign_k *
standardised feature_k + c_k, a_k >= 0), and

    logit(real) = -log(sum_k exp(-t_k)) + bias

the posterior log-odds of "real" against a mixture of sources when each t_k is the log-odds of "real"
against what signal k sees: p(generated | x) adds up over the signals' evidence.  So one signal that is
sure of "generated" is enough, and a signal that finds an image real cannot outvote another that found
it generated (a weighted sum, form "linear", let the detector's "looks real" on this model's samples
dilute the critic).  Calibrating each signal alone, not jointly, keeps the generator-free distances at
their own strength: a joint fit learns to lean on the detector for the generators it happens to see, and
the generators users upload are mostly ones it never saw.  Fitted on validation images (held-out real
training images against samples of the shipped G and of the zoo's training families, each half of the
generated side); the bias is then lowered, if needed, so that at most ``MAX_VAL_FPR`` of the held-out
real images of every view are called generated.  Rules on top, so that no signal is overruled silently
(both keep the order of P(real) within the images they touch):

* an image farther from every class than 99% of real images is "unlike the data", never "real" (its P(real)
  is scaled into [0, ``UNLIKE_CAP``]);
* when the combination says "real" but one signal alone says "generated", P(real) is squeezed into
  [0.5, ``DISAGREE_CAP``] and the answer is marked unsure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

SIGNALS = ("critic", "detector", "mirror", "distance", "nearest")
FORMS = ("softmin", "linear")  # "linear": sigmoid(bias + sum_k w_k sign_k z_k), joint (older detector.json files)
SIGN = {"critic": 1.0, "detector": 1.0, "mirror": 1.0, "distance": -1.0, "nearest": -1.0}  # the direction of "more real" for each signal
MAX_VAL_FPR = 0.05  # at most 5% of the held-out real validation images of any view called generated
DISAGREE_CAP = 0.65
UNLIKE = "unlike the data"
SUSPECTS = {"critic": "the critic suspects this model's output", "detector": "the detector suspects a generator",
            "mirror": "the detector suspects a generator in the mirrored image",
            "distance": "it lies far from the data", "nearest": "no real garment is close to it"}
UNLIKE_CAP = 0.1  # P(real) of an image unlike the data: 1% of real images lie that far, few of anything else
PLAIN = {"critic": "the critic (which learned this model's own samples) finds it unlike real images",
         "detector": "the detector found traces of a generator (it learned from many generators' samples)",
         "mirror": "the detector found traces of a generator in the mirror image of the upload (it learned from many "
                   "generators' samples)",
         "distance": "the image lies far from real Fashion-MNIST images in the classifier's features",
         "nearest": "no real training garment is close to it in the classifier's embedding (a malformed or "
                    "blurred garment)"}


@dataclass
class Combination:
    """The verdict's logit from K signals (``form``: see the module docstring), fitted on validation images."""

    signals: tuple[str, ...]
    weights: tuple[float, ...]  # a_k >= 0, applied to sign_k * standardised feature_k
    bias: float
    mean: tuple[float, ...]  # feature standardisation (fitted on the validation images)
    scale: tuple[float, ...]
    val_fpr: float = float("nan")  # share of held-out real images called generated at 0.5
    val_auc: float = float("nan")
    form: str = "linear"
    offsets: tuple[float, ...] = ()  # c_k of each signal's logit ("softmin")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Combination":
        sig = tuple(d["signals"])
        if not sig or any(s not in SIGNALS for s in sig):
            raise ValueError(f"verdict signals must be among {SIGNALS}, got {sig}")
        form = d.get("form", "linear")
        if form not in FORMS:
            raise ValueError(f"verdict form must be one of {FORMS}, got {form!r}")
        keys = ("weights", "mean", "scale") + (("offsets",) if form == "softmin" else ())
        vals = [tuple(float(v) for v in d[k]) for k in keys]
        if any(len(v) != len(sig) for v in vals):
            raise ValueError(f"verdict {', '.join(keys)} must have one value per signal")
        return cls(sig, vals[0], float(d["bias"]), vals[1], vals[2], float(d.get("val_fpr", "nan")),
                   float(d.get("val_auc", "nan")), form, vals[3] if form == "softmin" else ())

    def _z(self, feats: np.ndarray) -> np.ndarray:
        z = (np.asarray(feats, np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        return z * np.array([SIGN[s] for s in self.signals])

    def contributions(self, feats: np.ndarray) -> np.ndarray:
        """(N, K) each signal's part for features (N, K) in ``signals`` order: its own calibrated logit
        ("softmin") or its term of the sum ("linear"); higher is more like a real image either way."""
        t = self._z(feats) * np.asarray(self.weights)
        return t + np.asarray(self.offsets) if self.form == "softmin" else t

    def logit(self, feats: np.ndarray) -> np.ndarray:
        """The combined logit (N,) for features (N, K)."""
        t = self.contributions(feats)
        if self.form == "softmin":
            m = t.min(1)
            return m - np.log(np.exp(-(t - m[:, None])).sum(1)) + self.bias
        return t.sum(1) + self.bias

    def p_real(self, feats: np.ndarray) -> np.ndarray:
        """The combined P(real) (N,) for features (N, K)."""
        return 1.0 / (1.0 + np.exp(-np.clip(self.logit(feats), -500, 500)))

    @classmethod
    def fit(cls, signals: tuple[str, ...], real: np.ndarray, fake: np.ndarray, fake_weights: np.ndarray | None = None,
            *, real_groups: np.ndarray | None = None, form: str = "softmin", steps: int = 300,
            max_fpr: float = MAX_VAL_FPR) -> "Combination":
        """Maximum likelihood of real (N, K) against fake (M, K) features, weights a_k >= 0.

        Real and generated images weigh the same in total (a 50/50 prior); fake_weights (M,) share the
        generated half among generators.  The bias is then lowered, if needed, until at most max_fpr
        of `real` is called generated in every group of real_groups (N,) (e.g. each upload view).
        """
        if not 0.0 < max_fpr < 0.5:
            raise ValueError(f"max_fpr must be in (0, 0.5), got {max_fpr}")
        if form not in FORMS:
            raise ValueError(f"verdict form must be one of {FORMS}, got {form!r}")
        x = np.concatenate([real, fake]).astype(np.float64)
        mean, scale = x.mean(0), x.std(0) + 1e-9
        fw = np.ones(len(fake)) if fake_weights is None else np.asarray(fake_weights, np.float64)
        W = torch.as_tensor(np.concatenate([np.full(len(real), 0.5 / len(real)), 0.5 * fw / fw.sum()]))
        T = torch.as_tensor(np.concatenate([np.ones(len(real)), np.zeros(len(fake))]))
        sign = np.array([SIGN[s] for s in signals])
        X = torch.as_tensor((x - mean) / scale * sign)
        if form == "softmin":  # each signal calibrated on its own
            fits = [_logistic(X[:, k:k + 1], T, W, steps) for k in range(len(signals))]
            comb = cls(tuple(signals), tuple(a[0] for a, _ in fits), 0.0, tuple(mean.tolist()),
                       tuple(scale.tolist()), form=form, offsets=tuple(c for _, c in fits))
        else:
            a, c = _logistic(X, T, W, steps)
            comb = cls(tuple(signals), a, c, tuple(mean.tolist()), tuple(scale.tolist()), form=form)
        lr = comb.logit(real)
        groups = np.zeros(len(real), int) if real_groups is None else np.asarray(real_groups)
        # the logit below which max_fpr of the real images of the worst group lie
        q = min(float(np.quantile(lr[groups == g], max_fpr)) for g in np.unique(groups))
        if q < 0:
            comb.bias -= q
        comb.val_fpr = float((comb.logit(real) < 0).mean())
        from .measures import roc_auc
        comb.val_auc = float(roc_auc(comb.logit(real), comb.logit(fake)))
        return comb


def _logistic(X: torch.Tensor, T: torch.Tensor, W: torch.Tensor, steps: int) -> tuple[tuple[float, ...], float]:
    """Weighted logistic regression of T (N,) on X (N, K) with weights >= 0: (weights, bias)."""
    raw = torch.zeros(X.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([raw, b], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (F.binary_cross_entropy_with_logits(X @ F.softplus(raw) + b, T, reduction="none") * W).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return tuple(F.softplus(raw).detach().tolist()), b.item()


@dataclass
class Decision:
    """The verdict on one image and why."""

    verdict: str  # "real", "generated" or UNLIKE
    p_real: float  # the combined P(real) (capped when a signal disagrees)
    decided_by: str  # the signal that weighed most towards the verdict
    reason: str  # in plain words
    disagree: tuple[str, ...] = ()  # signals that alone would say the opposite of the verdict


def decide(comb: Combination, feats: np.ndarray, alone: dict[str, bool], unlike: bool,
           unlike_reason: str = "") -> Decision:
    """The decision for one image: features (K,) in comb.signals order; alone[s]: does signal s alone say real?"""
    contrib = comb.contributions(np.asarray(feats, np.float64)[None])[0]
    p = float(comb.p_real(np.asarray(feats, np.float64)[None])[0])
    if comb.form == "softmin":  # a signal without its own verdict answers with its calibrated logit
        alone = {**{s: bool(contrib[k] >= 0) for k, s in enumerate(comb.signals)}, **alone}
    if unlike:
        return Decision(UNLIKE, p * UNLIKE_CAP, "distance", unlike_reason or PLAIN["distance"])
    if p >= 0.5:
        disagree = tuple(s for s in comb.signals if s in alone and not alone[s])
        if disagree:
            p = 0.5 + (p - 0.5) * (DISAGREE_CAP - 0.5) / 0.5
        top = comb.signals[int(np.argmax(contrib))]
        why = "every signal finds it like a real image" if not disagree else (
            "on balance like a real image, but " + " and ".join(SUSPECTS[s] for s in disagree))
        return Decision("real", p, top, why, disagree)
    top = comb.signals[int(np.argmin(contrib))]
    if top == "mirror" and "detector" in comb.signals and contrib[comb.signals.index("detector")] < 0:
        top = "detector"  # both readings of the detector say generated: name the plain one, which users expect
    disagree = tuple(s for s in comb.signals if alone.get(s))
    return Decision("generated", p, top, PLAIN[top], disagree)
