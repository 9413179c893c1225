"""What a run writes besides checkpoints: progress grids, evaluations and best/, and the final model folder.

All of it is rank 0's alone and calls no collective (see distributed.py).
"""

from __future__ import annotations

import copy
import json
import math
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, TextIO

import torch
import torch.nn as nn

from ..data import ImageData
from ..evalreport import EVAL_FILE
from ..fileio import atomic_write_json, atomic_write_text
from ..finish import finish
from ..models import Discriminator, Generator
from ..pretrained import GAN
from ..visualize import grid_image, plot_curves, read_metrics, save_gif
from ..hardware import hardware_description
from .run import PROGRESS_DIR, Run



@torch.no_grad()
def recalibrate_batchnorm(G: Generator, num_classes: int, *, batches: int = 8, batch_size: int = 256,
                          seed: int = 12345) -> None:
    """Re-estimate G's BatchNorm statistics for its current weights (EMA weights drift from the live stats)."""
    bns = [m for m in G.modules() if isinstance(m, nn.BatchNorm2d)]
    if not bns:
        return
    dev = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    moms = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    G.train()
    for _ in range(batches):
        z = torch.randn(batch_size, G.cfg.z_dim, generator=gen).to(dev)
        y = torch.randint(0, num_classes, (batch_size,), generator=gen).to(dev) if num_classes else None
        G(z, y)
    for m, mom in zip(bns, moms):
        m.momentum = mom
    G.eval()


def snapshot(run: Run) -> Generator:
    """A copy of G_ema with BatchNorm statistics for its own weights (what is sampled and shipped)."""
    G_snap = copy.deepcopy(run.G_ema)
    recalibrate_batchnorm(G_snap, run.num_classes)
    return G_snap


def save_progress(run: Run) -> None:
    """The fixed-noise grid at run.step (progress/step_*.png, the frames of progress.gif)."""
    with torch.no_grad():
        imgs = snapshot(run)(run.fixed_z, run.fixed_y)
    (run.out / PROGRESS_DIR).mkdir(exist_ok=True)
    grid_image(imgs, nrow=10).save(run.out / PROGRESS_DIR / f"step_{run.step:08d}.png")


def as_gan(G: Generator, D: Discriminator, data: ImageData, dataset: str) -> GAN:
    """G and D as the GAN wrapper that saves a model folder."""
    model = GAN(generator=asdict(G.cfg), discriminator=asdict(D.cfg), dataset=dataset,
                class_names=data.class_names if G.cfg.num_classes else None)
    model.generator.load_state_dict(G.state_dict())
    model.discriminator.load_state_dict(D.state_dict())
    return model.cpu().eval()


def evaluate(run: Run, evaluate_fn: Callable[[Generator], dict], metrics_f: TextIO) -> None:
    """Metrics of G_ema at run.step (a metrics.jsonl row); a new best FID is saved to best/."""
    G_snap = snapshot(run)
    t_eval = wall_time(run)  # training time at this evaluation (the evaluation itself not yet counted)
    try:
        res = evaluate_fn(G_snap)
    except Exception as e:  # evaluation must never kill a training run
        print(f"warning: evaluation at step {run.step} failed ({type(e).__name__}: {str(e)[:200]}); training goes on")
        return
    if not res:
        return
    row = {"step": run.step, **{k: float(v) for k, v in res.items() if isinstance(v, (int, float))},
           "time_s": round(t_eval, 2)}
    metrics_f.write(json.dumps(row) + "\n"); metrics_f.flush()
    print(f"step {run.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "step"))
    fid = row.get("fid", math.inf)
    if fid < run.best_fid:
        run.best_fid = fid
        as_gan(G_snap, run.D, run.data, run.cfg.dataset).save_pretrained(run.out / "best")
        atomic_write_json(run.out / "best" / "best.json", row)


def write_model_folder(run: Run, wall: float, fitted: dict | None = None) -> None:
    """The finished model folder: samples, progress GIF, curves, options, weights, then the extras and the card.

    `fitted` overrides options with what a --time-budget run fitted (its steps, epochs and time_budget_fit).
    """
    cfg, out = run.cfg, run.out
    G_final = snapshot(run)
    model = as_gan(G_final, run.D, run.data, cfg.dataset)
    with torch.no_grad():
        imgs = G_final(run.fixed_z, run.fixed_y)
    grid_image(imgs, nrow=10, scale=3).save(out / "samples.png")
    save_gif(sorted((out / PROGRESS_DIR).glob("step_*.png")), out / "progress.gif")
    plot_curves(out / "metrics.jsonl", out / "curves.png")
    world = run.d.world
    options = {**asdict(cfg), "world_size": world, "device": str(run.device),
               "hardware": hardware_description(run.device, world), "wall_time_s": round(wall, 1),
               "steps_done": run.total, "images_seen": run.total * run.batch * world,
               "torch_version": torch.__version__, "python": platform.python_version(),
               "num_train_images": len(run.data), **({"base_model": run.base} if run.base else {}),
               **({"resumes": run.resumes} if run.resumes else {}), **(fitted or {})}
    atomic_write_json(out / "training_options.json", options)
    # an evaluation of earlier weights (a run continued with --resume) must not be shown as this model's
    (out / EVAL_FILE).unlink(missing_ok=True)
    model.save_pretrained(out)  # weights, then config.json: its presence marks the run as finished
    # the extras once per finished Fashion-MNIST model (smoke runs with --limit skip them), then the card, last
    extras = cfg.dataset == "fashion-mnist" and cfg.limit is None and cfg.extras
    finish(out, extras=None if extras else ())
    print(f"model folder written to {out} ({run.total} steps, {wall / 60:.1f} min on {options['hardware']})")


def truncate_metrics(path: Path, step: int) -> None:
    """Drop metrics rows logged after the checkpoint we resume from (they will be logged again)."""
    rows = [r for r in read_metrics(path) if r.get("step", 0) <= step]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def wall_time(run: Run) -> float:
    """Seconds of training so far, earlier attempts (resume) included."""
    return run.wall_before + time.time() - run.t_start
