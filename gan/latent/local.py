"""Sliders fitted to one garment: each slider moves its own attribute of *this* garment, and the others less.

The attribute sliders are directions fitted on the model's samples of a class (gan.latent.fitting). On a
projected real garment, drawn by its own tuned copy of G, the same directions act differently: a patterned
garment's contrast move also moves its texture, a slider meant for the neckline moves it less.  Here the
class's sliders are recombined for one garment, from what they measurably do to it:

1. render the garment (z, its class, its generator) moved by each slider at +3, and by each helper direction
   (HELPERS: the PCA directions), and measure every attribute that the class defines
   (gan.latent.attributes), in sd of the class's real images: the matrix M;
2. for slider i, the target is its own attribute moved as far as the slider moves the model's samples of
   the class (directions.json's per-class ``own_sd``, at least 1 sd) and every other attribute not at all;
3. the recombined move i is sum_j C[i, j] (move j), with C the ridge solution of C M ~ T pulling towards
   the identity (each slider stays mostly itself); then the recombined moves are measured and C corrected
   again from the residual (the attributes are not linear in z), ``rounds`` times;
4. each slider keeps, of its original move and the rounds' moves, the one that measured closest to passing
   its target.

This is local editing in the sense of Zhu et al. (2021, "Low-Rank Subspaces in GANs"): directions adapted to
one latent from the generator's response around it, measured here on the attributes themselves.  It costs
(k + helpers) + (rounds + 1) x k renders of one image and their attributes: 20 to 30 renders, a median
0.042 s on one thread of a 2-core CPU (docs/projection.md).

    local = fit_local_sliders(r.generator, r.z, r.label, directions, class_names)
    z_step, emb_step = local.steps["width"], local.emb_steps["width"]   # one slider unit, for this garment
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from .attributes import ATTRIBUTES, Reference, applicable_classes, measure_attributes
from .directions import LABEL_STEP, Directions
from .effects import CHECK, render_batch

RIDGE = 0.05  # pull of each recombination towards the slider itself (in squared sd of attribute change)
OWN_WEIGHT = 4.0  # weight of the own attribute's target against each other attribute's
ROUNDS = 2  # corrections from the measured moves after the first linear solve
HELPERS = ("pca",)  # kinds of directions that recombined sliders may also use (not sliders of the class)
MAX_GAIN = 2.5  # no recombined move is longer than this times the slider's own move (in z and class input)


@dataclass
class LocalSliders:
    """One garment's attribute sliders: z and class-input offsets of one slider unit, and how they measured."""

    label: int
    steps: dict[str, torch.Tensor]  # slider -> (z_dim,) z offset of one slider unit
    emb_steps: dict[str, torch.Tensor | None]  # slider -> (z_dim,) class-input offset of one unit (or None)
    report: dict[str, dict] = field(default_factory=dict)  # slider -> own / worst other at +3, before and after

    def offsets(self, values: dict[str, float]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(z offset, class-input offset or None) of slider values {name: v} (names it lacks: no move)."""
        dz = sum((float(v) * self.steps[n] for n, v in values.items() if n in self.steps),
                 torch.zeros_like(next(iter(self.steps.values()))))
        embs = [float(v) * e for n, v in values.items() if n in self.emb_steps and (e := self.emb_steps[n]) is not None]
        return dz, (sum(embs[1:], embs[0]) if embs else None)


def reference_of(d: Directions) -> Reference | None:
    """The real-image attribute spreads the directions were fitted with (directions.json's meta), or None."""
    ref = d.meta.get("reference")
    return Reference.from_dict(ref) if ref and ref.get("sd") else None


def class_sliders(d: Directions, label: int) -> list[str]:
    """The attribute sliders that act on class label and measure an attribute of the same name."""
    return [n for n, k in zip(d.names, d.kinds) if k == "attribute" and d.acts_on(n, label) and n in ATTRIBUTES]


def _target(d: Directions, name: str, class_name: str) -> float:
    info = d.class_info[d.index[name]].get(class_name) or {}
    own = info.get("own_sd", d.effects_sd[d.index[name]].get(name))
    return max(float(own) if own is not None else CHECK.own, CHECK.own)


@torch.no_grad()
def _changes(G: nn.Module, z: torch.Tensor, label: int, dz: torch.Tensor, de: torch.Tensor | None,
             attrs: list[str], units: torch.Tensor, classifier: nn.Module | None) -> tuple[torch.Tensor, torch.Tensor]:
    """((m, A) attribute changes in sd, (m,) bool: the classifier reads the moved garment as another class
    although it read the garment itself as its class) of the garment moved by dz (m, z_dim) (and de)."""
    m = len(dz)
    zz = torch.cat([z.reshape(1, -1), z.reshape(1, -1) + dz])
    y = torch.full((m + 1,), int(label), dtype=torch.long)
    emb = None if de is None else torch.cat([torch.zeros_like(de[:1]), de])
    x = render_batch(G, zz, y, emb_offset=emb)
    v = measure_attributes(x, attrs)
    a = torch.stack([v[n] for n in attrs], 1).double()  # (m + 1, A)
    lost = torch.zeros(m, dtype=torch.bool)
    if classifier is not None:
        pred = classifier(x).argmax(1)
        lost = (pred[1:] != label) & (pred[0] == label)
    return (a[1:] - a[:1]) / units, lost


def _solve(M: torch.Tensor, R: torch.Tensor, W: torch.Tensor, ridge: float) -> torch.Tensor:
    """dC (k, n), row i the ridge solution of dC[i] M ~ R[i] (M: (n, A) moves of the basis; R (k, A) residuals)
    with attribute weights W[i] (A,)."""
    n = M.shape[0]
    rows = [(R[i] * W[i]) @ M.T @ torch.linalg.inv((M * W[i]) @ M.T + ridge * torch.eye(n, dtype=M.dtype))
            for i in range(len(R))]
    return torch.stack(rows)


def _cost(change: torch.Tensor, own: int) -> float:
    """How far one measured move is from passing the check on its own (0: with margin): a shortfall of the
    own attribute below CHECK.own, and the largest other attribute's share of the own move."""
    o = float(change[own])
    worst = max((abs(float(v)) for j, v in enumerate(change) if j != own), default=0.0)
    return 4.0 * max(0.0, CHECK.own - o) + worst / max(o, 0.1)


def _basis(d: Directions, names: list[str], label: int, z_dim: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(B (n, z_dim), E (n, z_dim) or None): the +3 moves in z and in the class input of the class's sliders,
    then of the helper directions (HELPERS) that act on it."""
    basis = names + [n for n, kind in zip(d.names, d.kinds) if kind in HELPERS and d.acts_on(n, label)]
    B = torch.stack([LABEL_STEP * d.steps(n, label, 1)[0] for n in basis]).double()
    embs = [d.embedding_steps(n, label, 1) for n in basis]
    if all(e is None for e in embs):
        return B, None
    return B, torch.stack([LABEL_STEP * (e[0] if e is not None else torch.zeros(z_dim)) for e in embs]).double()


def fit_local_sliders(G: nn.Module, z: torch.Tensor, label: int, d: Directions, class_names: list[str], *,
                      classifier: nn.Module | None = None, ref: Reference | None = None, rounds: int | None = None,
                      ridge: float | None = None) -> LocalSliders | None:
    """The class's attribute sliders recombined for the garment G(z, label) (see the module's docstring); with
    a classifier, a move that makes it read the garment as another class is not kept.  None when no slider
    acts on the class or the directions carry no real-image reference."""
    rounds, ridge = ROUNDS if rounds is None else rounds, RIDGE if ridge is None else ridge
    ref, label = ref or reference_of(d), int(label)
    names = class_sliders(d, label)
    if ref is None or not names:
        return None
    attrs = [a for a in ATTRIBUTES if a in ref.sd and label in applicable_classes(a, class_names)]
    own = [attrs.index(n) for n in names]
    units = torch.tensor([ref.unit(a, label) for a in attrs], dtype=torch.float64)
    z = z.reshape(-1).float()
    B, E = _basis(d, names, label, z.numel())
    k = len(names)
    T, W = torch.zeros(k, len(attrs), dtype=torch.float64), torch.ones(k, len(attrs), dtype=torch.float64)
    for i, n in enumerate(names):  # the own attribute to the class's measured move, the others to none
        T[i, own[i]], W[i, own[i]] = _target(d, n, class_names[label]), OWN_WEIGHT

    def measure(C: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _changes(G, z, label, (C @ B).float(), None if E is None else (C @ E).float(), attrs, units,
                        classifier)

    M, lost = measure(torch.eye(len(B), dtype=torch.float64))  # what each slider and helper does here
    C = torch.eye(len(B), dtype=torch.float64)[:k]
    tried = [(C.clone(), M[:k], lost[:k])]
    C = C + _solve(M, T - M[:k], W, ridge)
    for r in range(rounds + 1):
        C = _cap(C, B, E)
        got, lost = measure(C)
        tried.append((C.clone(), got, lost))
        if r < rounds:
            C = C + _solve(M, T - got, W, ridge)
    out = LocalSliders(label, {}, {})
    for i, n in enumerate(names):  # each slider: the move that measured closest to passing, class kept
        cost = [_cost(g[i], own[i]) + (10.0 if j and bool(lo[i]) else 0.0) for j, (_, g, lo) in enumerate(tried)]
        best = min(range(len(tried)), key=cost.__getitem__)
        c = tried[best][0][i]
        out.steps[n] = (c @ B / LABEL_STEP).float()
        out.emb_steps[n] = None if E is None else (c @ E / LABEL_STEP).float()
        out.report[n] = {"target_sd": round(float(T[i, own[i]]), 3),
                         "kept": "slider" if best == 0 else f"round {best}",
                         "before": _summary(tried[0][1][i], attrs, own[i]),
                         "after": _summary(tried[best][1][i], attrs, own[i])}
    return out


def _cap(C: torch.Tensor, B: torch.Tensor, E: torch.Tensor | None) -> torch.Tensor:
    """C with each row scaled down where its move would be longer than MAX_GAIN times the slider's own."""
    full = B if E is None else torch.cat([B, E], 1)
    own = full[:len(C)].norm(dim=1)
    new = (C @ full).norm(dim=1)
    scale = torch.clamp(MAX_GAIN * own / new.clamp_min(1e-12), max=1.0)
    return C * scale[:, None]


def _summary(change: torch.Tensor, attrs: list[str], own: int) -> dict:
    others = [(abs(float(v)), a) for j, (v, a) in enumerate(zip(change, attrs)) if j != own]
    worst = max(others, default=(0.0, "-"))
    return {"own_sd": round(float(change[own]), 3), "worst_other": [worst[1], round(worst[0], 3)]}
