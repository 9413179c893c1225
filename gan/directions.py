"""Interpretable latent directions, computed once per model and stored in its folder.

Two kinds, both unit vectors in z space:

* GANSpace (Härkönen et al. 2020): PCA of the generator's first-layer activations over many random
  latents (and classes), then each principal component is mapped back to z by least squares
  (z ≈ coords @ U, the rows of U are the directions), as GANSpace does for BigGAN-style models.
  For a conditional model the activations are centred per class, so the components describe the
  variation that z controls within a class rather than the differences between classes.
* InterFaceGAN (Shen et al. 2020): for an attribute measured on generated images (brightness, area,
  bounding-box width and height, and the metric classifier's logit for each class when available),
  the normal of a least-squares linear boundary in z (with one intercept per class) is the direction.
  Brightness, width and height use InterFaceGAN's conditional manipulation (the area, height and width
  normals are projected out), because all four attributes otherwise move together with the object's size.
  A boundary whose own attribute barely moves (< 0.1 sd at +3) is dropped and listed in meta["skipped"].

Every direction is labelled by what it measurably changes: a batch of samples is pushed to +/- 3 units
along it, and the attribute with the largest change in standard deviations names it, e.g.
``PC1: wider / narrower (+0.21 width at +3)``; ``strength`` holds that change in standard deviations
(an app can hide weak directions), ``effects`` the change of every attribute.

    python -m gan.directions runs/pilot [--n 20000] [--k 8]     # writes directions.safetensors + .json

The files are safetensors (the vectors) and JSON (names, labels, measured effects); nothing is pickled.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .latent import generator_of

FORMAT_VERSION = 1
TENSOR_FILE = "directions.safetensors"
JSON_FILE = "directions.json"
LABEL_STEP = 3.0  # distance along a direction at which effects are measured (the app's slider end)
_WARNED = False  # the missing-classifier warning is shown once per process
THRESHOLD = 0.25  # intensity in [0, 1] above which a pixel counts as part of the object
# attribute -> (word for more, word for less, what is measured)
ATTRIBUTES = {
    "brightness": ("brighter", "darker", "mean pixel intensity, in [0, 1]"),
    "area": ("larger", "smaller", f"fraction of pixels brighter than {THRESHOLD}"),
    "width": ("wider", "narrower", "bounding-box width as a fraction of the image width"),
    "height": ("taller", "shorter", "bounding-box height as a fraction of the image height"),
}
# InterFaceGAN's conditional manipulation: the normals of correlated attributes are projected out, so that
# "width" widens at constant height instead of scaling the whole object (all four correlate with size).
CONDITIONED_ON = {"brightness": ("area",), "width": ("height",), "height": ("width",)}
MIN_EFFECT_SD = 0.1  # attribute directions whose own attribute moves less (in sd at +LABEL_STEP) are dropped


@dataclass
class Directions:
    """Named unit directions in z space with their labels and measured effects."""

    names: list[str]
    vectors: torch.Tensor  # (K, z_dim), unit rows
    labels: list[str]
    descriptions: list[str]
    kinds: list[str]  # "pca" | "attribute" | "class"
    effects: list[dict[str, float]] = field(default_factory=list)  # attribute -> change at +LABEL_STEP
    meta: dict = field(default_factory=dict)
    strength: list[float] = field(default_factory=list)  # main attribute's change at +LABEL_STEP, in sd

    def __post_init__(self) -> None:
        k = self.vectors.shape[0] if self.vectors.dim() == 2 else -1
        lens = {len(self.names), len(self.labels), len(self.descriptions), len(self.kinds)}
        if (self.vectors.dim() != 2 or lens != {k} or (self.effects and len(self.effects) != k)
                or (self.strength and len(self.strength) != k)):
            raise ValueError(f"inconsistent directions: vectors {tuple(self.vectors.shape)}, {len(self.names)} names, "
                             f"{len(self.labels)} labels, {len(self.descriptions)} descriptions, {len(self.kinds)} kinds")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"direction names must be unique, got {self.names}")
        if not self.effects:
            self.effects = [{} for _ in self.names]
        if not self.strength:
            self.strength = [float("nan")] * len(self.names)
        self.index = {n: i for i, n in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    @property
    def z_dim(self) -> int:
        return self.vectors.shape[1]

    def vector(self, name: str) -> torch.Tensor:
        """The unit direction (z_dim,) called name."""
        if name not in self.index:
            raise KeyError(f"unknown direction {name!r}; known: {', '.join(self.names)}")
        return self.vectors[self.index[name]]


def apply_directions(z: torch.Tensor, directions: Directions, values: dict[str, float]) -> torch.Tensor:
    """z' = z + sum_name values[name] * direction[name], for z (z_dim,) or (B, z_dim)."""
    if not values:
        return z.clone()
    unknown = [n for n in values if n not in directions.index]
    if unknown:
        raise KeyError(f"unknown direction(s) {unknown}; known: {', '.join(directions.names)}")
    idx = [directions.index[n] for n in values]
    w = torch.tensor([float(v) for v in values.values()], dtype=directions.vectors.dtype)
    return z + w @ directions.vectors[idx]  # (z_dim,)


# ---- attributes measured on images --------------------------------------------------------------
def slug(name: str) -> str:
    """A class name as a direction-name fragment: 'T-shirt/top' -> 't_shirt_top'."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "class"


def measure_attributes(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image attributes (B,) of images (B, C, H, W) in [-1, 1]: brightness, area, width, height."""
    x = images.float().add(1).div(2).mean(1)  # (B, H, W) intensity in [0, 1]
    B, H, W = x.shape
    mask = x > THRESHOLD
    out = {"brightness": x.mean((1, 2)), "area": mask.float().mean((1, 2))}
    for name, axis, size in (("width", 1, W), ("height", 2, H)):
        any_ = mask.any(axis)  # (B, size): columns (width) or rows (height) that hold the object
        first = any_.float().argmax(1)
        last = size - 1 - any_.flip(1).float().argmax(1)
        out[name] = torch.where(any_.any(1), (last - first + 1).float() / size, torch.zeros(B))
    return out


def metric_classifier(model: nn.Module | None = None) -> nn.Module | None:
    """The metric classifier (gan.classifier) when it is built and fits the model's images, else None."""
    G = generator_of(model) if model is not None else None
    if G is not None and (G.cfg.channels != 1 or G.cfg.resolution != 28):
        return None
    if model is not None and getattr(model, "dataset", "fashion-mnist") != "fashion-mnist":
        return None
    try:
        from .classifier import load_classifier
        return load_classifier()
    except (ImportError, FileNotFoundError, ValueError, OSError) as e:
        global _WARNED
        if not _WARNED:
            _WARNED = True
            warnings.warn(f"metric classifier unavailable ({type(e).__name__}: {str(e)[:160]}); "
                          f"class labels and the feature loss are skipped")
        return None


@torch.no_grad()
def _images(G: nn.Module, z: torch.Tensor, y: torch.Tensor | None, chunk: int = 2048) -> torch.Tensor:
    return torch.cat([G(z[i:i + chunk], None if y is None else y[i:i + chunk]) for i in range(0, len(z), chunk)])


@torch.no_grad()
def _attributes(images: torch.Tensor, classifier: nn.Module | None, class_names: list[str],
                chunk: int = 2048) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Attributes (B,) per name (class probabilities as 'class_<slug>') and the classifier logits (B, n)."""
    attrs = measure_attributes(images)
    logits = None
    if classifier is not None:
        logits = torch.cat([classifier(c) for c in images.split(chunk)])
        probs = logits.softmax(1)
        for i, c in enumerate(class_names):
            attrs[f"class_{slug(c)}"] = probs[:, i]
    return attrs, logits


def _attr_words(attr: str, class_names: list[str]) -> tuple[str, str, str]:
    """(more, less, short name) of an attribute key."""
    if attr in ATTRIBUTES:
        return ATTRIBUTES[attr][0], ATTRIBUTES[attr][1], attr
    c = next((c for c in class_names if f"class_{slug(c)}" == attr), attr)
    return f"more {c}", f"less {c}", f"P({c})"


# ---- computation --------------------------------------------------------------------------------
@torch.no_grad()
def _pca_directions(G: nn.Module, z: torch.Tensor, y: torch.Tensor | None, k: int, seed: int,
                    chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """GANSpace: (k, z_dim) unit directions and their explained-variance ratios (k,)."""
    feats = torch.cat([G.early_features(z[i:i + chunk], None if y is None else y[i:i + chunk])
                       for i in range(0, len(z), chunk)])  # (N, C0*S0*S0)
    if y is None:
        feats -= feats.mean(0, keepdim=True)
    else:  # per-class centring: keep the variation that z (not the class) controls
        n_cls = int(y.max()) + 1
        means = torch.zeros(n_cls, feats.size(1)).index_add_(0, y, feats)
        means /= torch.bincount(y, minlength=n_cls).clamp_min(1).unsqueeze(1)
        feats -= means[y]
    total_var = feats.pow(2).sum() / (len(feats) - 1)
    q = min(k + 8, *feats.shape)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        U, S, _ = torch.pca_lowrank(feats, q=q, center=False, niter=2)
    del feats
    coords = U[:, :k] * S[:k]  # (N, k) PCA coordinates of every sample
    zc = z - z.mean(0, keepdim=True)
    dirs = torch.linalg.lstsq(coords, zc).solution  # (k, z_dim): z ≈ coords @ dirs
    dirs = dirs / dirs.norm(dim=1, keepdim=True).clamp_min(1e-12)
    ratio = S[:k].pow(2) / (len(coords) - 1) / total_var.clamp_min(1e-12)
    return dirs, ratio


def _boundary_normal(z: torch.Tensor, y: torch.Tensor | None, target: torch.Tensor,
                     num_classes: int) -> torch.Tensor | None:
    """Unit normal w of the least-squares fit target ≈ z·w + b_class (InterFaceGAN's linear boundary)."""
    if target.std() < 1e-6:
        return None
    ones = torch.nn.functional.one_hot(y, num_classes).float() if y is not None else torch.ones(len(z), 1)
    X = torch.cat([z, ones], dim=1)  # (N, z_dim + classes)
    t = (target - target.mean()) / target.std()
    sol = torch.linalg.lstsq(X, t.unsqueeze(1)).solution[: z.size(1), 0]
    n = sol.norm()
    return None if n < 1e-8 else sol / n


def compute_directions(model: nn.Module, *, n: int = 20000, k: int = 8, seed: int = 0, n_label: int = 128,
                       n_fit: int = 4096, classifier: nn.Module | None | str = "auto",
                       verbose: bool = False) -> Directions:
    """GANSpace PCA directions plus InterFaceGAN attribute directions, each labelled by its measured effect."""
    t0 = time.time()
    if n < max(2 * k, 64):
        raise ValueError(f"n={n} is too small; use at least {max(2 * k, 64)} samples")
    G = generator_of(model)
    was_training = G.training
    G.eval()
    num_classes = G.cfg.num_classes
    clf = metric_classifier(model) if classifier == "auto" else classifier
    clf_names = _fashion_names() if clf is not None else []  # the classifier's outputs, in its order
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.randn(n, G.cfg.z_dim, generator=gen)
    y = torch.randint(0, num_classes, (n,), generator=gen) if num_classes else None
    try:
        # (1) GANSpace
        pca_dirs, ratios = _pca_directions(G, z, y, min(k, G.cfg.z_dim), seed)
        names = [f"PC{i + 1}" for i in range(len(pca_dirs))]
        kinds = ["pca"] * len(names)
        vecs = [pca_dirs]
        if verbose:
            print(f"PCA of first-layer features: {time.time() - t0:.1f} s", flush=True)
        # (2) InterFaceGAN: attributes of generated images regressed on z
        m = min(n, n_fit)
        zf, yf = z[:m], (y[:m] if y is not None else None)
        attrs, logits = _attributes(_images(G, zf, yf), clf, clf_names)
        targets = {a: attrs[a] for a in ATTRIBUTES}
        if logits is not None:
            targets.update({f"class_{slug(c)}": logits[:, i] for i, c in enumerate(clf_names)})
        skipped = []
        normals = {}
        for a, t in targets.items():
            w = _boundary_normal(zf, yf, t, num_classes)
            if w is None:
                skipped.append(f"{a} (constant on generated images)")
            else:
                normals[a] = w
        for a, w in normals.items():
            others = [normals[b] for b in CONDITIONED_ON.get(a, ()) if b in normals]
            if others:  # remove the span of the conditioning normals
                Q, _ = torch.linalg.qr(torch.stack(others, 1))  # (z_dim, m) orthonormal basis
                w = w - Q @ (Q.T @ w)
                if w.norm() < 0.05:
                    skipped.append(f"{a} (indistinguishable from {', '.join(CONDITIONED_ON[a])})")
                    continue
                w = w / w.norm()
            names.append(a)
            kinds.append("attribute" if a in ATTRIBUTES else "class")
            vecs.append(w.unsqueeze(0))
        vectors = torch.cat(vecs)  # (K, z_dim)
        if verbose:
            print(f"attribute boundaries: {time.time() - t0:.1f} s", flush=True)
        # (3) label every direction by pushing a batch along it
        zl = torch.randn(n_label, G.cfg.z_dim, generator=gen)
        yl = torch.randint(0, num_classes, (n_label,), generator=gen) if num_classes else None
        base, _ = _attributes(_images(G, zl, yl), clf, clf_names)
        K = len(vectors)
        steps = torch.tensor([LABEL_STEP, -LABEL_STEP])
        zs = zl[None, None] + steps[None, :, None, None] * vectors[:, None, None, :]  # (K, 2, n_label, z_dim)
        ys = yl.repeat(K * 2) if yl is not None else None
        moved, _ = _attributes(_images(G, zs.reshape(-1, G.cfg.z_dim), ys), clf, clf_names)
    finally:
        G.train(was_training)
    labels, descriptions, effects, strength, keep = [], [], [], [], []
    for i in range(K):
        change, sd_change = {}, {}
        for a, base_v in base.items():
            v = moved[a].view(K, 2, n_label)[i].mean(1)  # (2,): mean at +step, -step
            change[a] = float((v[0] - v[1]) / 2)  # mean change at +step (central difference)
            sd_change[a] = change[a] / max(float(base_v.std()), 1e-6)
        main = names[i] if kinds[i] != "pca" else max(sd_change, key=lambda a: abs(sd_change[a]))
        if kinds[i] != "pca" and sd_change[main] < MIN_EFFECT_SD:
            skipped.append(f"{names[i]} (no measurable effect: {sd_change[main]:+.2f} sd at +{LABEL_STEP:g})")
            continue
        if kinds[i] == "pca" and change[main] < 0:  # orient PCs so that + increases the main attribute
            vectors[i] = -vectors[i]
            change = {a: -v for a, v in change.items()}
            sd_change = {a: -v for a, v in sd_change.items()}
        more, less, short = _attr_words(main, clf_names)
        labels.append(f"{names[i]}: {more} / {less} ({change[main]:+.2f} {short} at +{LABEL_STEP:g})")
        top = sorted(sd_change, key=lambda a: -abs(sd_change[a]))[:3]
        cond = [b for b in CONDITIONED_ON.get(names[i], ()) if b in normals]
        what = (f"GANSpace principal component {i + 1} of the first-layer activations "
                f"({float(ratios[i]) * 100:.1f}% of their variance)" if kinds[i] == "pca" else
                f"InterFaceGAN boundary normal for {_attr_words(names[i], clf_names)[2]}"
                + (f" with the {' and '.join(cond)} normal projected out" if cond else ""))
        descriptions.append(f"{what}. Measured at +{LABEL_STEP:g} on {n_label} samples: " + ", ".join(
            f"{_attr_words(a, clf_names)[2]} {change[a]:+.3f} ({sd_change[a]:+.2f} sd)" for a in top) + ".")
        effects.append({a: round(change[a], 5) for a in change})
        strength.append(round(sd_change[main], 4))
        keep.append(i)
    meta = {"n": n, "n_fit": min(n, n_fit), "n_label": n_label, "k": len(pca_dirs), "seed": seed,
            "label_step": LABEL_STEP, "threshold": THRESHOLD, "classifier": clf is not None,
            "explained_variance": [round(float(r), 5) for r in ratios], "skipped": skipped,
            "attributes": {a: d for a, (_, _, d) in ATTRIBUTES.items()}
            | ({f"class_{slug(c)}": f"metric classifier probability of {c}" for c in clf_names}),
            "compute_time_s": round(time.time() - t0, 2), "torch_version": torch.__version__}
    return Directions([names[i] for i in keep], vectors[keep].contiguous(), labels, descriptions,
                      [kinds[i] for i in keep], effects, meta, strength)


def _fashion_names() -> list[str]:
    from .data import FASHION_MNIST_CLASSES
    return list(FASHION_MNIST_CLASSES)


# ---- files --------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_directions(d: Directions, folder: str | Path) -> Path:
    """Write directions.safetensors (vectors) and directions.json (names, labels, effects) into folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = dict(d.meta)
    gen_file = folder / "generator.safetensors"
    if gen_file.is_file():
        meta["generator_sha256"] = _sha256(gen_file)  # lets load_directions spot stale directions
    doc = {"format_version": FORMAT_VERSION, "z_dim": d.z_dim,
           "directions": [{"name": n, "kind": k, "label": lab, "description": desc, "strength_sd": st, "effects": eff}
                          for n, k, lab, desc, st, eff in zip(d.names, d.kinds, d.labels, d.descriptions,
                                                              d.strength, d.effects)],
           "meta": meta}
    tmp = folder / (TENSOR_FILE + ".tmp")
    save_file({"directions": d.vectors.detach().float().contiguous().cpu()}, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, folder / TENSOR_FILE)
    tmp = folder / (JSON_FILE + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, folder / JSON_FILE)  # the JSON last: its presence marks a complete pair
    return folder / JSON_FILE


def load_directions(folder: str | Path, *, z_dim: int | None = None) -> Directions | None:
    """Directions stored in a model folder; None when it has none (or they belong to other weights)."""
    folder = Path(folder)
    jf, tf = folder / JSON_FILE, folder / TENSOR_FILE
    if not jf.is_file() or not tf.is_file():
        return None
    try:
        doc = json.loads(jf.read_text())
        vectors = load_file(str(tf))["directions"].float()
        items = doc["directions"]
        version = doc.get("format_version")
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as e:
        raise ValueError(f"{folder}: {JSON_FILE}/{TENSOR_FILE} are unreadable ({type(e).__name__}: {e}); "
                         f"recompute them with: python -m gan.directions {folder}") from None
    if version != FORMAT_VERSION:
        raise ValueError(f"{jf} has format_version {version!r}; this code reads {FORMAT_VERSION}")
    if z_dim is not None and vectors.shape[-1] != z_dim:
        raise ValueError(f"{tf} holds directions of size {vectors.shape[-1]} but the model has z_dim={z_dim}; "
                         f"recompute them with: python -m gan.directions {folder}")
    meta = doc.get("meta", {})
    gen_file = folder / "generator.safetensors"
    if meta.get("generator_sha256") and gen_file.is_file() and _sha256(gen_file) != meta["generator_sha256"]:
        warnings.warn(f"{folder}/{JSON_FILE} was computed for other generator weights; ignoring it "
                      f"(recompute with: python -m gan.directions {folder})")
        return None
    try:
        return Directions([it["name"] for it in items], vectors, [it["label"] for it in items],
                          [it["description"] for it in items], [it["kind"] for it in items],
                          [dict(it.get("effects", {})) for it in items], meta,
                          [float(it.get("strength_sd", float("nan"))) for it in items])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{jf} does not match {tf.name}: {e}") from None


def write_directions(folder: str | Path, *, n: int = 20000, k: int = 8, seed: int = 0,
                     classifier: nn.Module | None | str = "auto", verbose: bool = False) -> Path:
    """Compute directions for the model in folder and store them there; returns the JSON path."""
    from .pretrained import GAN
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder} is not a finished model folder (no config.json); pass the folder that "
                         f"train.py wrote, e.g. runs/fashion-mnist or checkpoints")
    model = GAN.from_pretrained(str(folder))
    d = compute_directions(model, n=n, k=k, seed=seed, classifier=classifier, verbose=verbose)
    return save_directions(d, folder)


def main(argv: list[str] | None = None) -> int:
    """Command line: python -m gan.directions DIR [--n N] [--k K] [--seed S] [--no-classifier]."""
    p = argparse.ArgumentParser(prog="python -m gan.directions",
                                description="Compute labelled latent directions for a model folder.")
    p.add_argument("folder", help="model folder (config.json + generator.safetensors)")
    p.add_argument("--n", type=int, default=20000, help="latent samples for the PCA (default: 20000)")
    p.add_argument("--k", type=int, default=8, help="principal components to keep (default: 8)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--no-classifier", action="store_true",
                   help="skip the metric classifier (no class directions or class labels)")
    args = p.parse_args(argv)
    from .pretrained import ModelFormatError
    t0 = time.time()
    try:
        path = write_directions(args.folder, n=args.n, k=args.k, seed=args.seed, verbose=True,
                                classifier=None if args.no_classifier else "auto")
    except (ModelFormatError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    d = load_directions(args.folder)
    for lab in d.labels if d else []:
        print(f"  {lab}")
    print(f"wrote {path} and {TENSOR_FILE} ({len(d) if d else 0} directions) in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
