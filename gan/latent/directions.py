"""Named latent sliders of a model: unit directions in z, per-class where G is conditional, and their files.

A slider has a unit direction in z for every class it applies to (the same one for a direction that
does not depend on the class), a scale (z units per slider unit) and its measured effects:

    d = load_directions("checkpoints")
    z2 = apply_directions(z, d, {"width": 2.0, "heel": -1.0}, label=7)   # label picks per-class vectors
    z2, emb_offset = apply_edit(z, d, {"width": 2.0}, label=2)            # also the class-input step
    d.effects_sd[d.index["width"]]    # {"width": 1.24, "area": 0.31, ...}: mean change at +3, in sd of real images

How they are found is in gan.latent.fitting; ``fashion-gan directions DIR`` (or the older
``python -m gan.directions DIR``; the code is in gan.latent.build and .cli) computes them for a model folder and writes

    directions.safetensors   "directions" (K, z_dim) unit rows, "scales" (K,), and for per-class sliders
                             "class_directions" (K, C, z_dim) and "class_scales" (K, C) (0: not for that class),
                             and, where a slider also moves G's class input, "class_embedding" (K, C, z_dim)
    directions.json          format_version 3: names, kinds, labels, descriptions, measured effects (overall
                             and per class), meta

A slider's step for class c is class_scales[c] * class_directions[c] in z and class_scales[c] *
class_embedding[c] added to the class embedding (see gan.latent.space): still one forward pass.
Version-1 and 2 files (z only) still load. Nothing is pickled.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..classifier import metric_classifier  # noqa: F401 (its older home)
from ..fileio import atomic_path, atomic_write_json, sha256_file
from .sampling import SLIDER_RANGE

FORMAT_VERSION = 3
READS = (1, 2, 3)
TENSOR_FILE = "directions.safetensors"
JSON_FILE = "directions.json"
LABEL_STEP = 3.0  # slider value at which effects are measured and reported
KIND_TITLES = {"attribute": "Attributes (InterFaceGAN, conditional)", "pca": "Principal directions (GANSpace)",
               "sefa": "Principal directions (SeFa)", "class": "Towards a class (InterFaceGAN, with the classifier)"}


@dataclass
class Directions:
    """Named sliders: unit directions in z, their scales, per-class vectors and measured effects."""

    names: list[str]
    vectors: torch.Tensor  # (K, z_dim), unit rows: the direction for every class (or the classes' mean)
    labels: list[str]
    descriptions: list[str]
    kinds: list[str]  # "attribute" | "pca" | "sefa" | "class"
    effects: list[dict[str, float]] = field(default_factory=list)  # attribute -> raw change at +LABEL_STEP
    meta: dict = field(default_factory=dict)
    strength: list[float] = field(default_factory=list)  # main attribute's change at +LABEL_STEP, in sd
    scales: torch.Tensor | None = None  # (K,) z units per slider unit; ones for version-1 files
    class_vectors: torch.Tensor | None = None  # (K, C, z_dim) unit rows (zero where not applicable)
    class_scales: torch.Tensor | None = None  # (K, C); 0 where the slider does nothing for that class
    effects_sd: list[dict[str, float]] = field(default_factory=list)  # attribute -> change at +3 in sd
    class_kept: list[float] = field(default_factory=list)  # share of samples whose class survives +3
    class_embedding: torch.Tensor | None = None  # (K, C, z_dim) class-input step per unit of class_scales
    class_info: list[dict] = field(default_factory=list)  # per slider: class name -> its measured effect

    def __post_init__(self) -> None:
        k = self.vectors.shape[0] if self.vectors.dim() == 2 else -1
        lens = {len(self.names), len(self.labels), len(self.descriptions), len(self.kinds)}
        if (self.vectors.dim() != 2 or lens != {k} or (self.effects and len(self.effects) != k)
                or (self.strength and len(self.strength) != k)):
            raise ValueError(f"inconsistent directions: vectors {tuple(self.vectors.shape)}, {len(self.names)} names, "
                             f"{len(self.labels)} labels, {len(self.descriptions)} descriptions, {len(self.kinds)} kinds")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"direction names must be unique, got {self.names}")
        self.effects = self.effects or [{} for _ in self.names]
        self.effects_sd = self.effects_sd or [{} for _ in self.names]
        self.strength = self.strength or [math.nan] * k
        self.class_kept = self.class_kept or [math.nan] * k
        self.scales = torch.ones(k) if self.scales is None else self.scales.float().reshape(k)
        if (self.class_vectors is None) != (self.class_scales is None):
            raise ValueError("class_vectors and class_scales come together")
        if self.class_vectors is not None and (self.class_vectors.dim() != 3 or self.class_vectors.shape[0] != k
                                               or self.class_vectors.shape[2] != self.vectors.shape[1]
                                               or self.class_scales.shape != self.class_vectors.shape[:2]):
            raise ValueError(f"class_vectors {tuple(self.class_vectors.shape)} / class_scales "
                             f"{tuple(self.class_scales.shape)} do not match vectors {tuple(self.vectors.shape)}")
        if self.class_embedding is not None and (self.class_vectors is None
                                                 or self.class_embedding.shape != self.class_vectors.shape):
            raise ValueError(f"class_embedding {tuple(self.class_embedding.shape)} does not match class_vectors")
        self.class_info = self.class_info or [{} for _ in self.names]
        self.index = {n: i for i, n in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    @property
    def z_dim(self) -> int:
        return self.vectors.shape[1]

    def vector(self, name: str) -> torch.Tensor:
        """The unit direction (z_dim,) called name (for per-class sliders: the classes' mean direction)."""
        if name not in self.index:
            raise KeyError(f"unknown direction {name!r}; known: {', '.join(self.names)}")
        return self.vectors[self.index[name]]

    def classes(self, name: str) -> list[int] | None:
        """Class indices the slider acts on; None when it acts the same way for every class."""
        i = self.index[name]
        if self.class_scales is None or not self.per_class(name):
            return None
        return (self.class_scales[i] != 0).nonzero()[:, 0].tolist()

    def per_class(self, name: str) -> bool:
        """True when the slider has its own vector (or scale) per class."""
        return self.class_scales is not None and bool(self.class_scales[self.index[name]].abs().sum() > 0)

    def steps(self, name: str, labels: torch.Tensor | int | None, n: int = 1) -> torch.Tensor:
        """(n, z_dim) offset of one slider unit for each sample's label (a per-class vector and scale)."""
        i = self.index[name]
        if labels is None or not self.per_class(name):
            return (self.scales[i] * self.vectors[i]).expand(n, -1)
        y = torch.as_tensor(labels, dtype=torch.long).reshape(-1).expand(n) if not isinstance(labels, int) \
            else torch.full((n,), labels, dtype=torch.long)
        if int(y.max()) >= self.class_vectors.shape[1] or int(y.min()) < 0:
            raise ValueError(f"labels {y.tolist()[:8]} out of range for {self.class_vectors.shape[1]} classes")
        return self.class_scales[i, y].unsqueeze(1) * self.class_vectors[i, y]


    def embedding_steps(self, name: str, labels: torch.Tensor | int | None, n: int = 1) -> torch.Tensor | None:
        """(n, z_dim) class-input offset of one slider unit for each sample's label; None when it moves z only."""
        i = self.index[name]
        if self.class_embedding is None or labels is None or not self.per_class(name) \
                or not bool(self.class_embedding[i].abs().sum() > 0):
            return None
        y = torch.as_tensor(labels, dtype=torch.long).reshape(-1).expand(n) if not isinstance(labels, int) \
            else torch.full((n,), labels, dtype=torch.long)
        return self.class_scales[i, y].unsqueeze(1) * self.class_embedding[i, y]

    def acts_on(self, name: str, label: int | None) -> bool:
        """Whether slider name does anything for class label (every slider does for an unconditional model)."""
        cls = self.classes(name)
        return cls is None or label is None or int(label) in cls


def apply_edit(z: torch.Tensor, directions: Directions, values: dict[str, float],
               label: torch.Tensor | int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(z', class-input offset or None): apply_directions's z and the sliders' steps of G's class embedding."""
    z2 = apply_directions(z, directions, values, label)
    n = 1 if z.dim() == 1 else z.shape[0]
    emb = None
    for name, v in values.items():
        step = directions.embedding_steps(name, label, n)
        if step is not None:
            emb = (0 if emb is None else emb) + float(v) * step
    if emb is not None and z.dim() == 1:
        emb = emb[0]
    return z2, emb


def apply_directions(z: torch.Tensor, directions: Directions, values: dict[str, float],
                     label: torch.Tensor | int | None = None) -> torch.Tensor:
    """z' = z + sum_name values[name] * step[name](label), for z (z_dim,) or (B, z_dim) and its label(s)."""
    if not values:
        return z.clone()
    unknown = [n for n in values if n not in directions.index]
    if unknown:
        raise KeyError(f"unknown direction(s) {unknown}; known: {', '.join(directions.names)}")
    out = z.clone()
    n = 1 if z.dim() == 1 else z.shape[0]
    for name, v in values.items():
        step = directions.steps(name, label, n)  # (n, z_dim)
        out = out + float(v) * (step[0] if z.dim() == 1 else step)
    return out


def slug(name: str) -> str:
    """A class name as a direction-name fragment: 'T-shirt/top' -> 't_shirt_top'."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "class"


def slider_info(d: Directions, name: str, class_names: list[str]) -> dict:
    """JSON-able description of one slider: what the /directions endpoint returns for it."""
    i = d.index[name]
    cls = d.classes(name)
    r = lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 4)  # noqa: E731
    return {"name": name, "kind": d.kinds[i], "label": d.labels[i], "description": d.descriptions[i],
            "range": list(SLIDER_RANGE), "measured_at": LABEL_STEP,
            "classes": None if cls is None else [class_names[c] if c < len(class_names) else str(c) for c in cls],
            "effects_sd": {a: r(v) for a, v in d.effects_sd[i].items()}, "class_kept": r(d.class_kept[i]),
            "strength_sd": r(d.strength[i]), "per_class": d.class_info[i]}


# ---- files --------------------------------------------------------------------------------------
def save_directions(d: Directions, folder: str | Path) -> Path:
    """Write directions.safetensors and directions.json (format 3) into folder; returns the JSON path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = dict(d.meta)
    gen_file = folder / "generator.safetensors"
    if gen_file.is_file():
        meta["generator_sha256"] = sha256_file(gen_file)
    items = []
    for i, name in enumerate(d.names):
        items.append({"name": name, "kind": d.kinds[i], "label": d.labels[i], "description": d.descriptions[i],
                      "strength_sd": None if math.isnan(d.strength[i]) else d.strength[i],
                      "scale": round(float(d.scales[i]), 6), "per_class": d.per_class(name),
                      "class_kept": None if math.isnan(d.class_kept[i]) else d.class_kept[i],
                      "effects": d.effects[i], "effects_sd": d.effects_sd[i], "per_class_effects": d.class_info[i]})
    doc = {"format_version": FORMAT_VERSION, "z_dim": d.z_dim, "directions": items, "meta": meta}
    tensors = {"directions": d.vectors.float().contiguous().cpu(), "scales": d.scales.float().contiguous().cpu()}
    if d.class_vectors is not None:
        tensors["class_directions"] = d.class_vectors.float().contiguous().cpu()
        tensors["class_scales"] = d.class_scales.float().contiguous().cpu()
    if d.class_embedding is not None:
        tensors["class_embedding"] = d.class_embedding.float().contiguous().cpu()
    with atomic_path(folder / TENSOR_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    return atomic_write_json(folder / JSON_FILE, doc)  # the JSON last: its presence marks a complete pair


def _unreadable(folder: Path, e: BaseException) -> ValueError:
    return ValueError(f"{folder}: {JSON_FILE}/{TENSOR_FILE} are unreadable ({type(e).__name__}: {e}); "
                      f"recompute them with: fashion-gan directions {folder}")


def load_directions(folder: str | Path, *, z_dim: int | None = None) -> Directions | None:
    """Directions stored in a model folder (format 1, 2 or 3); None when it has none (or belong to other weights)."""
    folder = Path(folder)
    jf, tf = folder / JSON_FILE, folder / TENSOR_FILE
    if not jf.is_file() or not tf.is_file():
        return None
    try:
        doc = json.loads(jf.read_text())
        tensors = load_file(str(tf))
        vectors = tensors["directions"].float()
        items, version = doc["directions"], doc.get("format_version")
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as e:
        raise _unreadable(folder, e) from None
    if version not in READS:
        raise ValueError(f"{jf} has format_version {version!r}; this code reads {', '.join(map(str, READS))}")
    if z_dim is not None and vectors.shape[-1] != z_dim:
        raise ValueError(f"{tf} holds directions of size {vectors.shape[-1]} but the model has z_dim={z_dim}; "
                         f"recompute them with: fashion-gan directions {folder}")
    meta = doc.get("meta", {})
    gen_file = folder / "generator.safetensors"
    if meta.get("generator_sha256") and gen_file.is_file() and sha256_file(gen_file) != meta["generator_sha256"]:
        warnings.warn(f"{folder}/{JSON_FILE} was computed for other generator weights; ignoring it "
                      f"(recompute with: fashion-gan directions {folder})")
        return None
    nan = float("nan")
    num = lambda v: nan if v is None else float(v)  # noqa: E731
    try:
        return Directions([it["name"] for it in items], vectors, [it["label"] for it in items],
                          [it["description"] for it in items], [it["kind"] for it in items],
                          [dict(it.get("effects", {})) for it in items], meta,
                          [num(it.get("strength_sd")) for it in items], tensors.get("scales"),
                          tensors.get("class_directions"), tensors.get("class_scales"),
                          [dict(it.get("effects_sd", {})) for it in items],
                          [num(it.get("class_kept")) for it in items], tensors.get("class_embedding"),
                          [dict(it.get("per_class_effects", {})) for it in items])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{jf} does not match {tf.name}: {e}") from None
