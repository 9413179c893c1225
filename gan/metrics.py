"""Sample-quality metrics measured in the feature space of the Fashion-MNIST classifier (gan.classifier).

Inception features mean little on 28x28 grayscale clothes, so every metric here uses the shipped
classifier instead (~93% test accuracy): its 128-d penultimate embedding for FID, KID and
precision/recall, its class probabilities for the Inception Score, class coverage and label accuracy.
Numbers are therefore comparable only with numbers computed by this code and this classifier, which is
why every result comes with reference rows measured the same way:

* ``train``: N real training images vs the test set (the floor a perfect generator would reach);
* ``blur``: the same training images blurred (Gaussian, sigma 1 px);
* ``noise``: the same training images plus Gaussian noise (sigma 0.1 on the [0, 1] scale, clamped).

The degradations are applied to training images, not to the test images themselves, so that no
degraded image is compared with its own original.  The real set is always the 10k test images.

Columns (one row per model or reference):
  fid, kid (x1e3 in tables)  Frechet / kernel distance of the features to the test set (torchmetrics).
  precision, recall          improved precision and recall (Kynkaanniemi et al. 2019, k = 3).
  inception_score            exp E[KL(p(y|x) || p(y))] with the classifier (1 .. 10).
  coverage_min               the smallest share of any predicted class (0.1 = perfectly balanced).
  class_fid_mean             mean per-class FID (requested class for conditional models, else predicted).
  label_accuracy             share of samples classified as the class they were requested for.
Memorization: the L2 distance (pixels in [0, 1]) of each sample to its nearest training image,
compared with the same distance for real test images.

    from gan.evalreport import evaluation_markdown
    from gan.metrics import evaluate_model
    res = evaluate_model(GAN.from_pretrained("checkpoints"), n=10000)
    print(evaluation_markdown(res))
"""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from .classifier import DEFAULT_PATH as CLASSIFIER_PATH
from .classifier import FashionClassifier, config_path, load_classifier
from .evalreport import REFERENCE_NAMES
from .fileio import atomic_write_json, cache_dir, sha256_file

MEMORIZATION_THRESHOLD = 1.0  # L2 in [0, 1] pixel units (RMS 0.036 a pixel): a near-copy; ~0.1% of test images
P1_RATIO = 0.75  # samples whose 1st-percentile distance is below 0.75x that of test images sit too close
MEMORIZATION_SAMPLES = 1000  # images checked against all 60k training images
PR_K = 3
KID_SUBSETS = 50
KID_SUBSET_SIZE = 1000
MIN_SAMPLES = 10  # fewest images evaluate_samples accepts (k-NN radii need more than k)
MIN_CLASS_SAMPLES = 20  # per-class FID needs at least this many samples of the class


class MetricsUnavailable(ImportError):
    """The metric classifier or the Fashion-MNIST test set is missing (an ImportError, so train.py can go on without)."""


# ---- inputs and features -----------------------------------------------------------------------
def as_images(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Validate uint8 images (N, 28, 28) or (N, 1, 28, 28) and return them as a (N, 1, 28, 28) tensor."""
    x = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
    if x.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 in [0, 255] (0 = black background), got dtype {x.dtype}")
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        raise ValueError(f"images must have shape (N, 28, 28) or (N, 1, 28, 28), got {tuple(images.shape)}")
    if x.size(0) < MIN_SAMPLES:
        raise ValueError(f"need at least {MIN_SAMPLES} images to compare distributions, got {x.size(0)}")
    return x


class ClassifierFeatures(nn.Module):
    """Maps uint8 images (B, 1, 28, 28) to the classifier's (B, 128) features: a torchmetrics ``feature``."""

    def __init__(self, classifier: FashionClassifier | None = None) -> None:
        super().__init__()
        self.classifier = classifier or load_classifier()
        self.num_features = self.classifier.num_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(images.float().div(127.5).sub(1.0))


class _Precomputed(nn.Module):
    """Identity 'feature extractor': lets torchmetrics work on features we computed once and reuse."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


@torch.no_grad()
def embed(images: torch.Tensor, classifier: FashionClassifier | None = None, *,
          batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, 128) float64, log-probabilities (N, 10)) of uint8 images (N, 1, 28, 28), on CPU."""
    classifier = classifier or load_classifier()
    dev = next(classifier.parameters()).device
    feats, logps = [], []
    for b in images.split(batch_size):
        f = classifier.features(b.to(dev).float().div(127.5).sub(1.0))
        feats.append(f.double().cpu())
        logps.append(F.log_softmax(classifier.head(f).double(), dim=1).cpu())
    return torch.cat(feats), torch.cat(logps)


# ---- distribution metrics on features ----------------------------------------------------------
def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Frechet distance between two feature sets (N, D), via torchmetrics' FrechetInceptionDistance."""
    # sync_on_compute=False: features are computed in this process; never touch a torch.distributed group
    # (under torchrun only rank 0 evaluates, and a sync would wait for ranks that never join)
    m = FrechetInceptionDistance(feature=_Precomputed(real.size(1)), sync_on_compute=False)
    m.update(real.double(), real=True)
    m.update(fake.double(), real=False)
    return max(float(m.compute()), 0.0)


def kid(real: torch.Tensor, fake: torch.Tensor, *, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE,
        seed: int = 0) -> tuple[float, float]:
    """Kernel distance (mean, std over random subsets) between two feature sets, via torchmetrics."""
    size = min(subset_size, real.size(0), fake.size(0))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        m = KernelInceptionDistance(feature=_Precomputed(real.size(1)), subsets=subsets, subset_size=size,
                                    sync_on_compute=False)  # local only, as fid() above
    m.update(real.double(), real=True)
    m.update(fake.double(), real=False)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        mean, std = m.compute()
    return float(mean), float(std)


def knn_radii(features: torch.Tensor, k: int = PR_K, chunk: int = 2000) -> torch.Tensor:
    """Distance of each point (N, D) to its k-th nearest neighbour among the others, (N,)."""
    out = []
    for a in features.split(chunk):
        d = torch.cdist(a, features)  # (c, N); includes the point itself at distance 0
        out.append(d.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(out)


def precision_recall(real: torch.Tensor, fake: torch.Tensor, *, k: int = PR_K, chunk: int = 2000,
                     real_radii: torch.Tensor | None = None) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) with k-NN radii, in chunks of cdist."""
    real_radii = knn_radii(real, k, chunk) if real_radii is None else real_radii
    fake_radii = knn_radii(fake, k, chunk)
    in_real = torch.zeros(fake.size(0), dtype=torch.bool)  # fake sample inside the real manifold
    in_fake = torch.zeros(real.size(0), dtype=torch.bool)  # real sample inside the fake manifold
    for start in range(0, fake.size(0), chunk):
        d = torch.cdist(fake[start:start + chunk], real)  # (c, N_real)
        in_real[start:start + chunk] = (d <= real_radii[None]).any(1)
        in_fake |= (d <= fake_radii[start:start + chunk, None]).any(0)
    return in_real.float().mean().item(), in_fake.float().mean().item()


def inception_score(log_probs: torch.Tensor) -> float:
    """exp E_x[KL(p(y|x) || p(y))] from log-probabilities (N, K); between 1 and K."""
    log_py = torch.logsumexp(log_probs, dim=0) - math.log(log_probs.size(0))  # log of the marginal p(y)
    kl = (log_probs.exp() * (log_probs - log_py)).sum(1)
    return float(kl.mean().exp())


def class_shares(pred: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Fraction of predictions per class, (K,)."""
    return torch.bincount(pred, minlength=num_classes).double() / max(pred.numel(), 1)


def class_fids(real: torch.Tensor, real_labels: torch.Tensor, fake: torch.Tensor, fake_labels: torch.Tensor,
               num_classes: int, *, min_samples: int = MIN_CLASS_SAMPLES) -> list[float | None]:
    """FID per class c: fake samples of class c vs real images of class c (None when too few samples)."""
    out: list[float | None] = []
    for c in range(num_classes):
        r, f = real[real_labels == c], fake[fake_labels == c]
        out.append(fid(r, f) if min(len(r), len(f)) >= min_samples else None)
    return out


# ---- memorization ------------------------------------------------------------------------------
@torch.no_grad()
def nearest_train_distances(images: torch.Tensor, train: torch.Tensor, *, chunk: int = 250) -> torch.Tensor:
    """L2 distance (pixels in [0, 1]) of each uint8 image (N, 1, 28, 28) to its nearest training image, (N,)."""
    t = train.flatten(1).float().div(255)  # (M, 784)
    t_sq = t.square().sum(1)
    out = []
    for b in images.flatten(1).float().div(255).split(chunk):
        d2 = b.square().sum(1, keepdim=True) + t_sq[None] - 2 * b @ t.T  # (c, M), float32 rounding ~1e-4
        nearest = d2.argmin(1)
        out.append((b - t[nearest]).norm(dim=1))  # exact distance to the nearest candidate
    return torch.cat(out)


def distance_summary(d: torch.Tensor, threshold: float = MEMORIZATION_THRESHOLD) -> dict:
    """Mean, 1st percentile and share below threshold of nearest-neighbour distances."""
    return {"n": int(d.numel()), "mean": round(float(d.mean()), 4),
            "p1": round(float(torch.quantile(d.double(), 0.01)), 4),
            "frac_below": round(float((d < threshold).double().mean()), 5), "threshold": threshold}


def memorization_verdict(samples: dict, test: dict) -> str:
    """'no closer than real test images' unless more samples than test images are near-copies of training images
    (share below the threshold, beyond 3 standard errors) or their 1st percentile is under P1_RATIO x the test one."""
    n1, n2 = samples["n"], test["n"]
    p1, p2 = samples["frac_below"], test["frac_below"]
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    margin = 3 * math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2)) + 1 / n1  # 3 sigma plus one sample
    if p1 > p2 + margin:
        return (f"closer than real test images: {p1:.1%} of samples lie within {samples['threshold']} of a "
                f"training image vs {p2:.1%} of test images")
    if samples["p1"] < P1_RATIO * test["p1"]:
        return (f"closer than real test images: 1st percentile of the distance {samples['p1']:.3f} vs "
                f"{test['p1']:.3f} for test images")
    return "no closer than real test images"


# ---- references --------------------------------------------------------------------------------
class _RealSet:
    """The real test set (features, log-probs, labels) and the training images, loaded once per process."""

    _cache: dict = {}

    @classmethod
    def get(cls, classifier: FashionClassifier, data_dir: str | None = None) -> dict:
        key = (id(classifier), data_dir)
        if key not in cls._cache:
            from .data import load_dataset
            test = load_dataset("fashion-mnist", split="test", data_dir=data_dir)
            train = load_dataset("fashion-mnist", split="train", data_dir=data_dir)
            feats, logp = embed(test.images, classifier)
            cls._cache[key] = {"test_images": test.images, "test_labels": test.labels, "test_features": feats,
                               "test_log_probs": logp, "train_images": train.images, "train_labels": train.labels,
                               "class_names": test.class_names, "radii": {}}
        return cls._cache[key]


def _real_subset(real: dict, n: int, seed: int) -> torch.Tensor:
    """Indices of a fixed random subset of the test set of size min(n, 10000) (for precision/recall)."""
    m = real["test_features"].size(0)
    return torch.randperm(m, generator=torch.Generator().manual_seed(seed))[:min(n, m)]


def _row(real: dict, feats: torch.Tensor, logp: torch.Tensor, fake_labels: torch.Tensor | None,
         requested: torch.Tensor | None, seed: int) -> tuple[dict, list, list]:
    """One table row for a feature set, plus per-class shares and per-class FIDs."""
    k = logp.size(1)
    pred = logp.argmax(1)
    sub = _real_subset(real, feats.size(0), seed)
    key = (len(sub), seed)
    if key not in real["radii"]:
        real["radii"][key] = knn_radii(real["test_features"][sub])
    prec, rec = precision_recall(real["test_features"][sub], feats, real_radii=real["radii"][key])
    kid_mean, kid_std = kid(real["test_features"], feats, seed=seed)
    shares = class_shares(pred, k)
    per_class = class_fids(real["test_features"], real["test_labels"], feats,
                           fake_labels if fake_labels is not None else pred, k)
    valid = [v for v in per_class if v is not None]
    row = {"fid": fid(real["test_features"], feats), "kid": kid_mean, "kid_std": kid_std, "precision": prec,
           "recall": rec, "inception_score": inception_score(logp), "coverage_min": float(shares.min()),
           "class_fid_mean": float(np.mean(valid)) if valid else None,
           "label_accuracy": float((pred == requested).double().mean()) if requested is not None else None}
    return row, shares.tolist(), per_class


def _degrade(images: torch.Tensor, kind: str, seed: int) -> torch.Tensor:
    """uint8 images (N, 1, 28, 28) blurred (sigma 1 px) or with Gaussian noise (sigma 0.1 on [0, 1])."""
    from torchvision.transforms.v2.functional import gaussian_blur
    x = images.float().div(255)
    if kind == "blur":
        x = gaussian_blur(x, kernel_size=[5, 5], sigma=[1.0, 1.0])
    else:
        x = x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    return x.clamp(0, 1).mul(255).round().to(torch.uint8)


REFERENCES_FILE = "metric_references.json"


def shipped_references_path(classifier_path: str | Path | None = None) -> Path:
    """Read-only reference statistics shipped beside the classifier weights (gan/assets/classifier/)."""
    return Path(classifier_path or CLASSIFIER_PATH).parent / REFERENCES_FILE


def references_path(classifier_path: str | Path | None = None) -> Path:
    """The run-time reference cache for a classifier: in the user cache (gan.fileio.cache_dir), never a model folder."""
    return _cache_file(_classifier_digest(Path(classifier_path or CLASSIFIER_PATH)))


def _cache_file(digest: str) -> Path:
    return cache_dir("metric_references") / f"{digest}.json"


def _classifier_digest(path: Path) -> str:
    return sha256_file(path)[:16]


def _read_reference_file(path: Path, digest: str) -> dict:
    """{key: entry} from a reference file made with the classifier whose digest is given ({} otherwise)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    ok = isinstance(doc, dict) and doc.get("classifier_sha256_16") == digest and isinstance(doc.get("entries"), dict)
    return doc["entries"] if ok else {}


def compute_references(n: int, *, seed: int = 0, classifier_path: str | Path | None = None,
                       data_dir: str | None = None, use_cache: bool = True) -> dict:
    """Reference rows (train floor, blur, noise) and the test-set memorization distances for n samples.

    Looked up in the user cache, then in the statistics shipped with the classifier; computed (minutes for
    10k images) and stored in the user cache otherwise.
    """
    cpath = Path(classifier_path or CLASSIFIER_PATH)
    digest = _classifier_digest(cpath)
    key = f"n={n},seed={seed}"
    cache_file = _cache_file(digest)
    cached = _read_reference_file(cache_file, digest) if use_cache else {}
    if use_cache:
        for entries in (cached, _read_reference_file(shipped_references_path(cpath), digest)):
            if key in entries:
                return entries[key]
    entry = _reference_entry(n, seed, cpath, data_dir)
    if use_cache:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(cache_file, {"classifier_sha256_16": digest, "entries": {**cached, key: entry}}, indent=1)
        except OSError as e:
            warnings.warn(f"could not cache metric references in {cache_file}: {e}")
    return entry


def _reference_entry(n: int, seed: int, cpath: Path, data_dir: str | None) -> dict:
    """Compute the reference rows and test-set memorization distances for n training images."""
    t0 = time.time()
    classifier = load_classifier(cpath)
    real = _RealSet.get(classifier, data_dir)
    g = torch.Generator().manual_seed(seed)
    m = real["train_images"].size(0)
    idx = torch.randperm(m, generator=g)[:min(n, m)]
    imgs, labels = real["train_images"][idx], real["train_labels"][idx]
    rows, shares, class_fid = {}, {}, {}
    for name in REFERENCE_NAMES:
        x = imgs if name == "train" else _degrade(imgs, name, seed)
        feats, logp = embed(x, classifier)
        rows[name], shares[name], class_fid[name] = _row(real, feats, logp, labels, labels, seed)
    n_mem = min(MEMORIZATION_SAMPLES, n)
    mem_idx = torch.randperm(real["test_images"].size(0), generator=g)[:n_mem]
    test_d = nearest_train_distances(real["test_images"][mem_idx], real["train_images"])
    return {"n_samples": int(len(idx)), "seed": seed, "rows": rows, "coverage": shares, "class_fid": class_fid,
             "memorization_test": distance_summary(test_d), "wall_time_s": round(time.time() - t0, 1)}


# ---- public entry points -----------------------------------------------------------------------
def evaluate_samples(images: np.ndarray | torch.Tensor, requested_labels: np.ndarray | torch.Tensor | None = None, *,
                     n_ref: int | None = None, seed: int = 0, classifier_path: str | Path | None = None,
                     data_dir: str | None = None) -> dict:
    """Every metric for uint8 samples (N, 28, 28) or (N, 1, 28, 28), next to references for n_ref (default N) images."""
    t0 = time.time()
    x = as_images(images)
    n = x.size(0)
    cpath = Path(classifier_path or CLASSIFIER_PATH)
    classifier = load_classifier(cpath)
    k = classifier.cfg.num_classes
    req = None
    if requested_labels is not None:
        req = torch.as_tensor(np.asarray(requested_labels)).long().flatten()
        if req.numel() != n:
            raise ValueError(f"got {req.numel()} labels for {n} images")
        if n and (req.min() < 0 or req.max() >= k):
            raise ValueError(f"labels must be in [0, {k - 1}], got values {req.min().item()}..{req.max().item()}")
    real = _RealSet.get(classifier, data_dir)
    feats, logp = embed(x, classifier)
    row, shares, per_class = _row(real, feats, logp, req, req, seed)
    refs = compute_references(n_ref or n, seed=seed, classifier_path=cpath, data_dir=data_dir)
    g = torch.Generator().manual_seed(seed)
    mem_idx = torch.randperm(n, generator=g)[:min(MEMORIZATION_SAMPLES, n)]
    mem = distance_summary(nearest_train_distances(x[mem_idx], real["train_images"]))
    names = real["class_names"]
    meta = json.loads(config_path(cpath).read_text())
    return {
        "n_samples": n, "seed": seed, "conditional": req is not None,
        "metrics": row,
        "coverage": dict(zip(names, shares)),
        "class_fid": dict(zip(names, per_class)),
        "memorization": {"samples": mem, "test": refs["memorization_test"],
                         "verdict": memorization_verdict(mem, refs["memorization_test"])},
        "references": refs["rows"], "reference_samples": refs["n_samples"],
        "classifier": {"file": cpath.name, "test_accuracy": meta.get("test_accuracy")},
        "wall_time_s": round(time.time() - t0, 1),
    }


@torch.no_grad()
def generate_uint8(G: nn.Module, n: int, *, seed: int = 0, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n uint8 samples (n, 1, 28, 28) from G (eval mode) and their requested labels (uniform; None if unconditional)."""
    from .data import to_uint8
    from .models import seed_latents
    dev = next(G.parameters()).device
    z, y = seed_latents(seed, n, G.cfg.z_dim, G.cfg.num_classes)
    was_training = G.training
    G.eval()
    out = []
    for i in range(0, n, batch_size):
        img = G(z[i:i + batch_size].to(dev), None if y is None else y[i:i + batch_size].to(dev))
        out.append(to_uint8(to_fashion_format(img)).cpu())
    G.train(was_training)
    return torch.cat(out), y


def to_fashion_format(images: torch.Tensor) -> torch.Tensor:
    """Bring generator output (B, C, R, R) in [-1, 1] to grayscale 28x28 (luma; antialiased resize)."""
    if images.size(1) == 3:
        images = (images * torch.tensor([0.299, 0.587, 0.114], device=images.device).view(1, 3, 1, 1)).sum(1, True)
    if images.size(-1) != 28:
        images = F.interpolate(images, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
    return images


def evaluate_model(model: nn.Module, n: int = 10000, seed: int = 0, **kwargs) -> dict:
    """Generate n samples from a GAN (uniform labels when conditional) and evaluate them with evaluate_samples."""
    if n < MIN_SAMPLES:
        raise ValueError(f"n must be >= {MIN_SAMPLES}, got {n}")
    t0 = time.time()
    images, labels = generate_uint8(model.generator, n, seed=seed)
    res = evaluate_samples(images, labels, seed=seed, **kwargs)
    res["wall_time_s"] = round(time.time() - t0, 1)
    return res


def training_evaluator(cfg) -> Callable[[nn.Module], dict]:
    """For the training loop: G (eval mode) -> {fid, kid, precision, recall, inception_score, ...} on cfg.eval_samples."""
    n = int(cfg.eval_samples)
    from .data import DataError
    try:
        classifier = load_classifier()
        real = _RealSet.get(classifier, getattr(cfg, "data_dir", None))
    except (OSError, ValueError, DataError) as e:
        raise MetricsUnavailable(f"metrics during training are off: {e}") from None
    sub = _real_subset(real, n, 0)
    real_pr = real["test_features"][sub]
    radii = knn_radii(real_pr)
    on_device: dict[str, FashionClassifier] = {}

    def evaluate(G: nn.Module) -> dict:
        dev = next(G.parameters()).device
        if str(dev) not in on_device:
            import copy
            on_device[str(dev)] = copy.deepcopy(classifier).to(dev) if dev.type != "cpu" else classifier
        images, labels = generate_uint8(G, n, seed=0)
        feats, logp = embed(images, on_device[str(dev)])
        prec, rec = precision_recall(real_pr, feats, real_radii=radii)
        out = {"fid": fid(real["test_features"], feats), "kid": kid(real["test_features"], feats, subsets=20)[0],
               "precision": prec, "recall": rec, "inception_score": inception_score(logp),
               "coverage_min": float(class_shares(logp.argmax(1), logp.size(1)).min())}
        if labels is not None:
            out["label_accuracy"] = float((logp.argmax(1) == labels).double().mean())
        return out

    return evaluate
