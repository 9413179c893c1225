"""Projection in three stages, each measurable alone: encoder, a short refinement of z, pivotal tuning of G.

    from gan.latent.encoder import load_encoder
    from gan.latent.inversion import invert
    r = invert(model, target, encoder=load_encoder("checkpoints"))     # target (C, R, R) in [-1, 1]
    r.stage, r.z, r.label, r.image, r.generator                        # r.generator: a tuned copy of G

(1) ``encoder``: the encoder's z in one pass; the class is the given one, or of the classifier's (else the
    encoder's) two likeliest classes the one whose image at that z is closer to the target.
(2) ``refine``: Adam on z alone for a few dozen steps (pixel MSE and a |z| prior), G frozen.
(3) ``tune``: pivotal tuning (PTI, Roich et al. 2021): z stays at the pivot and a per-image copy of G's last
    upsampling block and output conv is fine-tuned on the pixel error for a few dozen steps, so the image
    becomes nearly exact while the rest of G, and with it what the latent sliders do, is G's own.

The copy shares every other weight with G (no copy of them, never written: they are not differentiated),
so G itself, and every other caller's copy, is never changed. Without an encoder the first two stages are
the multi-start optimisation of ``gan.latent.projection`` ("optimise"). A time budget makes every stage
stop early, except for the first ``Plan.min_tune_steps`` of the tuning (the stage that matters most);
``Inversion.stage`` names the last stage that ran and ``steps`` how far each one got.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models import Generator
from .attributes import surface_attributes
from .edits import slider_edits, surface_units
from .encoder import Encoder, check_pair
from .projection import Objective, check_target, project, resolve_classifier
from .sampling import generator_of

STAGES = ("encoder", "refine", "tune")
CLASS_CANDIDATES = 2  # classes tried at the encoder's z when the class is not given
REFINE_SHARE = 0.3  # with a budget, the refinement may use this share of it; the tuning gets the rest
EDIT_WEIGHT = 0.3  # tuning: weight of keeping the sliders' moves, beside the pixel error at the pivot
EDIT_PAIRS = 1  # tuning: slider moves held per step (cycling through all of them)
# tuning: weight of keeping what the moves do to the surface attributes (in sd), see tune(); off by default: through
# /project (200 test images, 0.3 s budget) 0.003 with two moves a step gave 0.484 s and 3.1% RMS against 0.449 s and
# 2.7% for pixels alone (the budget cut its tuning short), for 17 instead of 12 of 39 slider checks passed on
# projected training images (docs/projection.md); Plan(surface_weight=0.003, edit_pairs=2) turns it on
SURFACE_WEIGHT = 0.0


@dataclass
class Inversion:
    """The result of a projection: latent, class, image, and the generator that makes it (G or a tuned copy)."""

    z: torch.Tensor  # (z_dim,)
    label: int | None
    image: torch.Tensor  # (C, R, R) in [-1, 1]
    generator: Generator  # G itself, or (stage "tune") a copy with its own last block
    stage: str  # the last stage that ran: "encoder", "refine", "tune" ("optimise" without an encoder)
    mse: float  # pixel MSE to the target, both in [-1, 1]
    feature_distance: float = math.nan  # 1 - cosine in the metric classifier's features (nan without it)
    steps: dict[str, int] = field(default_factory=dict)  # stage -> steps run
    seconds: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    history: list[float] = field(default_factory=list)  # objective after every optimisation step
    candidates: dict[int, float] = field(default_factory=dict)  # label -> objective at the encoder's z

    @property
    def tuned(self) -> bool:
        return self.stage == "tune"

    @property
    def rms(self) -> float:
        """Pixel RMS error as a fraction of the full range."""
        return math.sqrt(self.mse) / 2


# ---- the tuned copy --------------------------------------------------------------------------------------
def tuned_block(G: Generator) -> int:
    """Index in G.blocks of the first module pivotal tuning changes: the last upsampling conv."""
    return max(i for i, m in enumerate(G.blocks) if isinstance(m, nn.ConvTranspose2d))


def tuned_modules(G: Generator) -> list[nn.Module]:
    """The modules pivotal tuning changes: the last upsampling conv, everything after it in G.blocks, and to_img."""
    return [*list(G.blocks)[tuned_block(G):], G.to_img]


def tuned_copy(G: Generator) -> Generator:
    """A copy of G (eval mode) whose tuned modules have their own weights; every other weight is G's, shared."""
    own = {id(p) for m in tuned_modules(G) for p in m.parameters()}
    memo = {id(p): p for p in G.parameters() if id(p) not in own}  # deepcopy returns these as they are
    Gt = copy.deepcopy(G, memo)
    return Gt.eval()


def tuned_parameters(Gt: Generator) -> list[nn.Parameter]:
    """The parameters of a tuned copy that belong to it alone."""
    return [p for m in tuned_modules(Gt) for p in m.parameters()]


def tuned_state(Gt: Generator) -> dict[str, torch.Tensor]:
    """What a tuned copy adds to G, by name: its own parameters and buffers (a few hundred KB)."""
    names = {id(m) for m in tuned_modules(Gt)}
    return {f"{mn}.{k}" if mn else k: v.detach().clone()
            for mn, m in Gt.named_modules() if id(m) in names
            for k, v in [*m.named_parameters(recurse=False), *m.named_buffers(recurse=False)]}


# ---- the stages ------------------------------------------------------------------------------------------
@torch.no_grad()
def encode(G: Generator, enc: Encoder, tgt: torch.Tensor, label: int | None, clf: nn.Module | None
           ) -> tuple[torch.Tensor, torch.Tensor | None, dict[int, float]]:
    """(1) z (1, z_dim) and class (1,) of target (1, C, R, R); candidates: label -> pixel MSE at that z."""
    z, logits = enc(tgt)
    if not G.cfg.num_classes:
        return z, None, {}
    if label is not None:
        return z, torch.tensor([int(label)]), {}
    scores = clf(tgt) if clf is not None else logits  # (1, K): the classifier reads real images better
    k = min(CLASS_CANDIDATES, G.cfg.num_classes)
    cands = scores[0, :G.cfg.num_classes].topk(k).indices
    err = (G(z.expand(k, -1), cands) - tgt).pow(2).mean((1, 2, 3))  # (k,)
    best = int(err.argmin())
    return z, cands[best:best + 1], {int(c): float(e) for c, e in zip(cands, err)}


def refine(objective: Objective, z: torch.Tensor, y: torch.Tensor | None, steps: int, *, lr: float = 0.05,
           deadline: float = math.inf, history: list[float] | None = None) -> tuple[torch.Tensor, int]:
    """(2) Adam on z alone, cosine-decayed, until steps or the deadline (time.perf_counter()); returns the best z
    seen (by the objective, the start included) and the steps run."""
    z = z.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    best, best_z, done = math.inf, z.detach().clone(), 0
    for i in range(steps):
        if time.perf_counter() > deadline:
            break
        for g in opt.param_groups:
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * i / steps))
        with torch.enable_grad():
            loss, _ = objective(z, y, False)
            (z.grad,) = torch.autograd.grad(loss.sum(), [z])
        if float(loss.detach()) < best:  # the objective of z before this step
            best, best_z = float(loss.detach()), z.detach().clone()
        opt.step()
        done += 1
        if history is not None:
            history.append(float(loss.detach()))
    if done:
        with torch.no_grad():
            final = float(objective(z, y, False)[0])
        if final < best:
            best_z = z.detach().clone()
    return best_z, done


def tune(G: Generator, tgt: torch.Tensor, z: torch.Tensor, y: torch.Tensor | None, steps: int, *,
         edits: tuple[torch.Tensor, torch.Tensor | None] | None = None, edit_weight: float = EDIT_WEIGHT,
         units: torch.Tensor | None = None, surface_weight: float = SURFACE_WEIGHT, edit_pairs: int = EDIT_PAIRS,
         lr: float = 5e-3, deadline: float = math.inf, min_steps: int = 0,
         history: list[float] | None = None) -> tuple[Generator, int]:
    """(3) Pivotal tuning: a copy of G whose last block is fitted to the target at the pivot z; (copy, steps run).

    With edits (z offsets (K, z_dim) and class-input offsets (K, z_dim) or None, e.g. the sliders' moves), the
    copy is also held to what each move does to G's image, Gt(z + dz) - Gt(z) ~ G(z + dz) - G(z), EDIT_PAIRS
    moves a step: fitting one image would otherwise flatten what the sliders do to it.  With units (3,) (one sd of
    each of attributes.SURFACE for the class), the copy is also held, with surface_weight, to what each move does
    to brightness, contrast and texture measured in those units: a pixel error weighs fine pattern little, and
    fine pattern is what the texture measure reads and what fitting one garment dulls most.  The layers before the
    tuned block are G's, so their activations are computed once; gradients are taken for the copy's own
    parameters only (torch.autograd.grad), so G's shared weights neither change nor gather gradients."""
    Gt = tuned_copy(G)
    k, params = tuned_block(G), tuned_parameters(Gt)
    emb = G.embed(y) if G.conditional else None  # (1, z_dim)
    with torch.no_grad():
        h0 = G.features_before(z, emb, k)  # (1, C, S, S): the tuned block's input at the pivot
        if edits is not None:
            dz, de = edits
            hd = G.features_before(z + dz, emb if de is None else emb + de, k)  # (K, C, S, S)
            g0, gd = G.forward_from(h0, k), G.forward_from(hd, k)
            delta = gd - g0  # (K, C, R, R): what each move does in G
            if units is not None:
                d_attr = (surface_attributes(gd) - surface_attributes(g0)) / units  # (K, 3) in sd of the class
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    done = 0
    for i in range(steps):
        if i >= min_steps and time.perf_counter() > deadline:
            break
        with torch.enable_grad():
            if edits is None:
                out = Gt.forward_from(h0, k)
                loss = (out - tgt).pow(2).mean()
            else:
                sel = torch.arange(i * edit_pairs, (i + 1) * edit_pairs) % len(hd)  # cycle through the moves
                both = Gt.forward_from(torch.cat([h0, hd[sel]]), k)  # (1 + P, C, R, R): the pivot, then the moves
                out, img = both[:1], both[1:]
                loss = (out - tgt).pow(2).mean() + edit_weight * (img - out - delta[sel]).pow(2).mean()
                if units is not None and surface_weight:
                    a = surface_attributes(both)  # (1 + P, 3)
                    loss = loss + surface_weight * ((a[1:] - a[:1]) / units - d_attr[sel]).pow(2).mean()
            grads = torch.autograd.grad(loss, params)
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
        done += 1
        if history is not None:
            history.append(float(loss.detach()))
    for p in params:
        p.requires_grad_(False)
        p.grad = None
    return Gt, done


# ---- all three -------------------------------------------------------------------------------------------
@dataclass
class Plan:
    """How far invert() goes and how: the last stage, each stage's steps and weights, and the time budget."""

    stage: str = "tune"
    refine_steps: int = 10
    tune_steps: int = 70
    optimise_steps: int = 150  # without an encoder: the multi-start optimisation that replaces stages 1 and 2
    reg_weight: float = 0.01  # refinement: weight of the |z| prior
    min_tune_steps: int = 40  # tuning steps that run even when the budget is spent (the stage that matters most)
    edit_weight: float = EDIT_WEIGHT  # tuning: weight of keeping the sliders' moves
    surface_weight: float = SURFACE_WEIGHT  # tuning: weight of keeping their moves of the surface attributes
    edit_pairs: int = EDIT_PAIRS  # tuning: slider moves held per step
    budget_s: float | None = None

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage={self.stage!r} is not one of {', '.join(STAGES)}")
        if min(self.refine_steps, self.tune_steps) < 0 or self.optimise_steps < 2:
            raise ValueError(f"refine_steps={self.refine_steps} and tune_steps={self.tune_steps} must be >= 0, "
                             f"optimise_steps={self.optimise_steps} >= 2")


def _feature_distance(clf: nn.Module | None, img: torch.Tensor, tgt: torch.Tensor) -> float:
    if clf is None:
        return math.nan
    with torch.no_grad():
        return float(1 - F.cosine_similarity(clf.features(img), clf.features(tgt), dim=1)[0])


def _start(model: nn.Module, G: Generator, enc: Encoder | None, tgt: torch.Tensor, label: int | None,
           clf: nn.Module | None, plan: Plan, r: Inversion) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Stage (1): the encoder, or without one the multi-start optimisation (which also stands for stage 2)."""
    t = time.perf_counter()
    if enc is not None:
        z, y, r.candidates = encode(G, enc, tgt, label, clf)
        r.steps["encoder"], r.stage = 1, "encoder"
    else:
        p = project(model, tgt[0], label=label, num_steps=plan.optimise_steps, classifier=clf)
        z, y = p.z.reshape(1, -1), None if p.label is None else torch.tensor([p.label])
        r.candidates, r.history = dict(p.candidates), list(p.history)
        r.steps["optimise"], r.stage = plan.optimise_steps, "optimise"
    r.seconds[r.stage] = round(time.perf_counter() - t, 4)
    return z, y


def invert(model: nn.Module, target: torch.Tensor, *, encoder: Encoder | None, label: int | None = None,
           plan: Plan | None = None, directions=None, classifier: nn.Module | None | str = "auto",
           **options) -> Inversion:
    """Project target (C, R, R) in [-1, 1] through the stages of plan (or Plan(**options): stage, refine_steps,
    tune_steps, budget_s, ...). directions (gan.latent.Directions): the tuning keeps what their sliders do."""
    t0 = time.perf_counter()
    plan = plan or Plan(**options)
    G = generator_of(model)
    if encoder is not None:
        check_pair(encoder, G)
    if label is not None and not 0 <= int(label) < G.cfg.num_classes:
        raise ValueError(f"label={label} is out of range; this generator has {G.cfg.num_classes} classes "
                         f"(pass label=None to find the class)")
    tgt = check_target(target, G).unsqueeze(0)  # (1, C, R, R)
    clf = resolve_classifier(model, classifier)
    was = G.training
    G.eval()  # (the app's G is always in eval mode: then this changes nothing)
    try:
        end = t0 + plan.budget_s if plan.budget_s is not None else math.inf
        return _run(model, G, encoder, tgt, label, clf, plan, directions, t0, end)
    finally:
        G.train(was)


def _run(model: nn.Module, G: Generator, encoder: Encoder | None, tgt: torch.Tensor, label: int | None,
         clf: nn.Module | None, plan: Plan, directions, t0: float, end: float) -> Inversion:
    """The stages of invert() in order, each until its steps or its share of the time up to `end`."""
    r = Inversion(z=torch.empty(0), label=None, image=tgt[0], generator=G, stage="encoder", mse=math.nan)
    z, y = _start(model, G, encoder, tgt, label, clf, plan, r)
    if STAGES.index(plan.stage) >= 1 and encoder is not None and plan.refine_steps:
        t = time.perf_counter()
        objective = Objective(G, tgt, None, None, 0.0, plan.reg_weight)
        z, r.steps["refine"] = refine(objective, z, y, plan.refine_steps, history=r.history,
                                      deadline=t0 + (end - t0) * REFINE_SHARE)
        r.seconds["refine"] = round(time.perf_counter() - t, 4)
        r.stage = "refine" if r.steps["refine"] else r.stage
    Gt = G
    if plan.stage == "tune" and plan.tune_steps:
        t = time.perf_counter()
        c = None if y is None else int(y[0])
        edits = None if directions is None else slider_edits(directions, c)
        units = None if edits is None else surface_units(directions, c)
        Gt, r.steps["tune"] = tune(G, tgt, z, y, plan.tune_steps, edits=edits, edit_weight=plan.edit_weight,
                                   units=units, surface_weight=plan.surface_weight, edit_pairs=plan.edit_pairs,
                                   deadline=end, min_steps=plan.min_tune_steps, history=r.history)
        r.seconds["tune"] = round(time.perf_counter() - t, 4)
        r.stage, Gt = ("tune", Gt) if r.steps["tune"] else (r.stage, G)
    with torch.no_grad():
        img = Gt(z, y)
    r.z, r.label, r.image, r.generator = z[0].clone(), None if y is None else int(y[0]), img[0].clone(), Gt
    r.mse = float((img - tgt).pow(2).mean())
    r.feature_distance = _feature_distance(clf, img, tgt)
    return r
