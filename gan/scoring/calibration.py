"""Calibration of a discriminator's logit: how far to trust it, and what probability it really means.

* ``LogitCalibration``: Platt scaling P(real) = sigmoid(a * logit + b) with a >= 0 (monotone), quantiles
  of the logit on real and on generated images (percentiles), and held-out metrics.  The game's D and
  the critic (``gan.scoring.critic``) both use it.
* ``calibrate`` (the game's D): D's logits on held-out *test* images (never trained on) and on as many
  generated images; half of each fits the Platt scaling, the other half measures ROC AUC, average
  precision, accuracy, ECE and Brier score (torchmetrics).  Equal numbers of real and fake images: the
  calibrated probability assumes a 50/50 prior.  Stored in ``calibration.json`` next to the weights with
  the SHA-256 of ``discriminator.safetensors``, so that a stale file is ignored; it also holds the OOD
  statistics (``gan.scoring.ood``).
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data import load_dataset, to_float
from ..fileio import atomic_write_json, sha256_file
from ..pretrained import DISCRIMINATOR_FILE, GAN
from . import analysis
from .measures import separation_metrics, sigmoid
from .ood import OOD_TRAIN_IMAGES, fit_ood

CALIBRATION_FILE = "calibration.json"
CALIBRATION_VERSION = 1
N_QUANTILES = 1001  # stored quantiles of each logit distribution (0%, 0.1%, ..., 100%)


@dataclass
class LogitCalibration:
    """Platt scaling of a logit, its quantiles on real and generated images, and held-out metrics."""

    platt_a: float  # P(real) = sigmoid(platt_a * logit + platt_b), platt_a >= 0
    platt_b: float
    real_quantiles: list[float]  # N_QUANTILES quantiles of the logit on real images
    fake_quantiles: list[float]  # ... and on generated images
    metrics: dict[str, float]  # held-out: auc, ap, accuracy, ece, brier, fpr_real, ...

    @property
    def auc(self) -> float:
        return self.metrics["auc"]

    def p_real(self, logit: np.ndarray | float) -> np.ndarray:
        """Calibrated P(real) for logits (50/50 prior)."""
        return sigmoid(self.platt_a * np.asarray(logit, dtype=np.float64) + self.platt_b)

    def percentile_real(self, logit: np.ndarray | float) -> np.ndarray:
        """Percentage of real images whose logit is below this one, in [0, 100]."""
        return _percentile(self.real_quantiles, logit)

    def percentile_fake(self, logit: np.ndarray | float) -> np.ndarray:
        """Percentage of generated images whose logit is below this one, in [0, 100]."""
        return _percentile(self.fake_quantiles, logit)

    @classmethod
    def fit(cls, fit_real: np.ndarray, fit_fake: np.ndarray, *, real: np.ndarray | None = None,
            fake: np.ndarray | None = None) -> "LogitCalibration":
        """Platt scaling on logits fit_real vs fit_fake; quantiles of real/fake (default: the fit logits)."""
        x = np.concatenate([fit_real, fit_fake])
        a, b = fit_platt(x, np.concatenate([np.ones(len(fit_real)), np.zeros(len(fit_fake))]))
        grid = np.linspace(0.0, 1.0, N_QUANTILES)
        rq = np.quantile(fit_real if real is None else real, grid).tolist()
        fq = np.quantile(fit_fake if fake is None else fake, grid).tolist()
        return cls(platt_a=a, platt_b=b, real_quantiles=rq, fake_quantiles=fq, metrics={})

    def measure(self, real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
        """Held-out metrics of the calibrated probability on logits real vs fake (``separation_metrics``)."""
        m = separation_metrics(self.p_real(real), self.p_real(fake))
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in m.items()}

    def to_dict(self) -> dict:
        """JSON-serialisable dict (quantiles rounded to keep the file small)."""
        d = asdict(self)
        d["real_quantiles"] = [round(v, 5) for v in self.real_quantiles]
        d["fake_quantiles"] = [round(v, 5) for v in self.fake_quantiles]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LogitCalibration":
        """Inverse of ``to_dict`` (unknown keys are dropped); raises ValueError naming a missing key."""
        names = {f.name for f in fields(LogitCalibration)}
        missing = sorted(names - set(d))
        if missing:
            raise ValueError(f"calibration lacks {', '.join(missing)}")
        return LogitCalibration(**{k: d[k] for k in names})


@dataclass
class Calibration(LogitCalibration):
    """The game discriminator's calibration.json: a LogitCalibration plus how it was made and OOD statistics."""

    label_rule: str  # "unconditional", "classifier" or "max-over-classes" (see gan.scoring.analysis)
    n_real: int
    n_fake: int
    seed: int
    real_split: str = "test"
    discriminator_sha256: str | None = None
    ood: dict | None = None  # class_means (K, F), precision_cholesky (base64), thresholds, fpr_real, rate_fake
    seconds: float = 0.0
    version: int = CALIBRATION_VERSION

    def to_dict(self) -> dict:
        """JSON-serialisable dict (floats rounded to keep the file small)."""
        d = super().to_dict()
        if self.ood:
            d["ood"] = {**self.ood, "class_means": [[round(v, 5) for v in row] for row in self.ood["class_means"]]}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        """Inverse of ``to_dict``; raises ValueError naming a missing or unknown key."""
        if d.get("version") != CALIBRATION_VERSION:
            raise ValueError(f"calibration version {d.get('version')!r} is not {CALIBRATION_VERSION}")
        try:
            return cls(**d)
        except TypeError as e:
            raise ValueError(f"invalid calibration: {e}") from None

    def summary(self) -> str:
        """One line with the held-out metrics."""
        m = self.metrics
        return (f"ROC AUC {m['auc']:.4f}, accuracy {m['accuracy']:.4f} (raw {m['accuracy_raw']:.4f}), "
                f"Brier {m['brier']:.4f} (raw {m['brier_raw']:.4f}), ECE {m['ece']:.4f} (raw {m['ece_raw']:.4f}) "
                f"on {self.n_real // 2 + self.n_fake // 2} held-out images; labels: {self.label_rule}")


def _percentile(quantiles: list[float], logit: np.ndarray | float) -> np.ndarray:
    q = np.asarray(quantiles, np.float64)
    return np.interp(np.asarray(logit, np.float64), q, np.linspace(0.0, 100.0, len(q)), left=0.0, right=100.0)


def fit_platt(logits: np.ndarray, targets: np.ndarray, *, steps: int = 200) -> tuple[float, float]:
    """Platt scaling: (a >= 0, b) minimising the log loss of sigmoid(a * logit + b), by L-BFGS in torch."""
    x = torch.as_tensor(np.asarray(logits, np.float64))
    t = torch.as_tensor(np.asarray(targets, np.float64))
    mu, sd = x.mean(), x.std().clamp_min(1e-12)
    xs = (x - mu) / sd  # standardised for conditioning; mapped back below
    raw_a = torch.zeros((), dtype=torch.float64, requires_grad=True)  # a' = softplus(raw_a) >= 0
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([raw_a, b], lr=1.0, max_iter=steps, tolerance_grad=1e-10, tolerance_change=1e-12,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(F.softplus(raw_a) * xs + b, t)
        loss.backward()
        return loss

    opt.step(closure)
    a = F.softplus(raw_a).item() / float(sd)
    return a, b.item() - a * mu.item()


def generate_images(model: GAN, n: int, seed: int, batch_size: int = 500) -> torch.Tensor:
    """n generated images (n, C, R, R) in [-1, 1] in batches (bounded memory), reproducible from the seed."""
    chunks = []
    for j, i in enumerate(range(0, n, batch_size)):
        chunks.append(model.generate(min(batch_size, n - i), seed=seed * 100_003 + j).cpu())
    return torch.cat(chunks)


def real_test_images(model: GAN, n: int, seed: int, data_dir: str | Path | None) -> tuple[torch.Tensor, str]:
    """n random real test images (n, C, R, R) in [-1, 1] and the split they come from."""
    gcfg = model.generator.cfg
    try:
        data = load_dataset(model.dataset, split="test", data_dir=data_dir, resolution=gcfg.resolution,
                            channels=gcfg.channels)
    except Exception as e:
        raise ValueError(f"cannot load the {model.dataset} test images for calibration: {e}") from None
    split = "train (a folder data set has no test split)" if model.dataset == "folder" else "test"
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:min(n, len(data))]
    return to_float(data.images[idx]), split


def calibrate(model: GAN, *, n_real: int = 5000, n_fake: int = 5000, seed: int = 0,
              data_dir: str | Path | None = None, n_ood_train: int = OOD_TRAIN_IMAGES) -> Calibration:
    """Fit Platt scaling of D on held-out real test images vs generated ones; measure it on a second half."""
    if n_real < 4 or n_fake < 4 or n_ood_train < 100:
        raise ValueError(f"n_real={n_real} and n_fake={n_fake} must be >= 4 and n_ood_train={n_ood_train} >= 100")
    t0 = time.perf_counter()
    real, split = real_test_images(model, n_real, seed, data_dir)
    n_real = len(real)
    fake = generate_images(model, n_fake, seed)
    rule = analysis.label_rule(model)
    r, f = analysis.analyse(model, real, None), analysis.analyse(model, fake, None)

    # (1) Platt scaling on the first half of each, metrics on the second half; quantiles of all
    gen = torch.Generator().manual_seed(seed + 1)
    hr, hf = n_real // 2, n_fake // 2
    pr, pf = torch.randperm(n_real, generator=gen).numpy(), torch.randperm(n_fake, generator=gen).numpy()
    lc = LogitCalibration.fit(r["logit"][pr[:hr]], f["logit"][pf[:hf]], real=r["logit"], fake=f["logit"])
    ev_r, ev_f = r["logit"][pr[hr:]], f["logit"][pf[hf:]]
    metrics = lc.measure(ev_r, ev_f)
    raw = separation_metrics(sigmoid(ev_r), sigmoid(ev_f))
    metrics.update({"accuracy_raw": raw["accuracy"], "brier_raw": raw["brier"], "ece_raw": raw["ece"],
                    "mean_logit_real": float(r["logit"].mean()), "mean_logit_fake": float(f["logit"].mean())})
    metrics = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in metrics.items()}

    # (2) OOD statistics: class means + covariance of training features, thresholds from the real fit half,
    #     false-positive rate on the real held-out half
    ood = None
    if "feats" in r:
        ood = fit_ood(r, f, pr[:hr], pr[hr:], seed=seed, data_dir=data_dir, n_train=n_ood_train)
    return Calibration(platt_a=lc.platt_a, platt_b=lc.platt_b, real_quantiles=lc.real_quantiles,
                       fake_quantiles=lc.fake_quantiles, metrics=metrics, label_rule=rule, n_real=n_real,
                       n_fake=n_fake, seed=seed, real_split=split, ood=ood, seconds=round(time.perf_counter() - t0, 2))


def write_calibration(folder: str | Path, *, model: GAN | None = None, n_real: int = 5000, n_fake: int = 5000,
                      seed: int = 0, data_dir: str | Path | None = None, n_ood_train: int = OOD_TRAIN_IMAGES) -> Path:
    """Calibrate the model in folder (or the given one, saved there) and write folder/calibration.json."""
    folder = Path(folder)
    if model is None:
        if not (folder / "config.json").is_file():
            raise ValueError(f"{folder} is not a model folder (no config.json); pass the folder train.py wrote")
        model = GAN.from_pretrained(str(folder))
    cal = calibrate(model, n_real=n_real, n_fake=n_fake, seed=seed, data_dir=data_dir, n_ood_train=n_ood_train)
    weights = folder / DISCRIMINATOR_FILE
    cal.discriminator_sha256 = sha256_file(weights) if weights.is_file() else None
    return atomic_write_json(folder / CALIBRATION_FILE, cal.to_dict(), compact=True)


def load_calibration(folder: str | Path) -> Calibration | None:
    """folder/calibration.json, or None (with a warning) when it is missing, invalid or stale."""
    folder = Path(folder)
    path = folder / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        cal = Calibration.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError) as e:
        warnings.warn(f"ignoring {path}: {e}", stacklevel=2)
        return None
    weights = folder / DISCRIMINATOR_FILE
    sha = sha256_file(weights) if weights.is_file() else None
    if cal.discriminator_sha256 and sha and sha != cal.discriminator_sha256:
        warnings.warn(f"ignoring {path}: it was made for another {DISCRIMINATOR_FILE}; rerun "
                      f"python -m gan.scoring {folder}", stacklevel=2)
        return None
    return cal
