"""Garment attributes measured on generated or real images: what the latent sliders are named after.

Every attribute is a documented function of the image alone (B, C, H, W) in [-1, 1], computed on the
grey-level intensity x in [0, 1] (the mean over channels) and the garment's silhouette, the pixels with
x > THRESHOLD (Fashion-MNIST's background is exactly 0). Sizes are fractions of the image side, so
every value is comparable across resolutions.

    from gan.latent.attributes import measure_attributes, ATTRIBUTES
    values = measure_attributes(images)          # {"brightness": (B,), "width": (B,), ...}

Four are defined for every garment (brightness, area, width, height) and two describe its surface
(contrast, texture); four only mean something for some Fashion-MNIST classes and are measured on the
garment's silhouette in the data set's standard pose (upright, centred; shoes in side view, toe left):
sleeve length (tops and coats), leg separation (trousers), heel or shaft height (shoes and boots)
and handle or strap (bags). ``python -m gan.latent attributes`` draws the real test images at each
attribute's extremes (docs/attributes.png) and prints how well each one separates classes whose
labels say which end they belong to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

THRESHOLD = 0.1  # intensity in [0, 1] above which a pixel belongs to the garment
INK = 0.03  # intensity above which a pixel is not background at all (a dark garment's darkest parts)
# The smallest unit a size can be measured in: one pixel of a 28-pixel side. A class whose real images
# all span the full frame (tops are as tall as the image) has a within-class sd below a pixel; the
# unit of that attribute for that class is then one pixel, not a fraction of one.
RESOLUTION_FLOOR = {"width": 1 / 28, "height": 1 / 28, "neckline": 1 / 28}


@dataclass(frozen=True)
class Attribute:
    """One measured attribute: its words for more / less, what is measured, and where it is defined."""

    name: str
    more: str
    less: str
    description: str
    classes: tuple[str, ...] | None = None  # Fashion-MNIST classes it is defined for; None: every class


ATTRIBUTES: dict[str, Attribute] = {a.name: a for a in (
    Attribute("brightness", "brighter", "darker", "mean intensity of the garment's pixels, in [0, 1]"),
    Attribute("area", "larger", "smaller", "fraction of the image the garment covers"),
    Attribute("width", "wider", "narrower", "bounding-box width as a fraction of the image width"),
    Attribute("height", "taller", "shorter", "bounding-box height as a fraction of the image height"),
    Attribute("contrast", "more contrast", "less contrast",
              "standard deviation of the garment's large-scale tones (its intensity averaged over 5x5 pixels)"),
    Attribute("texture", "more pattern", "plainer",
              "pattern / texture energy: mean absolute difference between neighbouring garment pixels"),
    Attribute("sleeve", "longer sleeves", "shorter sleeves",
              "sleeve length: share of the garment's height covered beyond 30% of the image width from its centre",
              ("T-shirt/top", "Pullover", "Coat", "Shirt")),
    Attribute("neckline", "deeper neckline", "closed neckline",
              "neckline depth: background in the top third of the garment's five centre columns, in rows, as a "
              "fraction of its height", ("T-shirt/top", "Dress", "Shirt")),
    Attribute("legs", "legs apart", "legs together",
              "leg separation: gap between the legs in the lower half, as a fraction of the width", ("Trouser",)),
    Attribute("heel", "higher heel / shaft", "flatter",
              "heel or shaft height: how much taller the back quarter is than the toe quarter, as a fraction "
              "of the shoe's height", ("Sandal", "Sneaker", "Ankle boot")),
    Attribute("handle", "bigger handle", "smaller handle",
              "handle or strap: share of the bag's height above its body (rows narrower than 60% of the widest)",
              ("Bag",)),
)}


@dataclass
class Silhouette:
    """Intensity, garment mask and bounding box of a batch, computed once for every attribute."""

    x: torch.Tensor  # (B, H, W) intensity in [0, 1]
    mask: torch.Tensor  # (B, H, W) bool: x > THRESHOLD
    top: torch.Tensor  # (B,) first garment row
    bottom: torch.Tensor  # (B,) last garment row
    left: torch.Tensor  # (B,) first garment column
    right: torch.Tensor  # (B,) last garment column
    height: torch.Tensor  # (B,) rows spanned (0 for an empty image)
    width: torch.Tensor  # (B,) columns spanned
    row_span: torch.Tensor  # (B, H) columns from the leftmost to the rightmost garment pixel of each row


def _first_last(any_: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """First and last True index along dim 1 of (B, N) (0 and N-1 - 0 for an all-False row)."""
    n = any_.size(1)
    return any_.float().argmax(1), n - 1 - any_.flip(1).float().argmax(1)


def _intensity(images: torch.Tensor) -> torch.Tensor:
    """Grey-level intensity (B, H, W) in [0, 1] of images (B, C, H, W) in [-1, 1]."""
    if images.dim() != 4:
        raise ValueError(f"expected images of shape (B, C, H, W), got {tuple(images.shape)}")
    return images.float().add(1).div(2).mean(1).clamp(0, 1)


def silhouette(images: torch.Tensor) -> Silhouette:
    """The Silhouette of images (B, C, H, W) in [-1, 1]."""
    x = _intensity(images.detach())  # (B, H, W)
    B, H, W = x.shape
    m = x > THRESHOLD
    rows, cols = m.any(2), m.any(1)  # (B, H), (B, W)
    top, bottom = _first_last(rows)
    left, right = _first_last(cols)
    nonempty = rows.any(1).float()
    idx = torch.arange(W, dtype=torch.float32).expand(B, H, W)
    row_l = torch.where(m, idx, torch.full_like(idx, W)).amin(2)
    row_r = torch.where(m, idx, torch.full_like(idx, -1)).amax(2)
    return Silhouette(x, m, top, bottom, left, right, (bottom - top + 1).float() * nonempty,
                      (right - left + 1).float() * nonempty, (row_r - row_l + 1).clamp_min(0))


def _per_garment(s: Silhouette, values: torch.Tensor) -> torch.Tensor:
    """Mean of values (B, H, W) over each image's garment pixels (0 for an empty image)."""
    return (values * s.mask).sum((1, 2)) / s.mask.sum((1, 2)).clamp_min(1)


def brightness(s: Silhouette) -> torch.Tensor:
    """Mean intensity of the garment's pixels (B,) in [0, 1]: a dark or a light garment, whatever its size."""
    return _per_garment(s, s.x)


def area(s: Silhouette) -> torch.Tensor:
    """Fraction of the image covered by the garment (B,) in [0, 1]."""
    return s.mask.float().mean((1, 2))


def width(s: Silhouette) -> torch.Tensor:
    """Bounding-box width of the garment as a fraction of the image width (B,)."""
    return s.width / s.x.size(2)


def height(s: Silhouette) -> torch.Tensor:
    """Bounding-box height of the garment as a fraction of the image height (B,)."""
    return s.height / s.x.size(1)


def contrast(s: Silhouette) -> torch.Tensor:
    """Spread of large-scale tones (B,): std over the garment of its intensity averaged over 5x5 garment pixels.

    A two-tone bag or a dark collar on a light shirt is high; a plain garment, or a fine pattern (which
    the averaging removes), is low.
    """
    m = s.mask.float().unsqueeze(1)
    local = F.avg_pool2d(s.x.unsqueeze(1) * m, 5, 1, 2) / F.avg_pool2d(m, 5, 1, 2).clamp_min(1e-3)  # (B, 1, H, W)
    local = local[:, 0]
    mean = _per_garment(s, local)
    var = _per_garment(s, (local - mean[:, None, None]) ** 2)
    return var.clamp_min(1e-12).sqrt() if var.requires_grad else var.sqrt()  # (a finite gradient at 0)


def texture(s: Silhouette) -> torch.Tensor:
    """Pattern or texture energy (B,): mean |difference| of horizontally or vertically adjacent garment pixels.

    Only pairs inside the garment count, so the silhouette's edge adds nothing: stripes, checks and
    prints are high, plain fabric is low.
    """
    m, x = s.mask, s.x
    ph, pv = m[:, :, 1:] & m[:, :, :-1], m[:, 1:] & m[:, :-1]
    diff = ((x[:, :, 1:] - x[:, :, :-1]).abs() * ph).sum((1, 2)) + ((x[:, 1:] - x[:, :-1]).abs() * pv).sum((1, 2))
    return diff / (ph.sum((1, 2)) + pv.sum((1, 2))).clamp_min(1)


def _column_band(s: Silhouette, frac: float, side: str) -> torch.Tensor:
    """(B, W) bool: the outer `frac` of the garment's columns on the 'left' or 'right' side."""
    cols = torch.arange(s.x.size(2), dtype=torch.float32).unsqueeze(0)
    band = (frac * s.width).clamp_min(1).unsqueeze(1)
    if side == "left":
        return (cols >= s.left.unsqueeze(1)) & (cols < s.left.unsqueeze(1) + band)
    return (cols <= s.right.unsqueeze(1)) & (cols > s.right.unsqueeze(1) - band)


def sleeve(s: Silhouette) -> torch.Tensor:
    """Sleeve length (B,) in [0, 1]: mean share of the garment's rows covered beyond 30% of the image width
    from its centre column.

    Tops are shown flat and upright and their torsos are narrower than that band, so what lies in it
    are the sleeves: a T-shirt's cover only the top rows (about 0.3), a pullover's hang down to the hem
    (0.7 and more), and a sleeveless top does not reach the band at all (0).
    """
    W = s.x.size(2)
    cols = torch.arange(W, dtype=torch.float32).unsqueeze(0)
    centre = ((s.left + s.right) / 2).unsqueeze(1)
    outer = ((cols - centre).abs() >= 0.3 * W) & (cols >= s.left.unsqueeze(1)) & (cols <= s.right.unsqueeze(1))
    cover = s.mask.float().sum(1) / s.height.clamp_min(1).unsqueeze(1)  # (B, W) share of rows per column
    return (cover * outer).sum(1) / outer.sum(1).clamp_min(1)


def neckline(s: Silhouette) -> torch.Tensor:
    """Neckline depth (B,): background pixels in the top third of the garment's 5 centre columns, / 5 / its height.

    The mean depth of the opening at the neck, as a share of the garment's height. Flat product photos
    show the back of a crew neck, so a T-shirt's or a shirt's closed neck is about 0; a scoop or V neck,
    a camisole's or a strappy dress's open top, and an off-shoulder top are deep. Background is x <= INK
    here, not the silhouette's threshold, so that a dark garment's dark collar is not read as an opening.
    """
    B, H, W = s.x.shape
    centre = ((s.left + s.right) / 2).round().view(B, 1, 1)
    cols = torch.arange(W, dtype=torch.float32).view(1, 1, W)
    rows = torch.arange(H, dtype=torch.float32).view(1, H, 1)
    box = ((cols - centre).abs() <= 2) & (rows >= s.top.view(B, 1, 1)) \
        & (rows < (s.top + 0.3 * s.height).view(B, 1, 1))
    return (box & (s.x <= INK)).float().sum((1, 2)) / 5 / s.height.clamp_min(1) * (s.height > 0)


def legs(s: Silhouette) -> torch.Tensor:
    """Leg separation (B,): mean background gap inside the garment's rows in its lower half, over its width."""
    H = s.x.size(1)
    rows = torch.arange(H, dtype=torch.float32).unsqueeze(0)
    lower = (rows >= ((s.top + s.bottom) / 2).unsqueeze(1)) & (rows <= s.bottom.unsqueeze(1))  # (B, H)
    gap = (s.row_span - s.mask.float().sum(2)).clamp_min(0) * s.mask.any(2)  # (B, H) holes between the legs
    return (gap * lower).sum(1) / lower.sum(1).clamp_min(1) / s.width.clamp_min(1)


def _band_height(s: Silhouette, band: torch.Tensor) -> torch.Tensor:
    """(B,) rows spanned by the garment within the columns of band (B, W)."""
    rows = (s.mask & band.unsqueeze(1)).any(2)  # (B, H)
    top, bottom = _first_last(rows)
    return (bottom - top + 1).float() * rows.any(1)


def heel(s: Silhouette) -> torch.Tensor:
    """Heel or shaft height (B,): (height of the back quarter - height of the toe quarter) / the shoe's height.

    Fashion-MNIST shows shoes in side view with the toe on the left: a flat sandal or a sneaker is
    low, a high heel or an ankle boot's shaft makes the back much taller than the toe.
    """
    back, toe = _band_height(s, _column_band(s, 0.25, "right")), _band_height(s, _column_band(s, 0.25, "left"))
    return (back - toe) / s.height.clamp_min(1)


def handle(s: Silhouette) -> torch.Tensor:
    """Handle or strap (B,): share of the bag's height above its body, the first row >= 60% of the widest row."""
    span = s.row_span * s.mask.any(2)  # (B, H)
    body = span >= 0.6 * span.amax(1, keepdim=True).clamp_min(1)
    return (body.float().argmax(1) - s.top).clamp_min(0).float() / s.height.clamp_min(1)


MEASURES = {"brightness": brightness, "area": area, "width": width, "height": height, "contrast": contrast,
            "texture": texture, "sleeve": sleeve, "legs": legs, "heel": heel, "handle": handle,
            "neckline": neckline}


@torch.no_grad()
def measure_attributes(images: torch.Tensor, names: list[str] | None = None, *, chunk: int = 4096
                       ) -> dict[str, torch.Tensor]:
    """Attributes {name: (B,)} of images (B, C, H, W) in [-1, 1]; every attribute unless names are given."""
    names = list(MEASURES) if names is None else names
    unknown = [n for n in names if n not in MEASURES]
    if unknown:
        raise ValueError(f"unknown attribute(s) {unknown}; known: {', '.join(MEASURES)}")
    parts: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    for x in images.split(chunk):
        s = silhouette(x)
        for n in names:
            parts[n].append(MEASURES[n](s))
    return {n: torch.cat(v) if v else torch.zeros(0) for n, v in parts.items()}


SURFACE = ("brightness", "contrast", "texture")  # the attributes that are smooth functions of the pixels


def surface_attributes(images: torch.Tensor) -> torch.Tensor:
    """(B, 3) brightness, contrast and texture of images (B, C, H, W) in [-1, 1], as measure_attributes measures
    them, differentiable in the pixels (the garment's mask held where it is)."""
    x = _intensity(images)
    s = Silhouette(x, x.detach() > THRESHOLD, *[None] * 7)  # type: ignore[arg-type]  # (they read x and mask alone)
    return torch.stack([MEASURES[n](s) for n in SURFACE], 1)


def applicable_classes(name: str, class_names: list[str]) -> list[int]:
    """Indices of the classes (of a model with class_names) for which attribute name is defined."""
    classes = ATTRIBUTES[name].classes
    return list(range(len(class_names))) if classes is None else [i for i, c in enumerate(class_names) if c in classes]


@dataclass
class Reference:
    """Spread of every attribute among real images: the unit ("1 sd") every slider effect is given in."""

    sd: dict[str, float]  # pooled within-class standard deviation over the classes the attribute is defined for
    class_sd: dict[str, list[float]]  # per class (nan where not defined)
    class_mean: dict[str, list[float]]
    source: str

    def unit(self, name: str, c: int | None = None) -> float:
        """1 sd of attribute name for class c (its real images' sd, at least RESOLUTION_FLOOR); pooled for None."""
        per = self.class_sd.get(name)
        v = per[c] if c is not None and per is not None and c < len(per) else math.nan
        v = self.sd[name] if math.isnan(v) else v
        return max(v, RESOLUTION_FLOOR.get(name, 0.0), 1e-6)

    def units(self, name: str, y: torch.Tensor | None, n: int) -> torch.Tensor:
        """(n,) per-sample units of attribute name for labels y (the pooled sd for every sample when y is None)."""
        if y is None or name not in self.class_sd:
            return torch.full((n,), self.unit(name))
        table = torch.tensor([self.unit(name, c) for c in range(len(self.class_sd[name]))])
        return table[y.long().clamp(0, len(table) - 1)]

    @classmethod
    def from_dict(cls, d: dict) -> "Reference":
        """The inverse of to_dict (directions.json's meta["reference"])."""
        return cls(sd={k: float(v) for k, v in d["sd"].items()},
                   class_sd={k: [float(x) for x in v] for k, v in (d.get("class_sd") or {}).items()},
                   class_mean={k: [float(x) for x in v] for k, v in (d.get("class_mean") or {}).items()},
                   source=str(d.get("source", "")))

    def to_dict(self) -> dict:
        """JSON-able form (stored in directions.json)."""
        r = lambda v: round(float(v), 5)  # noqa: E731
        return {"source": self.source, "sd": {k: r(v) for k, v in self.sd.items()},
                "class_sd": {k: [r(x) for x in v] for k, v in self.class_sd.items()},
                "class_mean": {k: [r(x) for x in v] for k, v in self.class_mean.items()}}


def reference(images: torch.Tensor, labels: torch.Tensor | None, class_names: list[str], source: str) -> Reference:
    """Attribute spreads of real images (B, C, H, W) in [-1, 1] with labels (B,) (None: one class)."""
    values = measure_attributes(images)
    labels = torch.zeros(len(images), dtype=torch.long) if labels is None else labels.long()
    n_cls = max(len(class_names), 1)
    sd, class_sd, class_mean = {}, {}, {}
    for name, v in values.items():
        classes = applicable_classes(name, class_names) if class_names else [0]
        if not classes:
            continue
        stats = [(v[labels == c].double(), c) for c in classes]
        ss = sum(float(((x - x.mean()) ** 2).sum()) for x, _ in stats if len(x) > 1)
        n = sum(len(x) for x, _ in stats)
        sd[name] = max((ss / max(n - len(stats), 1)) ** 0.5, 1e-6)
        class_sd[name] = [float("nan")] * n_cls
        class_mean[name] = [float("nan")] * n_cls
        for x, c in stats:
            if len(x) > 1:
                class_sd[name][c], class_mean[name][c] = float(x.std()), float(x.mean())
    return Reference(sd, class_sd, class_mean, source)


def fashion_reference(data_dir: str | Path | None = None) -> Reference:
    """The Reference of the 10,000 real Fashion-MNIST test images (the unit of every slider effect)."""
    from ..data import FASHION_MNIST_CLASSES, load_dataset, to_float
    test = load_dataset("fashion-mnist", split="test", data_dir=data_dir)
    return reference(to_float(test.images), test.labels, list(FASHION_MNIST_CLASSES), "Fashion-MNIST test images")


# ---- validation on real images --------------------------------------------------------------------
# classes whose labels say which end of an attribute they belong to: (attribute, low classes, high classes)
CLASS_CHECKS = (("sleeve", ("T-shirt/top",), ("Pullover", "Coat")),
                ("neckline", ("Pullover", "Coat"), ("T-shirt/top", "Dress", "Shirt")),
                ("heel", ("Sneaker",), ("Ankle boot",)),
                ("width", ("Trouser",), ("Pullover", "Coat")),
                ("height", ("Sneaker",), ("Ankle boot",)))


def class_auc(values: torch.Tensor, labels: torch.Tensor, class_names: list[str], low: tuple[str, ...],
              high: tuple[str, ...]) -> float:
    """ROC AUC of an attribute separating images of the `high` classes from those of the `low` classes."""
    from torchmetrics.functional.classification import binary_auroc
    lo = torch.isin(labels, torch.tensor([class_names.index(c) for c in low]))
    hi = torch.isin(labels, torch.tensor([class_names.index(c) for c in high]))
    sel = lo | hi
    return float(binary_auroc(values[sel].float(), hi[sel].long()))


def extremes_figure(images: torch.Tensor, labels: torch.Tensor, class_names: list[str], path: str | Path, *,
                    k: int = 8, scale: int = 2) -> Path:
    """A PNG with one row per attribute: the k lowest and the k highest real images (among its classes)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    values = measure_attributes(images)
    pix = images.float().add(1).div(2).mean(1).numpy()  # (B, H, W) in [0, 1]
    fig, axes = plt.subplots(len(values), 1, figsize=(2 * k * 0.62 + 1.6, len(values) * 0.78 + 0.3))
    for ax, (name, v) in zip(axes, values.items()):
        idx = torch.isin(labels, torch.tensor(applicable_classes(name, class_names))).nonzero()[:, 0]
        order = idx[v[idx].argsort()]
        lo, hi = order[:k], order.flip(0)[:k].flip(0)
        gap = np.full((pix.shape[1], 6), 0.5)
        ax.imshow(np.concatenate([*pix[lo], gap, *pix[hi]], axis=1), cmap="gray", vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        a = ATTRIBUTES[name]
        where = "" if a.classes is None else f" ({', '.join(a.classes)})"
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
        ax.set_title(f"← {a.less}   |   {a.more} →{where}", fontsize=7, pad=2)
    fig.tight_layout(pad=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100 * scale // 2)
    plt.close(fig)
    return path
