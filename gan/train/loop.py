"""The training loop: alternating D and G updates on a data set held in (device) memory.

Single process, or many with ``torchrun`` (one process per GPU, or gloo on CPU): every rank reads its own
shard of each epoch's permutation, gradients are averaged with one flat all-reduce per update (the
StyleGAN2-ADA way, which unlike a DDP wrapper also supports R1/GP double-backward), and only rank 0 writes
files.  distributed.py lists every collective in the order all ranks reach it.  Runs are reproducible on
the CPU: a seed fixes the initial weights, the data order (one permutation per epoch, derived from seed and
epoch) and the noise; a checkpoint stores every RNG state, so ``--resume`` continues exactly where a killed
run stopped.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Callable, TextIO

import torch

from .. import checkpoint as ckpt
from . import budget
from ..data import ImageData
from ..models import Generator
from .distributed import Dist, barrier, gather_objects, setup_distributed, teardown
from .options import TrainConfig
from .outputs import evaluate, save_progress, truncate_metrics, wall_time, write_model_folder
from .run import (CKPT_DIR, Run, build_run, checkpoint_state, init_from, load_data, prepare_output, resolve_device,
                  resume)
from .step import train_step


def train(cfg: TrainConfig, *, evaluate_fn: Callable[[Generator], dict] | None = None,
          data: ImageData | None = None, progress: bool = True) -> Path:
    """Run (or resume) a training run and write the model folder; returns its path."""
    d = setup_distributed(cfg.device, cfg.ddp_timeout)
    try:
        run = _start(cfg, d, data)
        _loop(run, evaluate_fn, progress)
        barrier(d, "end of training", run.step)  # collective (end): every rank, after its last checkpoint
    finally:
        teardown(d)  # from here on no rank waits for another: rank 0 writes the folder alone
    if d.main:
        write_model_folder(run, wall_time(run), budget.record(run))
    return run.out


def _start(cfg: TrainConfig, d: Dist, data: ImageData | None) -> Run:
    """Set-up: check --out (rank 0), load the data, build the models, resume if asked."""
    device = resolve_device(cfg.device, d)
    if d.main:
        prepare_output(cfg)
    barrier(d, "output folder checked", 0)  # collective (start): every rank
    data, batch, steps_per_epoch, total = load_data(cfg, d, data)
    run = build_run(cfg, d, device, data, batch, steps_per_epoch, total)
    if d.main:
        run.out.mkdir(parents=True, exist_ok=True)
    if not (cfg.resume and resume(run)):
        if cfg.init_from:
            init_from(run, cfg.init_from)
        torch.manual_seed(cfg.seed + 1000 * d.rank)  # per-rank noise stream
    budget.start(run)  # --time-budget: the checkpoint's plan for the same budget, or a new one (run.total)
    run.set_lr()
    if d.main:  # a fresh start (also --resume with no checkpoint yet) never inherits a killed attempt's rows
        truncate_metrics(run.out / "metrics.jsonl", run.step)
    return run


def _loop(run: Run, evaluate_fn: Callable[[Generator], dict] | None, progress: bool) -> None:
    """Steps until run.total, with logging, progress grids, evaluation and checkpoints on schedule."""
    cfg, d = run.cfg, run.d
    bar = _progress_bar(run) if d.main and progress else None
    metrics_f = open(run.out / "metrics.jsonl", "a") if d.main else None
    log = {"acc": torch.zeros(4, device=run.device), "n": 0, "images": 0, "t": time.time()}
    run.t_start = time.time()
    run.G.train(); run.D.train()
    if run.step == 0 and d.main:
        save_progress(run)
    try:
        while run.step < run.total:
            stats = train_step(run)
            run.step += 1
            budget.after_step(run)  # --time-budget: may move run.total (the same on every rank)
            if bar is not None and bar.total != run.total:
                bar.total = run.total
            if stats is None:  # a skipped non-finite batch: nothing to log or save for it
                continue
            log["acc"] += stats
            log["n"] += 1
            log["images"] += run.batch * d.world
            if run.step % cfg.log_every == 0 or run.step == run.total:
                _log_row(run, log, metrics_f, bar)
            if bar is not None:
                bar.update(1)
            if d.main and (run.step % cfg.sample_every == 0 or run.step == run.total):
                save_progress(run)  # rank 0 alone, no collective
            if evaluate_fn is not None and cfg.eval_every and (
                    run.step % (cfg.eval_every * run.steps_per_epoch) == 0 or run.step == run.total):
                t_eval = time.time()
                if d.main:
                    evaluate(run, evaluate_fn, metrics_f)  # rank 0 alone; its metrics never sync
                barrier(d, "evaluation", run.step)  # collective (eval): the other ranks wait here
                budget.note_evaluation(run, time.time() - t_eval)
            if run.step % cfg.ckpt_every == 0 or run.step == run.total:
                write_checkpoint(run)
    finally:
        if bar is not None:
            bar.close()
        if metrics_f is not None:
            metrics_f.close()


def write_checkpoint(run: Run) -> None:
    """Gather every rank's RNG state (collective (ckpt): every rank), then rank 0 writes the checkpoint."""
    rng_cuda = torch.cuda.get_rng_state(run.device) if run.device.type == "cuda" else None
    gathered = gather_objects((torch.get_rng_state(), rng_cuda), run.d, run.step)
    if run.d.main:
        ckpt.save_checkpoint(checkpoint_state(run, [g[0] for g in gathered],
                                              [g[1] for g in gathered] if rng_cuda is not None else [],
                                              wall_time(run)), run.out / CKPT_DIR, run.step)


def _log_row(run: Run, log: dict, metrics_f: TextIO | None, bar) -> None:  # noqa: ANN001 (tqdm or None)
    """Average the accumulated losses into a metrics.jsonl row (rank 0 writes it) and reset."""
    vals = (log["acc"] / max(log["n"], 1)).tolist()
    dt = time.time() - log["t"]
    row = {"step": run.step, "epoch": round(run.step / run.steps_per_epoch, 3), "d_loss": vals[0],
           "g_loss": vals[1], "d_real": vals[2], "d_fake": vals[3], "lr_g": run.opt_G.param_groups[0]["lr"],
           "img_per_s": log["images"] / max(dt, 1e-9),
           "time_s": round(wall_time(run), 2)}
    log["acc"].zero_()
    log.update(n=0, images=0, t=time.time())
    if metrics_f is not None:
        metrics_f.write(json.dumps(row) + "\n"); metrics_f.flush()
    if bar is not None:
        bar.set_postfix(D=f"{vals[0]:.3f}", G=f"{vals[1]:.3f}", Dx=f"{vals[2]:.2f}", DGz=f"{vals[3]:.2f}",
                        ips=f"{row['img_per_s']:.0f}")


def _progress_bar(run: Run):  # noqa: ANN202 (tqdm or None)
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=run.total, initial=run.step, unit="step", dynamic_ncols=True, file=sys.stderr)
