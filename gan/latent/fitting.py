"""How the sliders are found: GANSpace, SeFa and InterFaceGAN conditional boundaries, per class, scaled.

* **Attribute sliders** (InterFaceGAN, Shen et al. 2020): for every attribute of gan.latent.attributes
  and every class it applies to, the least-squares boundary normal n_a of the attribute (in sd of that
  class's real images) is turned into a *conditional* direction: the unit w that moves the attribute
  most while every other attribute's normal n_b moves at most rho_b times as much and the classifier's
  probability of the class does not drop (w . n_p >= m). rho_b starts at 0.35 and is tightened for the
  attribute that measurably leaks, m is raised when the class measurably flips, until the direction
  passes on a tuning batch or gives up. The chosen direction is then measured again on a separate check
  batch, and only that decides (Goals: effects.CHECK with a margin). The fit runs in z first; where no
  direction in z passes for a class, in z and G's class input together (gan.latent.space). With rho = 0
  this is InterFaceGAN's projection of the other normals; the cone keeps some of the attribute's
  strength that the hard projection throws away.
* **Principal directions**: GANSpace (Härkönen et al. 2020: PCA of the first layer's activations,
  centred per class, mapped back to z by least squares) and SeFa (Shen & Zhou 2021: the top
  eigenvectors of A^T A for G's first linear map A, Generator.latent_weight). Each is labelled by the
  attribute it moves most; one that repeats a kept slider (an earlier principal direction with the same
  main attribute, |cos| >= 0.8 between the vectors, or effect profiles with cosine >= MERGE_COSINE) is
  merged into it, and one that changes most samples' class is hidden: neither is shown, both are
  listed in meta["skipped"].
* **Scale**: every slider is scaled so that +3 moves its attribute by TARGET_SD sd of real images, so the
  slider's ends (+/-5) move it by about 2 sd.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from ..classifier import metric_classifier
from .attributes import ATTRIBUTES, Reference, applicable_classes, fashion_reference
from .directions import LABEL_STEP, Directions
from .effects import CHECK, Measured, ShiftEffect, compare, measure_batch
from .principal import gan_space, sefa
from .sampling import generator_of
from .boundaries import boundary_normal, constrained_direction
from .space import InputSpace

TARGET_SD = 1.35  # change of a slider's own attribute at +LABEL_STEP, in sd of real images
MIN_CLASS_SPREAD = 0.5  # fit a shared attribute for a class whose real images spread >= this x the pooled sd
MERGE_COSINE = 0.8
MIN_PRINCIPAL_KEPT = 0.5  # a principal direction that changes most samples' class is hidden
MAX_STEP_SCALE = 3.0  # z units per slider unit, at most
SHRINK_TO = 1.1  # a direction that loses only the class is tried once more, scaled to move its attribute this much


@dataclass(frozen=True)
class Goals:
    """When a class is kept on a slider, judged on the check batch: effects.CHECK with a small margin, so that
    it also holds on seeds the fit never saw (the benchmark's)."""

    own: float = CHECK.own
    leak: float = 0.9 * CHECK.leak
    kept: float = CHECK.kept + 0.02  # per class
    kept_all: float = CHECK.kept + 0.02  # over all of a slider's classes; the worst are dropped until it holds


@dataclass
class _Fit:
    """Everything the fitting steps share: the generator, samples, their measurements and the reference."""

    G: nn.Module
    clf: nn.Module | None
    ref: Reference
    class_names: list[str]  # the model's classes ([] for an unconditional model)
    z: torch.Tensor  # (N, z_dim) fitting latents
    y: torch.Tensor | None  # (N,) their labels (balanced)
    fit: Measured
    zt: torch.Tensor  # (M, z_dim) tuning latents, shared by every class
    za: torch.Tensor  # (M * C, z_dim) tuning latents for directions that act on every class
    zv: torch.Tensor  # (V, z_dim) check latents: a direction chosen on zt is accepted or not on these
    goals: Goals = field(default_factory=Goals)
    iters: int = 6  # tightening rounds per class
    tune: dict = field(default_factory=dict)  # class (or None) -> Measured of zt
    check: dict = field(default_factory=dict)  # class (or None) -> Measured of zv
    space: InputSpace | None = None  # None: z alone, G itself
    spaces: tuple[str, ...] = ("z", "z+class")  # tried in this order for every class
    wider: dict = field(default_factory=dict)  # class -> the _Fit of that class in the z+class space
    class_samples: int = 0  # samples of a class for its z+class fit (0: as many as the z fit has per class)
    seed: int = 0

    def labels(self, c: int | str | None, n: int | None = None) -> torch.Tensor | None:
        """Labels of the tuning batch (or n samples) for class c; "all" cycles through the classes; None:
        unconditional."""
        if c is None or (c == "all" and not self.class_names):
            return None
        if c == "all":
            return torch.arange(len(self.za)) % len(self.class_names)
        return torch.full((n or len(self.zt),), c, dtype=torch.long)

    def latents(self, c: int | str | None) -> torch.Tensor:
        return self.za if c == "all" else self.zt

    def base(self, c: int | str | None) -> Measured:
        if c not in self.tune:
            self.tune[c] = measure_batch(self.G, self.latents(c), self.labels(c), self.clf)
        return self.tune[c]

    def effect(self, c: int | str | None, offset: torch.Tensor) -> ShiftEffect:
        """Effect of moving the tuning latents of class c by offset (z_dim,) or (M, z_dim)."""
        moved = measure_batch(self.G, self.latents(c) + offset, self.labels(c), self.clf)
        return compare(self.base(c), moved, self.labels(c), self.ref, self.class_names)

    def checked(self, c: int | None, offset: torch.Tensor) -> ShiftEffect:
        """Effect of the same move on the check latents of class c (never used to choose the direction)."""
        y = self.labels(c, len(self.zv))
        if c not in self.check:
            self.check[c] = measure_batch(self.G, self.zv, y, self.clf)
        moved = measure_batch(self.G, self.zv + offset, y, self.clf)
        return compare(self.check[c], moved, y, self.ref, self.class_names)


@dataclass
class ClassFit:
    """A slider's direction for one class, its scale and what it does on the tuning batch."""

    vector: torch.Tensor
    scale: float
    effect: ShiftEffect
    own: float
    leak: tuple[float, str]  # (largest |other| / own, which)
    passed: bool


def _judge(a: str, w: torch.Tensor, s: float, eff: ShiftEffect, goals: Goals) -> ClassFit:
    own = eff.sd.get(a, 0.0)
    leaks = [(abs(v) / max(own, 1e-6), b) for b, v in eff.sd.items() if b != a]
    leak = max(leaks) if leaks else (0.0, "-")
    kept = 1.0 if math.isnan(eff.class_kept) else eff.class_kept
    ok = own >= goals.own and leak[0] <= goals.leak and kept >= goals.kept
    return ClassFit(w, s, eff, own, leak, ok)


def _scaled(F_: _Fit, a: str, c: int | None, w: torch.Tensor, per_unit: float) -> ClassFit:
    """Scale w so that +LABEL_STEP moves attribute a by TARGET_SD on the tuning batch (two measurements)."""
    s = min(TARGET_SD / LABEL_STEP / max(per_unit, 1e-3), MAX_STEP_SCALE)
    eff = F_.effect(c, LABEL_STEP * s * w)
    own = eff.sd.get(a, 0.0)
    if own > 0.2:
        s = min(s * TARGET_SD / own, MAX_STEP_SCALE)
        eff = F_.effect(c, LABEL_STEP * s * w)
    return _judge(a, w, s, eff, F_.goals)


def fit_class(F_: _Fit, a: str, c: int | None, attrs: list[str]) -> ClassFit | None:
    """The conditional direction of attribute a for class c (None: all samples), tightened by measurement."""
    sel = slice(None) if c is None else F_.y == c
    zc = F_.z[sel]
    normals = {b: boundary_normal(zc, F_.fit.attrs[b][sel] / F_.ref.unit(b, c)) for b in attrs}
    margin = None
    if F_.fit.logits is not None and c is not None:  # the classifier's probability of the class: it changes
        p = torch.softmax(F_.fit.logits[sel], 1)[:, c]  # most for the samples near a class boundary
        margin = boundary_normal(zc, p / p.std().clamp_min(1e-6))
    rho = {b: 0.35 for b in attrs if b != a}
    keep_min, best = 0.0, None
    g = F_.goals
    for _ in range(F_.iters):
        w = constrained_direction(normals[a], [(normals[b], r) for b, r in rho.items()], margin, keep_min)
        if w is None:
            break
        fit = _scaled(F_, a, c, w, float(w @ normals[a]))
        kept = 1.0 if math.isnan(fit.effect.class_kept) else fit.effect.class_kept
        score = (fit.own >= g.own) + (fit.leak[0] <= g.leak) + (kept >= g.kept) + kept - fit.leak[0]
        if best is None or score > best[0]:
            best = (score, fit)
        if fit.own >= g.own and fit.leak[0] <= 0.8 * g.leak and kept >= g.kept_all:
            break
        if fit.leak[0] > 0.8 * g.leak and fit.leak[1] in rho:
            rho[fit.leak[1]] *= 0.4
        if kept < g.kept_all and margin is not None:
            keep_min = 2 * keep_min + 0.1 if keep_min > 0 else 0.1
    return None if best is None else best[1]


def eligible_classes(F_: _Fit, a: str) -> list[int | None]:
    """Classes to fit attribute a for: where it is defined and real images of the class vary in it."""
    if not F_.class_names:
        return [None] if ATTRIBUTES[a].classes is None else []
    out = []
    for c in applicable_classes(a, F_.class_names):
        spread = F_.ref.class_sd.get(a, [math.nan] * (c + 1))[c]
        if ATTRIBUTES[a].classes is not None or math.isnan(spread) or spread >= MIN_CLASS_SPREAD * F_.ref.sd[a]:
            out.append(c)
    return out


@dataclass
class _Slider:
    """One fitted slider before it becomes a row of Directions."""

    name: str
    kind: str
    vector: torch.Tensor  # (z_dim,) unit
    scale: float
    effect: ShiftEffect
    main: str  # the attribute it is named / labelled after
    description: str
    class_vectors: torch.Tensor | None = None  # (C, z_dim)
    class_scales: torch.Tensor | None = None  # (C,)
    class_embedding: torch.Tensor | None = None  # (C, z_dim) class-input step per slider unit / scale
    per_class: dict = field(default_factory=dict)  # class name -> own, largest other, class kept, space


def _mean_effect(effects: list[ShiftEffect]) -> ShiftEffect:
    """Average of per-class effects with equal sample counts (an attribute over the classes that measure it)."""
    keys = {a for e in effects for a in e.sd}
    sd = {a: float(np.mean([e.sd[a] for e in effects if a in e.sd])) for a in keys}
    raw = {a: float(np.mean([e.raw[a] for e in effects if a in e.raw])) for a in keys}
    kept = [e.class_kept for e in effects if not math.isnan(e.class_kept)]
    return ShiftEffect(sd, raw, float(np.mean(kept)) if kept else math.nan, sum(e.n for e in effects))


def _class_input_fit(F_: _Fit, c: int) -> _Fit:
    """The fit of class c in z and G's class input: the class's own samples, each with a random embedding offset."""
    if c not in F_.wider:
        S = InputSpace(F_.G, with_embedding=True)
        gen = torch.Generator().manual_seed(int(F_.seed) * 1000 + 101 + c)
        n = F_.class_samples or max(len(F_.z) // max(len(F_.class_names), 1), 256)
        u, y = torch.randn(n, S.dim, generator=gen), torch.full((n,), c, dtype=torch.long)
        F_.wider[c] = _Fit(S, F_.clf, F_.ref, F_.class_names, u, y, measure_batch(S, u, y, F_.clf), S.pad(F_.zt),
                           S.pad(F_.za), S.pad(F_.zv), F_.goals, F_.iters, F_.tune, F_.check, S, F_.spaces,
                           seed=F_.seed, class_samples=F_.class_samples)
    return F_.wider[c]


@dataclass
class _Kept:
    """A class's accepted direction: the fit, its z step and class-input step (unit-free), and the space."""

    fit: ClassFit
    dz: torch.Tensor
    de: torch.Tensor | None
    space: str


def _fit_in_spaces(F_: _Fit, a: str, c: int | None, attrs: list[str]) -> tuple[_Kept | None, str]:
    """The first space (z, then z with the class input) whose direction for (a, c) passes; else why none did."""
    tried = []
    for sp in F_.spaces:
        if sp == "z+class" and (c is None or not F_.class_names):
            continue
        Fs = F_ if sp == "z" else _class_input_fit(F_, c)
        fit = fit_class(Fs, a, c, attrs)
        if fit is None:
            tried.append(f"{sp}: none moves it without moving the others")
            continue
        fit = _judge(a, fit.vector, fit.scale, Fs.checked(c, LABEL_STEP * fit.scale * fit.vector), F_.goals)
        kept = fit.effect.class_kept
        if not fit.passed and fit.leak[0] <= F_.goals.leak and kept < F_.goals.kept and fit.own > SHRINK_TO:
            s = fit.scale * SHRINK_TO / fit.own  # only the class is lost: a shorter step changes fewer classes
            fit = _judge(a, fit.vector, s, Fs.checked(c, LABEL_STEP * s * fit.vector), F_.goals)
        if fit.passed:
            dz, de = Fs.space.split(fit.vector) if Fs.space is not None else (fit.vector, None)
            return _Kept(fit, dz, de, sp), ""
        kept = fit.effect.class_kept
        what = (f"{fit.leak[1]} {fit.leak[0]:.2f}x as much" if fit.own > 0 else
                f"{fit.leak[1]} {fit.effect.sd.get(fit.leak[1], 0.0):+.2f} sd: the fit does not hold")
        tried.append(f"{sp}: {fit.own:+.2f} sd, {what}" + ("" if math.isnan(kept) else f", class kept {kept:.0%}"))
    cname = "all samples" if c is None else F_.class_names[c]
    return None, f"{a} for {cname}: best directions " + "; ".join(tried)


def attribute_slider(F_: _Fit, a: str) -> tuple[_Slider | None, list[str]]:
    """The per-class conditional slider of attribute a, with notes on the classes left out and why."""
    notes, fits = [], {}
    attrs_of = lambda c: [b for b in F_.ref.sd if c is None and ATTRIBUTES[b].classes is None  # noqa: E731
                          or c is not None and c in applicable_classes(b, F_.class_names)]
    for c in eligible_classes(F_, a):
        kept, why = _fit_in_spaces(F_, a, c, attrs_of(c))
        if kept is None:
            notes.append(why)
        else:
            fits[c] = kept
    while fits and F_.clf is not None:  # the slider as a whole keeps the class often enough, even for one class
        kept = _mean_effect([k.fit.effect for k in fits.values()]).class_kept
        if math.isnan(kept) or kept >= F_.goals.kept_all:
            break
        worst = min(fits, key=lambda c: fits[c].fit.effect.class_kept)
        notes.append(f"{a} for {F_.class_names[worst]}: dropped to keep the class for "
                     f"{F_.goals.kept_all:.0%} of samples (alone {fits.pop(worst).fit.effect.class_kept:.0%})")
    if not fits:
        return None, notes
    eff = _mean_effect([k.fit.effect for k in fits.values()])
    mean = torch.stack([k.dz for k in fits.values()]).mean(0)
    vector = mean / mean.norm().clamp_min(1e-12)
    cv = cs = ce = None
    scale = float(np.mean([k.fit.scale for k in fits.values()]))
    per_class = {}
    if F_.class_names:
        z_dim = F_.z.size(1) if F_.space is None else F_.space.z_dim
        cv, cs, ce = torch.zeros(len(F_.class_names), z_dim), torch.zeros(len(F_.class_names)), None
        for c, k in fits.items():
            cv[c], cs[c] = k.dz, k.fit.scale
            if k.de is not None:
                ce = torch.zeros_like(cv) if ce is None else ce
                ce[c] = k.de
            e = k.fit.effect
            per_class[F_.class_names[c]] = {"own_sd": round(k.fit.own, 3), "largest_other": [k.fit.leak[1], round(
                float(e.sd.get(k.fit.leak[1], 0.0)), 3)], "class_kept": round(e.class_kept, 3), "space": k.space}
    where = "every class" if None in fits else ", ".join(F_.class_names[c] for c in fits)
    spaces = sorted({k.space for k in fits.values()})
    desc = (f"InterFaceGAN conditional boundary for {a} ({ATTRIBUTES[a].description}), fitted per class in "
            f"{' or '.join(spaces)}: the other attributes may move at most a third as much and the classifier's "
            f"margin for the class may not drop. Acts on: {where}.")
    return _Slider(a, "attribute", vector, scale, eff, a, desc, cv, cs, ce, per_class), notes


def _profile(e: ShiftEffect, keys: list[str]) -> torch.Tensor:
    return torch.tensor([e.sd.get(k, 0.0) for k in keys])


def principal_sliders(F_: _Fit, candidates: list[tuple[str, str, torch.Tensor, str]], kept: list[_Slider]
                      ) -> tuple[list[_Slider], list[str]]:
    """Label, orient and scale principal directions; merge those that repeat a kept slider."""
    out, notes = [], []
    keys = list(F_.ref.sd)
    for name, kind, v, what in candidates:
        eff = F_.effect("all", LABEL_STEP * v)
        if not eff.sd:
            continue
        main = max(eff.sd, key=lambda a: abs(eff.sd[a]))
        sign = 1.0 if eff.sd[main] >= 0 else -1.0
        v = sign * v
        scale = min(max(TARGET_SD / max(abs(eff.sd[main]), 1e-3), 0.5), MAX_STEP_SCALE)
        eff = F_.effect("all", LABEL_STEP * scale * v)
        main = max(eff.sd, key=lambda a: abs(eff.sd[a]))  # what it moves most at its final scale
        if eff.sd[main] < 0:  # orient so that + increases it, and measure that way round
            v = -v
            eff = F_.effect("all", LABEL_STEP * scale * v)
            if eff.sd.get(main, 0.0) <= 0:
                notes.append(f"{name}: hidden: {main} falls at both +3 and -3 (no consistent effect)")
                continue
        if abs(eff.sd.get(main, 0.0)) < 0.3:
            notes.append(f"{name}: no measurable effect ({eff.sd.get(main, 0.0):+.2f} sd {main} at +{LABEL_STEP:g})")
            continue
        if not math.isnan(eff.class_kept) and eff.class_kept < MIN_PRINCIPAL_KEPT:
            notes.append(f"{name}: hidden: it changes the class of {1 - eff.class_kept:.0%} of samples at +3")
            continue
        prof = _profile(eff, keys)
        twin = next((s for s in kept + out if (s.kind != "attribute" and s.main == main)
                     or abs(float(v @ s.vector)) >= 0.8 or float(torch.nn.functional.cosine_similarity(
                         prof, _profile(s.effect, keys), dim=0)) >= MERGE_COSINE), None)
        if twin is not None:
            notes.append(f"{name}: merged into {twin.name} (it repeats its effect)")
            continue
        out.append(_Slider(name, kind, v, scale, eff, main, what))
    return out, notes


def _label(s: _Slider) -> str:
    a = ATTRIBUTES[s.main]
    own = s.effect.sd.get(s.main, 0.0)
    what = "" if s.name == s.main else f" {s.main}"
    return f"{s.name}: {a.more} / {a.less} ({own:+.2f} sd{what} at +{LABEL_STEP:g})"


def _description(s: _Slider) -> str:
    top = sorted(s.effect.sd, key=lambda a: -abs(s.effect.sd[a]))[:4]
    kept = "" if math.isnan(s.effect.class_kept) else f"; class kept for {s.effect.class_kept:.0%}"
    return (f"{s.description} Measured at +{LABEL_STEP:g} on {s.effect.n} samples, in sd of real images: "
            + ", ".join(f"{a} {s.effect.sd[a]:+.2f}" for a in top) + kept + ".")


def model_reference(model: nn.Module, fit: Measured, y: torch.Tensor | None, class_names: list[str]) -> Reference:
    """Real Fashion-MNIST test images for a Fashion-MNIST model, else the generated samples themselves."""
    from ..data import FASHION_MNIST_CLASSES, DataError
    G = generator_of(model)
    if getattr(model, "dataset", None) == "fashion-mnist" and G.cfg.resolution == 28 and G.cfg.channels == 1 \
            and (not class_names or class_names == list(FASHION_MNIST_CLASSES)):
        try:
            return fashion_reference()
        except DataError:
            pass
    names = class_names or []
    ref = Reference({}, {}, {}, "generated samples (no real images of this data set were found)")
    labels = torch.zeros(len(next(iter(fit.attrs.values()))), dtype=torch.long) if y is None else y
    for a, v in fit.attrs.items():
        cls = applicable_classes(a, names) if names else ([0] if ATTRIBUTES[a].classes is None else [])
        sel = torch.isin(labels, torch.tensor(cls, dtype=torch.long))
        if sel.sum() > 2 and float(v[sel].std()) > 1e-6:
            ref.sd[a] = float(v[sel].std())
    return ref


def compute_directions(model: nn.Module, *, n: int = 20000, k: int = 8, seed: int = 0, n_tune: int = 192,
                       n_check: int = 512,
                       classifier: nn.Module | None | str = "auto", attributes: list[str] | None = None,
                       goals: Goals = Goals(), iters: int = 6, spaces: tuple[str, ...] = ("z", "z+class"),
                       class_samples: int = 0, verbose: bool = False) -> Directions:
    """Attribute sliders (per-class conditional InterFaceGAN) plus GANSpace and SeFa directions, scaled and labelled.

    ``attributes`` limits the attributes fitted and measured (default: all of gan.latent.attributes);
    ``class_samples``: samples of a class for its fit in z and G's class input (0: n / number of classes).
    """
    t0 = time.time()
    G = generator_of(model)
    if n < max(2 * k, 64):
        raise ValueError(f"n={n} is too small; use at least {max(2 * k, 64)} samples")
    if n_tune < 8 or n_check < 8:
        raise ValueError(f"n_tune={n_tune}, n_check={n_check}: use at least 8 samples per class for each")
    C = G.cfg.num_classes
    clf = metric_classifier(model) if classifier == "auto" else classifier
    class_names = list(getattr(model, "class_names", [str(i) for i in range(C)]))[:C] if C else []
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.randn(n, G.cfg.z_dim, generator=gen)
    y = torch.arange(n) % C if C else None
    zt = torch.randn(n_tune, G.cfg.z_dim, generator=gen)
    za = torch.randn(n_tune * max(C, 1), G.cfg.z_dim, generator=gen)
    zv = torch.randn(n_check, G.cfg.z_dim, generator=gen)  # accepting needs less noise than tuning
    fit = measure_batch(G, z, y, clf)
    ref = model_reference(model, fit, y, class_names)
    unknown = sorted(set(spaces) - {"z", "z+class"})
    if unknown or not spaces:
        raise ValueError(f"unknown space(s) {unknown or list(spaces)}; use 'z' and/or 'z+class'")
    F_ = _Fit(G, clf, ref, class_names, z, y, fit, zt, za, zv, goals, iters, spaces=tuple(spaces), seed=int(seed),
              class_samples=int(class_samples))
    log = (lambda m: print(f"[{time.time() - t0:6.1f} s] {m}", flush=True)) if verbose else (lambda m: None)
    log(f"measured {n} samples; reference: {ref.source}")
    sliders, notes = [], []
    unknown = sorted(set(attributes or []) - set(ATTRIBUTES))
    if unknown:
        raise ValueError(f"unknown attribute(s) {unknown}; known: {', '.join(ATTRIBUTES)}")
    if attributes:  # fit and measure only these
        ref.sd = {a: v for a, v in ref.sd.items() if a in attributes}
    for a in [a for a in ATTRIBUTES if a in ref.sd]:
        s, why = attribute_slider(F_, a)
        notes += why
        if s is not None:
            sliders.append(s)
        log(f"{a}: " + (f"{len(s.class_scales.nonzero()) if s.class_scales is not None else 'all'} class(es)"
                        if s else "not kept"))
    k = min(k, G.cfg.z_dim)
    pcs, ratios = gan_space(G, z, y, k, seed)
    sf, shares = sefa(G, k)
    candidates = [(f"PC{i + 1}", "pca", pcs[i], f"GANSpace principal component {i + 1} of the first-layer activations "
                   f"({float(ratios[i]) * 100:.1f}% of their variance).") for i in range(k)]
    candidates += [(f"SeFa{i + 1}", "sefa", sf[i], f"SeFa eigenvector {i + 1} of G's first linear map "
                    f"({float(shares[i]) * 100:.1f}% of its energy).") for i in range(k)]
    principal, why = principal_sliders(F_, candidates, sliders)
    notes += why
    sliders += principal
    log(f"principal directions: kept {', '.join(s.name for s in principal) or 'none'}")
    meta = {"n": n, "n_tune": n_tune, "n_check": n_check, "class_samples": F_.class_samples or n // max(C, 1),
            "k": k, "seed": seed, "label_step": LABEL_STEP,
            "target_sd": TARGET_SD,
            "goals": {"own_sd": goals.own, "leak_ratio": goals.leak, "class_kept": goals.kept},
            "spaces": list(spaces), "unit": "sd of the real images of each sample's class (at least one pixel "
                                            "for width and height)",
            "classifier": clf is not None, "reference": ref.to_dict(), "class_names": class_names,
            "explained_variance": [round(float(r), 5) for r in ratios], "skipped": notes,
            "attributes": {a: ATTRIBUTES[a].description for a in ref.sd},
            "compute_time_s": round(time.time() - t0, 2), "torch_version": torch.__version__}
    return _directions(sliders, meta, G.cfg.z_dim, C)


def _directions(sliders: list[_Slider], meta: dict, z_dim: int, C: int) -> Directions:
    if not sliders:
        return Directions([], torch.zeros(0, z_dim), [], [], [], meta=meta)
    per_class = C > 0 and any(s.class_vectors is not None for s in sliders)
    cv = torch.zeros(len(sliders), C, z_dim) if per_class else None
    cs = torch.zeros(len(sliders), C) if per_class else None
    ce = torch.zeros(len(sliders), C, z_dim) if any(s.class_embedding is not None for s in sliders) else None
    for i, s in enumerate(sliders):
        if per_class and s.class_vectors is not None:
            cv[i], cs[i] = s.class_vectors, s.class_scales
        if ce is not None and s.class_embedding is not None:
            ce[i] = s.class_embedding
    return Directions([s.name for s in sliders], torch.stack([s.vector for s in sliders]),
                      [_label(s) for s in sliders], [_description(s) for s in sliders], [s.kind for s in sliders],
                      [{a: round(v, 5) for a, v in s.effect.raw.items()} for s in sliders], meta,
                      [round(s.effect.sd.get(s.main, math.nan), 4) for s in sliders],
                      torch.tensor([s.scale for s in sliders]), cv, cs,
                      [{a: round(v, 4) for a, v in s.effect.sd.items()} for s in sliders],
                      [round(s.effect.class_kept, 4) for s in sliders], ce, [s.per_class for s in sliders])
