"""Training the critic: the paper's inner loop (update D with G fixed) run to the end, with early stopping.

    result = refine_critic(model, RefineOptions(steps=2000))   # result.net, result.label_rule, result.info
    write_critic("runs/x")                                     # refine and save critic.* in a model folder
    fashion-gan critic DIR                                     # the same from the command line (main below)

Data, and what never touches what:

* **train**: real *training* images (minus a validation split) against fresh samples of the frozen EMA
  generator, each step (half of them with a scaled latent or a blend of two classes, as the app's
  truncation slider and Interpolate tab make them).  A share of each batch goes through an upload round
  trip (``roundtrip``: the app's preprocessing after a PNG upscale, or a photo-like JPEG round trip);
  round-tripped images come from pools made once (on both sides, so the round trip itself is never a
  cue) and shared by every candidate (``critic_data``).
* **validation**: ``n_val`` held-out training images against ``n_val`` samples of seeds never used in
  training, clean and through both round trips.  It picks the best step (early stopping), the best
  candidate, and fits the critic's Platt scaling.
* **test**: real *test* images against samples of yet other seeds, clean and through both round trips.
  They are only measured, never used for a choice: these are the numbers critic.json reports, for the
  critic and, on the same images, for the game's D.

Candidates (the same architecture as the game's D):

* ``refine``: the game's D as the starting point, unconditional (its projection head dropped);
* ``refine-classifier``: the game's conditional D, fed the metric classifier's class as the app does;
* ``scratch``: the same unconditional architecture from a fresh initialisation;
* ``continue``: the critic the folder has (``RefineOptions.start_from``), trained on with its own label rule,
  e.g. with another ``mix`` of views.

Each candidate trains ``screen_steps`` steps; the one with the best mean validation AUC then trains on
to ``steps`` (successive halving with one round), with early stopping throughout.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..hardware import use_cpu_amp
from ..models import Discriminator
from ..pretrained import GAN
from . import analysis
from .calibration import LogitCalibration
from .critic import CRITIC_FILE, Critic, critic_config, save_critic
from .critic_data import TrainingData, Views
from .measures import roc_auc
from .roundtrip import MODES

CANDIDATES = {"refine": ("game discriminator", "unconditional"),
              "refine-classifier": ("game discriminator", "classifier"),
              "scratch": ("fresh initialisation", "unconditional"),
              "continue": ("the folder's critic", "its own")}


@dataclass
class RefineOptions:
    """How the critic is trained and measured (the defaults made the shipped critic)."""

    steps: int = 6000  # most steps of the candidate that measures best
    screen_steps: int = 600  # steps of every candidate before the best one is chosen
    batch_size: int = 128  # real images per step, and as many generated ones
    lr: float = 1e-3
    lr_final: float = 0.05  # cosine decay of the learning rate over `steps`, to lr * lr_final
    beta1: float = 0.5
    beta2: float = 0.999
    eval_every: int = 250  # steps between validation checks
    patience: int = 8  # checks without improvement before a candidate stops
    n_val: int = 2000  # validation images per side
    n_test: int = 5000  # test images per side, clean (round trips use n_test_round_trip of them)
    n_test_round_trip: int = 2000
    pool: int = 10_000  # round-tripped images per side and mode, made once
    mix: dict[str, float] = field(default_factory=lambda: {"clean": 1 / 3, "upload": 1 / 3, "photo": 1 / 3})
    app_fakes: float = 0.5  # share of fresh samples with a scaled latent or a class blend, as the app draws them
    candidates: tuple[str, ...] = ("refine", "refine-classifier", "scratch")
    n_train: int | None = None  # use at most this many real training images (quick runs, tests)
    seed: int = 0
    amp: bool | None = None  # bf16 autocast for the training steps (evaluation is float32); None: on a GPU, and
    # on a CPU only with native bf16 (emulated bf16 is several times slower than float32)
    data_dir: str | None = None
    start_from: str | None = None  # "continue": the model folder whose critic.* it starts from

    def check(self) -> None:
        """Raise ValueError naming the first bad option."""
        unknown = [c for c in self.candidates if c not in CANDIDATES]
        if unknown or not self.candidates:
            raise ValueError(f"unknown critic candidate(s) {unknown or '(none given)'}; choose from {', '.join(CANDIDATES)}")
        for name in ("steps", "screen_steps", "batch_size", "eval_every", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if self.n_train is not None and self.n_train < 8:
            raise ValueError(f"n_train={self.n_train} must be >= 8 (or None: all training images)")
        for name in ("n_val", "n_test", "n_test_round_trip", "pool"):
            if getattr(self, name) < 8:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 8")
        if not 0 <= self.app_fakes <= 1:
            raise ValueError(f"app_fakes={self.app_fakes} must be in [0, 1]")
        if not self.lr > 0 or not 0 < self.lr_final <= 1:
            raise ValueError(f"lr={self.lr} must be > 0 and lr_final={self.lr_final} in (0, 1]")
        if set(self.mix) - set(MODES) or min(self.mix.values(), default=-1) < 0 or sum(self.mix.values()) <= 0:
            raise ValueError(f"mix {self.mix} must weigh modes among {', '.join(MODES)}")
        if "continue" in self.candidates and not self.start_from:
            raise ValueError("candidate 'continue' needs start_from: the model folder whose critic it trains on")


@dataclass
class RefineResult:
    """The chosen critic's network and label rule, and everything critic.json records."""

    net: Discriminator
    label_rule: str
    info: dict


def init_net(model: GAN, candidate: str, seed: int, start_from: str | None = None) -> tuple[Discriminator, str]:
    """A candidate's starting network and label rule (see the module docstring)."""
    if candidate == "continue":
        from .critic import load_critic
        critic = load_critic(start_from) if start_from else None
        if critic is None:
            raise ValueError(f"candidate 'continue': {start_from} has no usable critic (critic.json + {CRITIC_FILE})")
        return copy.deepcopy(critic.net).train().requires_grad_(True), critic.label_rule
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


class CandidateRun:
    """One candidate in training: resumable, keeping the weights of its best mean validation AUC."""

    def __init__(self, name: str, data: TrainingData, opts: RefineOptions) -> None:
        self.name, self.data, self.opts = name, data, opts
        seed = opts.seed + 1000 * list(CANDIDATES).index(name)
        self.net, self.rule = init_net(data.model, name, seed, opts.start_from)
        self.dev = next(data.model.generator.parameters()).device
        self.net.to(self.dev)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=opts.lr, betas=(opts.beta1, opts.beta2))
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda k: _cosine(k / opts.steps, opts.lr_final))
        self.gen = torch.Generator().manual_seed(seed)
        val = _val_aucs(self.net, self.rule, data)
        self.best = {"score": _mean(val), "step": 0, "val": val, "state": copy.deepcopy(self.net.state_dict())}
        self.history: list[dict] = [{"step": 0, **val}]
        self.step, self.bad, self.stopped, self.seconds = 0, 0, False, 0.0
        self.screen_score: float | None = None

    def train_step(self) -> float:
        """(1) update D with G fixed: maximise log D(x) + log(1 - D(G(z))), i.e. minimise the BCE; returns the loss."""
        self.net.train()
        cond = self.rule == "classifier"
        xr, xf, yr, yf = self.data.batch(self.gen, cond)
        dev = self.dev
        amp = self.opts.amp is not False if dev.type != "cpu" else use_cpu_amp(self.opts.amp, dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            lr_ = self.net(xr.to(dev), yr.to(dev) if cond else None)
            lf = self.net(xf.to(dev), yf.to(dev) if cond else None)
            loss = F.softplus(-lr_.float()).mean() + F.softplus(lf.float()).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        return loss.item()

    def run(self, until: int, log: Callable[[str], None]) -> None:
        """Train up to step `until` (or an early stop: `patience` checks without a better validation AUC)."""
        t0 = time.perf_counter()
        while self.step < until and not self.stopped:
            self.step += 1
            loss = self.train_step()
            if self.step % self.opts.eval_every and self.step != until:
                continue
            val = _val_aucs(self.net, self.rule, self.data)
            self.history.append({"step": self.step, "loss": round(loss, 5), **val})
            log(f"  {self.name} step {self.step}: loss {loss:.4f}, val AUC "
                + ", ".join(f"{m} {v:.4f}" for m, v in val.items()))
            if _mean(val) > self.best["score"] + 1e-5:
                self.best = {"score": _mean(val), "step": self.step, "val": val,
                             "state": copy.deepcopy(self.net.state_dict())}
                self.bad = 0
            else:
                self.bad += 1
                self.stopped = self.bad >= self.opts.patience
        self.seconds += time.perf_counter() - t0

    def best_net(self) -> Discriminator:
        """The network with its best weights, in eval mode."""
        self.net.load_state_dict(self.best["state"])
        return self.net.eval().requires_grad_(False)

    def record(self) -> dict:
        """What critic.json records about this candidate."""
        return {"start": CANDIDATES[self.name][0], "label_rule": self.rule, "val": self.best["val"],
                "score": round(self.best["score"], 6), "screen_score": self.screen_score,
                "best_step": self.best["step"], "steps": self.step, "early_stop": self.stopped,
                "seconds": round(self.seconds, 1), "history": self.history}


def _cosine(t: float, final: float) -> float:
    """Learning-rate factor at progress t in [0, 1]: 1 -> final along half a cosine."""
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * min(max(t, 0.0), 1.0)))


def _mean(val: dict[str, float]) -> float:
    return float(np.mean(list(val.values())))


def _test_metrics(net_logits: Callable[[Views], dict[str, np.ndarray]], data: TrainingData) -> tuple[LogitCalibration, dict]:
    """Platt scaling on all validation views pooled, then held-out metrics on each test view."""
    vr, vf = net_logits(data.val_real), net_logits(data.val_fake)
    cal = LogitCalibration.fit(np.concatenate(list(vr.values())), np.concatenate(list(vf.values())))
    tr, tf = net_logits(data.test_real), net_logits(data.test_fake)
    return cal, {m: cal.measure(tr[m], tf[m]) for m in tr}


def _game_d_logits(model: GAN) -> Callable[[Views], dict[str, np.ndarray]]:
    return lambda views: {m: analysis.analyse(model, x, None)["logit"] for m, x in views.images.items()}


def _machine(device: torch.device) -> str:
    from ..hardware import hardware_description  # the one description of the hardware, as training records it
    return hardware_description(device, 1)


def _candidates(model: GAN, opts: RefineOptions) -> list[str]:
    cands = [c for c in opts.candidates if CANDIDATES[c][1] != "classifier"
             or (model.discriminator.conditional and analysis.model_classifier(model) is not None)]
    if not cands:
        raise ValueError(f"none of the candidates {list(opts.candidates)} applies to this model "
                         f"(the classifier candidate needs a conditional D and the metric classifier)")
    return cands


def train_candidates(data: TrainingData, cands: list[str], opts: RefineOptions,
                     log: Callable[[str], None]) -> dict[str, CandidateRun]:
    """Screen every candidate for screen_steps, then train the best on to opts.steps."""
    runs = {}
    for name in cands:
        log(f"critic candidate {name}: {CANDIDATES[name][0]}, labels {CANDIDATES[name][1]}")
        runs[name] = CandidateRun(name, data, opts)
        runs[name].run(min(opts.screen_steps, opts.steps), log)
        runs[name].screen_score = round(runs[name].best["score"], 6)
    best = max(cands, key=lambda c: runs[c].best["score"])
    if runs[best].step < opts.steps and not runs[best].stopped:
        log(f"critic candidate {best} measures best on validation: training on to step {opts.steps}")
        runs[best].run(opts.steps, log)
    return runs


def _info(data: TrainingData, opts: RefineOptions, runs: dict[str, CandidateRun], chosen: str,
          cal: LogitCalibration, metrics: dict, d_metrics: dict, t0: float, c0: float) -> dict:
    """Everything critic.json records besides the architecture and the weights' hash."""
    return {"candidate": chosen, "start": CANDIDATES[chosen][0],
            "calibration": {**{k: v for k, v in cal.to_dict().items() if k != "metrics"},
                            "fit_on": f"validation: {data.n_val} held-out training images and as many unseen "
                                      f"samples, in each view ({', '.join(data.modes)}), pooled"},
            "metrics": metrics, "game_discriminator": d_metrics,
            "metrics_note": (f"held-out: real {data.test_split} images against samples of seeds never used in "
                             f"training or validation; clean {len(data.test_real.images['clean'])} per side, "
                             f"round trips {data.n_rt}"),
            "candidates": {c: r.record() for c, r in runs.items()},
            "training": {**{k: v for k, v in asdict(opts).items() if k != "data_dir"},
                         "n_train_real": len(data.train_real), "n_val": data.n_val, "views": list(data.modes),
                         "loss": "binary cross-entropy, real vs fresh samples of the frozen EMA generator",
                         "optimizer": f"Adam(lr={opts.lr}, betas=({opts.beta1}, {opts.beta2})), cosine decay to "
                                      f"{opts.lr * opts.lr_final:g} over {opts.steps} steps",
                         "wall_time_s": round(time.perf_counter() - t0, 1),
                         "cpu_time_s": round(time.process_time() - c0, 1), "threads": torch.get_num_threads(),
                         "machine": _machine(next(data.model.generator.parameters()).device),
                         "torch_version": torch.__version__}}


def refine_critic(model: GAN, opts: RefineOptions | None = None, *, log: Callable[[str], None] = print) -> RefineResult:
    """Train the candidate critics against the frozen generator, keep the best on validation, measure it on test."""
    opts = opts or RefineOptions()
    opts.check()
    t0, c0 = time.perf_counter(), time.process_time()
    model.eval().requires_grad_(False)
    cands = _candidates(model, opts)
    data = TrainingData(model, opts, log)
    runs = train_candidates(data, cands, opts, log)
    chosen = max(cands, key=lambda c: runs[c].best["score"])
    net, rule = runs[chosen].best_net(), runs[chosen].rule
    cal, metrics = _test_metrics(lambda v: side_logits(net, rule, v), data)
    cal.metrics = metrics["clean"]
    _, d_metrics = _test_metrics(_game_d_logits(model), data)
    info = _info(data, opts, runs, chosen, cal, metrics, d_metrics, t0, c0)
    for name, r in runs.items():  # reported for the record; every choice above used validation data only
        n = r.best_net()
        tr, tf = side_logits(n, r.rule, data.test_real), side_logits(n, r.rule, data.test_fake)
        info["candidates"][name]["test_auc"] = {m: round(roc_auc(tr[m], tf[m]), 6) for m in tr}
    log(f"kept {chosen}: test ROC AUC " + ", ".join(f"{m} {v['auc']:.4f}" for m, v in metrics.items())
        + " (game D: " + ", ".join(f"{m} {v['auc']:.4f}" for m, v in d_metrics.items()) + ")")
    return RefineResult(net=net.cpu(), label_rule=rule, info=info)


def write_critic(folder: str | Path, *, model: GAN | None = None, data_dir: str | Path | None = None,
                 **options) -> Path:
    """Refine a critic for the model in folder (``gan.scoring.refine``) and save it there; returns critic.json."""
    folder = Path(folder)
    if model is None:
        if not (folder / "config.json").is_file():
            raise ValueError(f"{folder} is not a model folder (no config.json); pass the folder train.py wrote")
        model = GAN.from_pretrained(str(folder))
    result = refine_critic(model, RefineOptions(data_dir=str(data_dir) if data_dir else None, **options))
    return save_critic(folder, result.net, result.label_rule, result.info)


def format_report(meta: dict) -> str:
    """The candidates compared on validation data and the chosen critic's held-out test metrics, as text."""
    lines = ["candidate            val AUC clean  upload  photo  mean   steps (best)  seconds"]
    for name, c in (meta.get("candidates") or {}).items():
        v = c["val"]
        mark = " <- kept" if name == meta.get("candidate") else ""
        auc = [f"{v[m]:.4f}" if m in v else "   -  " for m in MODES]  # a view the mix left out: not measured
        lines.append(f"{name:<20} {auc[0]:>13}  {auc[1]}  {auc[2]}  {c['score']:.4f}  "
                     f"{c['steps']:>5} ({c['best_step']:>5})  {c['seconds']:>7.1f}{mark}")
    lines.append("held-out test (real test images vs unseen samples):  ROC AUC  AP      acc@0.5  ECE     FPR real")
    for who, key in (("critic", "metrics"), ("game D", "game_discriminator")):
        for view, m in (meta.get(key) or {}).items():
            lines.append(f"  {who:<7} {view:<44} {m['auc']:.4f}   {m['ap']:.4f}  {m['accuracy']:.4f}   "
                         f"{m['ece']:.4f}  {m['fpr_real']:.4f}")
    return "\n".join(lines)


def parse_mix(text: str) -> dict[str, float]:
    """"clean=1,upload=1,photo=2" -> the views' shares of a batch, normalised; ValueError naming a bad part."""
    mix = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, value = part.partition("=")
        try:
            mix[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--mix: {part!r} is not VIEW=NUMBER (views: {', '.join(MODES)})") from None
    total = sum(mix.values())
    if not mix or set(mix) - set(MODES) or min(mix.values()) < 0 or total <= 0:
        raise ValueError(f"--mix {text!r} must weigh views among {', '.join(MODES)} with numbers >= 0")
    return {k: v / total for k, v in mix.items()}


def main(argv: list[str] | None = None, prog: str = "fashion-gan critic") -> int:
    """Command line: fashion-gan critic DIR -> DIR/critic.safetensors + critic.json and a report."""
    d = RefineOptions()
    p = argparse.ArgumentParser(prog=prog,
                                description="Refine a critic (the optimal discriminator for the final generator) "
                                            "and save it in the model folder.")
    p.add_argument("folder", help="model folder (config.json + *.safetensors)")
    p.add_argument("--steps", type=int, default=d.steps,
                   help=f"most training steps of the best candidate (default: {d.steps})")
    p.add_argument("--screen-steps", type=int, default=d.screen_steps,
                   help=f"steps of every candidate before the best is chosen (default: {d.screen_steps})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"real (and as many generated) images per step "
                                                                        f"(default: {d.batch_size})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate (default: {d.lr})")
    p.add_argument("--candidates", default=",".join(d.candidates),
                   help=f"comma-separated candidates to try (default: {','.join(d.candidates)})")
    p.add_argument("--continue", dest="cont", action="store_true",
                   help="train the folder's own critic on (candidate 'continue') instead of the candidates")
    p.add_argument("--mix", default=None, help="share of each view in a batch, e.g. clean=1,upload=1,photo=2 "
                                               "(default: equal shares)")
    p.add_argument("--pool", type=int, default=d.pool, help=f"round-tripped images per side and mode (default: {d.pool})")
    p.add_argument("--n-val", type=int, default=d.n_val, help=f"validation images per side (default: {d.n_val})")
    p.add_argument("--n-test", type=int, default=d.n_test, help=f"test images per side (default: {d.n_test})")
    p.add_argument("--n-train", type=int, default=None, help="use at most N real training images (default: all)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default: {d.seed})")
    p.add_argument("--data-dir", default=None, help="folder with the data set files (default: auto)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    try:
        extra = {"mix": parse_mix(a.mix)} if a.mix else {}
        cands = ("continue",) if a.cont else tuple(c.strip() for c in a.candidates.split(",") if c.strip())
        path = write_critic(a.folder, data_dir=a.data_dir, steps=a.steps, screen_steps=a.screen_steps,
                            batch_size=a.batch_size, lr=a.lr, candidates=cands, pool=a.pool, n_val=a.n_val,
                            n_test=a.n_test, n_train=a.n_train, seed=a.seed,
                            start_from=a.folder if a.cont else None, **extra)
    except (ValueError, OSError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    meta = json.loads(path.read_text())
    print(format_report(meta))
    print(f"wrote {path.parent / CRITIC_FILE} ({(path.parent / CRITIC_FILE).stat().st_size / 1e6:.2f} MB) and {path.name} "
          f"in {time.perf_counter() - t0:.0f} s")
    return 0
