"""Training the critic: the paper's inner loop (update D with G fixed) run to the end, with early stopping.

    result = refine_critic(model, RefineOptions(steps=2000))   # result.net, result.label_rule, result.info

Data, and what never touches what:

* **train**: real *training* images (minus a validation split) against fresh samples of the frozen EMA
  generator, each step.  A share of each batch goes through an upload round trip (``roundtrip``: the
  app's preprocessing after a PNG upscale, or a photo-like JPEG round trip); round-tripped images come
  from pools made once (on both sides, so the round trip itself is never a cue) and shared by every
  candidate.
* **validation**: ``n_val`` held-out training images against ``n_val`` samples of seeds never used in
  training, clean and through both round trips.  It picks the best step (early stopping), the best
  candidate, and fits the critic's Platt scaling.
* **test**: real *test* images against samples of yet other seeds, clean and through both round trips.
  They are only measured, never used for a choice: these are the numbers critic.json reports, for the
  critic and, on the same images, for the game's D.

Candidates (the same architecture as the game's D):

* ``refine``: the game's D as the starting point, unconditional (its projection head dropped);
* ``refine-classifier``: the game's conditional D, fed the metric classifier's class as the app does;
* ``scratch``: the same unconditional architecture from a fresh initialisation.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..data import load_dataset, to_float
from ..models import Discriminator
from ..pretrained import GAN
from . import analysis
from .calibration import LogitCalibration, generate_images, real_test_images
from .critic import Critic, critic_config
from .measures import roc_auc
from .roundtrip import MODES, round_trip

CANDIDATES = {"refine": ("game discriminator", "unconditional"),
              "refine-classifier": ("game discriminator", "classifier"),
              "scratch": ("fresh initialisation", "unconditional")}
VAL_SEED, TEST_SEED = 7_001, 7_002  # generate_images seeds of the validation and test samples


@dataclass
class RefineOptions:
    """How the critic is trained and measured (the defaults made the shipped critic)."""

    steps: int = 2000  # most steps per candidate
    batch_size: int = 128  # real images per step, and as many generated ones
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    eval_every: int = 100  # steps between validation checks
    patience: int = 5  # checks without improvement before a candidate stops
    n_val: int = 2000  # validation images per side
    n_test: int = 5000  # test images per side, clean (round trips use n_test_round_trip of them)
    n_test_round_trip: int = 2000
    pool: int = 10_000  # round-tripped images per side and mode, made once
    mix: dict[str, float] = field(default_factory=lambda: {"clean": 1 / 3, "upload": 1 / 3, "photo": 1 / 3})
    candidates: tuple[str, ...] = ("refine", "refine-classifier", "scratch")
    seed: int = 0
    amp: bool = True  # bfloat16 autocast for the training steps (evaluation is float32)
    data_dir: str | None = None

    def check(self) -> None:
        """Raise ValueError naming the first bad option."""
        unknown = [c for c in self.candidates if c not in CANDIDATES]
        if unknown or not self.candidates:
            raise ValueError(f"unknown critic candidate(s) {unknown or '(none given)'}; choose from {', '.join(CANDIDATES)}")
        for name in ("steps", "batch_size", "eval_every", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        for name in ("n_val", "n_test", "n_test_round_trip", "pool"):
            if getattr(self, name) < 8:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 8")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr} must be > 0")
        if set(self.mix) - set(MODES) or min(self.mix.values(), default=-1) < 0 or sum(self.mix.values()) <= 0:
            raise ValueError(f"mix {self.mix} must weigh modes among {', '.join(MODES)}")


@dataclass
class RefineResult:
    """The chosen critic's network and label rule, and everything critic.json records."""

    net: Discriminator
    label_rule: str
    info: dict


@dataclass
class Views:
    """One side (real or generated) of a data split in each view: images (N, C, R, R) and classifier labels."""

    images: dict[str, torch.Tensor]
    labels: dict[str, torch.Tensor | None]


def _views(x: torch.Tensor, modes: tuple[str, ...], seed: int, clf, n_round_trip: int | None = None) -> Views:
    imgs = {m: (x if m == "clean" else round_trip(x[:n_round_trip], m, seed=seed + k))
            for k, m in enumerate(modes)}
    return Views(imgs, {m: analysis.classifier_labels(clf, v) for m, v in imgs.items()})


class TrainingData:
    """Real training images, the frozen generator, round-trip pools, and the validation and test views."""

    def __init__(self, model: GAN, opts: RefineOptions, log: Callable[[str], None]) -> None:
        self.model, self.opts = model, opts
        g = model.generator.cfg
        self.modes = tuple(m for m in MODES if m == "clean" or (opts.mix.get(m, 0) > 0 and g.resolution == 28
                                                                   and g.channels == 1))
        self.clf = analysis.model_classifier(model)
        data = load_dataset(model.dataset, split="train", data_dir=opts.data_dir, resolution=g.resolution,
                            channels=g.channels)
        perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(opts.seed))
        n_val = min(opts.n_val, len(data) // 4)
        self.train_real = to_float(data.images[perm[n_val:]])  # (N, C, R, R) in [-1, 1]
        self.train_labels = analysis.classifier_labels(self.clf, self.train_real)
        t0 = time.perf_counter()
        self.real_pool = self._pool(self.train_real[torch.randperm(len(self.train_real),
                                                                   generator=torch.Generator().manual_seed(opts.seed + 1))[:opts.pool]], 11)
        self.fake_pool = self._pool(generate_images(model, opts.pool, seed=opts.seed * 10 + 3), 13)
        log(f"round-trip pools: {len(self.modes) - 1} mode(s) x {opts.pool} images per side in "
            f"{time.perf_counter() - t0:.0f} s")
        self.val_real = _views(to_float(data.images[perm[:n_val]]), self.modes, opts.seed + 21, self.clf)
        self.val_fake = _views(generate_images(model, n_val, seed=VAL_SEED + 10 * opts.seed), self.modes,
                               opts.seed + 31, self.clf)
        test_real, self.test_split = real_test_images(model, opts.n_test, opts.seed + 41, opts.data_dir)
        n_rt = min(opts.n_test_round_trip, len(test_real))
        self.test_real = _views(test_real, self.modes, opts.seed + 51, self.clf, n_rt)
        self.test_fake = _views(generate_images(model, opts.n_test, seed=TEST_SEED + 10 * opts.seed), self.modes,
                                opts.seed + 61, self.clf, n_rt)
        self.n_val, self.n_rt = n_val, n_rt

    def _pool(self, x: torch.Tensor, seed: int) -> Views:
        modes = tuple(m for m in self.modes if m != "clean")
        return _views(x, modes, self.opts.seed + seed, self.clf) if modes else Views({}, {})

    def _counts(self) -> dict[str, int]:
        w = {m: self.opts.mix.get(m, 0.0) for m in self.modes}
        total = sum(w.values())
        counts = {m: int(round(self.opts.batch_size * v / total)) for m, v in w.items()}
        counts["clean"] += self.opts.batch_size - sum(counts.values())
        return counts

    def batch(self, gen: torch.Generator, want_labels: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None,
                                                                       torch.Tensor | None]:
        """(real (B, C, R, R), fake (B, C, R, R), their classifier labels or None) for one training step."""
        parts: dict[str, list] = {"xr": [], "xf": [], "yr": [], "yf": []}
        for m, k in self._counts().items():
            if k <= 0:
                continue
            if m == "clean":
                i = torch.randint(0, len(self.train_real), (k,), generator=gen)
                xr, yr = self.train_real[i], None if self.train_labels is None else self.train_labels[i]
                xf = self._fresh(k, gen)
                yf = analysis.classifier_labels(self.clf, xf) if want_labels else None
            else:
                i = torch.randint(0, len(self.real_pool.images[m]), (k,), generator=gen)
                j = torch.randint(0, len(self.fake_pool.images[m]), (k,), generator=gen)
                xr, xf = self.real_pool.images[m][i], self.fake_pool.images[m][j]
                yr = None if self.real_pool.labels[m] is None else self.real_pool.labels[m][i]
                yf = None if self.fake_pool.labels[m] is None else self.fake_pool.labels[m][j]
            for key, v in (("xr", xr), ("xf", xf), ("yr", yr), ("yf", yf)):
                parts[key].append(v)
        cat = (lambda v: torch.cat(v) if want_labels and all(t is not None for t in v) else None)
        return torch.cat(parts["xr"]), torch.cat(parts["xf"]), cat(parts["yr"]), cat(parts["yf"])

    @torch.no_grad()
    def _fresh(self, k: int, gen: torch.Generator) -> torch.Tensor:
        """k fresh samples of the frozen generator (latents and labels from the training generator)."""
        G = self.model.generator
        z = torch.randn(k, G.cfg.z_dim, generator=gen)
        y = torch.randint(0, G.cfg.num_classes, (k,), generator=gen) if G.conditional else None
        with analysis.eval_mode(G):
            return G(z.to(next(G.parameters()).device), None if y is None else y.to(z.device)).float().cpu()


def init_net(model: GAN, candidate: str, seed: int) -> tuple[Discriminator, str]:
    """A candidate's starting network and label rule (see the module docstring)."""
    start, rule = CANDIDATES[candidate]
    if rule == "classifier" and (not model.discriminator.conditional or analysis.model_classifier(model) is None):
        raise ValueError(f"candidate {candidate!r} needs a conditional D and the metric classifier")
    torch.manual_seed(seed)
    net = Discriminator(critic_config(model, rule))
    if start == "game discriminator":
        state = {k: v for k, v in model.discriminator.state_dict().items()
                 if rule == "classifier" or not k.startswith("embed.")}
        net.load_state_dict(state, strict=True)
    return net, rule


def side_logits(net: Discriminator, rule: str, views: Views) -> dict[str, np.ndarray]:
    """The net's logits (float64) on each view of one side (eval mode)."""
    critic = Critic(net=net, label_rule=rule, calibration=None)
    return {m: critic.logits(x, labels=views.labels[m] if rule == "classifier" else None).double().numpy()
            for m, x in views.images.items()}


def _val_aucs(net: Discriminator, rule: str, data: TrainingData) -> dict[str, float]:
    r, f = side_logits(net, rule, data.val_real), side_logits(net, rule, data.val_fake)
    return {m: round(roc_auc(r[m], f[m]), 6) for m in r}


def train_candidate(name: str, data: TrainingData, opts: RefineOptions, log: Callable[[str], None]) -> dict:
    """Train one candidate with early stopping on the mean validation AUC; returns its net, rule and record."""
    t0 = time.perf_counter()
    seed = opts.seed + 1000 * list(CANDIDATES).index(name)
    net, rule = init_net(data.model, name, seed)
    dev = next(data.model.generator.parameters()).device
    net.to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=opts.lr, betas=(opts.beta1, opts.beta2))
    gen = torch.Generator().manual_seed(seed)
    cond = rule == "classifier"
    val0 = _val_aucs(net, rule, data)
    best = {"score": float(np.mean(list(val0.values()))), "step": 0, "val": val0,
            "state": copy.deepcopy(net.state_dict())}
    history, bad, step = [{"step": 0, **val0}], 0, 0
    for step in range(1, opts.steps + 1):
        net.train()
        xr, xf, yr, yf = data.batch(gen, cond)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=opts.amp):
            # (1) update D with G fixed: maximise log D(x) + log(1 - D(G(z))), i.e. minimise the BCE
            lr_, lf = net(xr.to(dev), yr.to(dev) if cond else None), net(xf.to(dev), yf.to(dev) if cond else None)
            loss = F.softplus(-lr_.float()).mean() + F.softplus(lf.float()).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % opts.eval_every and step != opts.steps:
            continue
        val = _val_aucs(net, rule, data)
        score = float(np.mean(list(val.values())))
        history.append({"step": step, "loss": round(loss.item(), 5), **val})
        log(f"  {name} step {step}: loss {loss.item():.4f}, val AUC " + ", ".join(f"{m} {v:.4f}" for m, v in val.items()))
        if score > best["score"] + 1e-5:
            best, bad = {"score": score, "step": step, "val": val, "state": copy.deepcopy(net.state_dict())}, 0
        else:
            bad += 1
            if bad >= opts.patience:
                break
    net.load_state_dict(best["state"])
    net.eval().requires_grad_(False)
    return {"net": net, "rule": rule, "record": {
        "start": CANDIDATES[name][0], "label_rule": rule, "val": best["val"], "score": round(best["score"], 6),
        "best_step": best["step"], "steps": step, "seconds": round(time.perf_counter() - t0, 1), "history": history}}


def _test_metrics(net_logits: Callable[[Views], dict[str, np.ndarray]], data: TrainingData) -> tuple[LogitCalibration, dict]:
    """Platt scaling on all validation views pooled, then held-out metrics on each test view."""
    vr, vf = net_logits(data.val_real), net_logits(data.val_fake)
    cal = LogitCalibration.fit(np.concatenate(list(vr.values())), np.concatenate(list(vf.values())))
    tr, tf = net_logits(data.test_real), net_logits(data.test_fake)
    return cal, {m: cal.measure(tr[m], tf[m]) for m in tr}


def _game_d_logits(model: GAN) -> Callable[[Views], dict[str, np.ndarray]]:
    return lambda views: {m: analysis.analyse(model, x, None)["logit"] for m, x in views.images.items()}


def _machine(device: torch.device) -> str:
    from ..train.run import hardware_description  # the one description of the hardware, as training records it
    return hardware_description(device, 1)


def refine_critic(model: GAN, opts: RefineOptions | None = None, *, log: Callable[[str], None] = print) -> RefineResult:
    """Train each candidate critic against the frozen generator, keep the best on validation, measure it on test."""
    opts = opts or RefineOptions()
    opts.check()
    t0, c0 = time.perf_counter(), time.process_time()
    model.eval().requires_grad_(False)
    cands = [c for c in opts.candidates if CANDIDATES[c][1] != "classifier"
             or (model.discriminator.conditional and analysis.model_classifier(model) is not None)]
    if not cands:
        raise ValueError(f"none of the candidates {list(opts.candidates)} applies to this model "
                         f"(the classifier candidate needs a conditional D and the metric classifier)")
    data = TrainingData(model, opts, log)
    trained = {}
    for name in cands:
        log(f"critic candidate {name}: {CANDIDATES[name][0]}, labels {CANDIDATES[name][1]}")
        trained[name] = train_candidate(name, data, opts, log)
    chosen = max(cands, key=lambda c: trained[c]["record"]["score"])
    net, rule = trained[chosen]["net"], trained[chosen]["rule"]
    cal, metrics = _test_metrics(lambda v: side_logits(net, rule, v), data)
    cal.metrics = metrics["clean"]
    d_cal, d_metrics = _test_metrics(_game_d_logits(model), data)
    for name in cands:  # reported for the record; the choice above used validation data only
        n, r = trained[name]["net"], trained[name]["rule"]
        tr, tf = side_logits(n, r, data.test_real), side_logits(n, r, data.test_fake)
        trained[name]["record"]["test_auc"] = {m: round(roc_auc(tr[m], tf[m]), 6) for m in tr}
    info = {"candidate": chosen, "start": CANDIDATES[chosen][0],
            "calibration": {**{k: v for k, v in cal.to_dict().items() if k != "metrics"},
                            "fit_on": f"validation: {data.n_val} held-out training images and as many unseen "
                                      f"samples, in each view ({', '.join(data.modes)}), pooled"},
            "metrics": metrics, "game_discriminator": d_metrics,
            "metrics_note": (f"held-out: real {data.test_split} images against samples of seeds never used in "
                             f"training or validation; clean {opts.n_test} per side, round trips {data.n_rt}"),
            "candidates": {c: trained[c]["record"] for c in cands},
            "training": {**{k: v for k, v in asdict(opts).items() if k != "data_dir"},
                         "n_train_real": len(data.train_real), "n_val": data.n_val, "views": list(data.modes),
                         "loss": "binary cross-entropy, real vs fresh samples of the frozen EMA generator",
                         "optimizer": f"Adam(lr={opts.lr}, betas=({opts.beta1}, {opts.beta2}))",
                         "wall_time_s": round(time.perf_counter() - t0, 1),
                         "cpu_time_s": round(time.process_time() - c0, 1), "threads": torch.get_num_threads(),
                         "machine": _machine(next(model.generator.parameters()).device),
                         "torch_version": torch.__version__}}
    log(f"kept {chosen}: test ROC AUC " + ", ".join(f"{m} {v['auc']:.4f}" for m, v in metrics.items())
        + " (game D: " + ", ".join(f"{m} {v['auc']:.4f}" for m, v in d_metrics.items()) + ")")
    return RefineResult(net=net.cpu(), label_rule=rule, info=info)
