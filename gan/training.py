"""The training loop: alternating D and G updates on a data set held in (device) memory.

One iteration, as in pytorch/examples' DCGAN:
  (1) update D: maximise log D(x) + log(1 - D(G(z)))   (or the hinge / WGAN-GP critic objective)
  (2) update G: maximise log D(G(z))                    (non-saturating), every ``d_steps`` iterations
  (3) update the EMA copy of G (the one that is sampled and shipped)

Single process, or many with ``torchrun`` (one process per GPU, or gloo on CPU): every rank reads its
own shard of each epoch's permutation, gradients are averaged with one flat all-reduce per update
(the StyleGAN2-ADA way, which unlike a DDP wrapper also supports R1/GP double-backward), and only rank 0
writes files.  Runs are reproducible on the CPU: a seed fixes the initial weights, the data order
(one permutation per epoch, derived from seed and epoch) and the noise; a checkpoint stores every RNG
state, so ``--resume`` continues exactly where a killed run stopped.
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
import torch.nn as nn

from . import checkpoint as ckpt
from .augment import diff_augment, parse_policy
from .data import DATASETS, ImageData, load_dataset, to_float
from .losses import LOSSES, d_loss_fn, g_loss_fn, gradient_penalty, r1_penalty
from .models import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, generate
from .pretrained import GAN
from .visualize import grid_image, plot_curves, read_metrics, save_gif

FINISHED_MARKER = "config.json"
CKPT_DIR = "ckpts"
PROGRESS_DIR = "progress"
# keys that change the model or the data order: a checkpoint only resumes a run that agrees on them
_RESUME_KEYS = ("dataset", "resolution", "channels", "conditional", "z_dim", "g_width", "d_width",
                "spectral_norm", "loss", "seed", "batch_size", "limit", "d_steps")


class TrainingError(RuntimeError):
    """A run cannot start or continue (bad options, finished output folder, divergence)."""


@dataclass
class TrainConfig:
    """Every training option; ``python train.py --help`` lists them with these defaults."""

    dataset: str = "fashion-mnist"  # one of fashion-mnist, mnist, cifar10, folder
    data_dir: str | None = None  # where the data lives (IDX files, torchvision root, or image folder)
    out: str = "runs/fashion-mnist"  # output model folder
    epochs: int = 35
    steps: int | None = None  # total iterations; overrides --epochs when set
    batch_size: int = 128  # per process
    limit: int | None = None  # use only the first N training images (smoke runs)
    resolution: int | None = None  # 28, 32 or 64; default: the data set's own (folder: 64)
    channels: int | None = None  # 1 or 3; default: the data set's own
    conditional: bool = True  # class-conditional G and projection D (p(x|y))
    z_dim: int = 64
    g_width: int = 32
    d_width: int = 32
    spectral_norm: bool = True
    loss: str = "hinge"  # ns (non-saturating, the 2014 paper's), hinge, wgan-gp
    r1: float = 0.0  # R1 penalty weight gamma (0 = off)
    gp_weight: float = 10.0  # WGAN-GP weight (loss=wgan-gp only)
    d_steps: int = 1  # D updates per G update
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    ema: bool = True
    ema_beta: float = 0.999
    augment: str = "translation"  # DiffAugment policy: comma-separated color, translation, cutout; "" = off
    seed: int = 0
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    amp: bool = True  # bf16 autocast on GPU (ignored on CPU)
    compile: bool = False  # torch.compile G and D (GPU)
    channels_last: bool = True
    sample_every: int = 500  # steps between progress grids
    ckpt_every: int = 500  # steps between checkpoints
    log_every: int = 50  # steps between metrics.jsonl rows
    eval_every: int = 5  # epochs between FID evaluations (0 = off; needs the metric classifier)
    eval_samples: int = 5000
    resume: bool = False
    overwrite: bool = False
    max_nonfinite: int = 5  # consecutive NaN/inf steps tolerated (each skips the batch, halves the LRs)

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise TrainingError(f"--dataset {self.dataset!r} is unknown; choose one of {', '.join(DATASETS)}")
        if self.loss not in LOSSES:
            raise TrainingError(f"--loss {self.loss!r} is unknown; choose one of {', '.join(LOSSES)}")
        for name in ("epochs", "batch_size", "d_steps", "sample_every", "ckpt_every", "log_every", "z_dim",
                     "g_width", "d_width", "max_nonfinite", "eval_samples"):
            if getattr(self, name) < 1:
                raise TrainingError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name in ("steps", "limit"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise TrainingError(f"--{name} must be >= 1, got {v}")
        if self.resolution is not None and self.resolution not in (28, 32, 64):
            raise TrainingError(f"--resolution {self.resolution} is not supported; use 28, 32 or 64")
        if self.channels is not None and self.channels not in (1, 3):
            raise TrainingError(f"--channels {self.channels} is not supported; use 1 or 3")
        if not 0 <= self.ema_beta < 1:
            raise TrainingError(f"--ema-beta must be in [0, 1), got {self.ema_beta}")
        if self.lr_g <= 0 or self.lr_d <= 0:
            raise TrainingError("--lr-g and --lr-d must be > 0")
        if self.r1 < 0 or self.eval_every < 0:
            raise TrainingError("--r1 and --eval-every must be >= 0")
        try:
            parse_policy(self.augment)
        except ValueError as e:
            raise TrainingError(f"--augment: {e}") from None


# ---- distributed helpers ------------------------------------------------------------------------
@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_hint: str) -> Dist:
    """Initialise torch.distributed when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    use_cuda = torch.cuda.is_available() and device_hint != "cpu"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local)
    return Dist(dist.get_rank(), dist.get_world_size(), local)


def _all_reduce_grads(params: list[nn.Parameter], world: int) -> None:
    """Average gradients across ranks with one flat all-reduce."""
    grads = [p.grad for p in params if p.grad is not None]
    if world <= 1 or not grads:
        return
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= world
    for g, f in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads)):
        g.copy_(f)


def _broadcast(module: nn.Module, world: int) -> None:
    if world > 1:
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def resolve_device(name: str, d: Dist) -> torch.device:
    """'auto' picks cuda:LOCAL_RANK when a GPU exists, else the CPU; a missing GPU is a clear error."""
    if name == "auto":
        return torch.device(f"cuda:{d.local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:  # torch's own message lists 20 device types and does not name the flag
        raise TrainingError(f"--device {name} is not supported; use auto, cpu or cuda[:N]") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"--device {name}: no CUDA GPU is available here; use --device cpu or auto")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device(f"cuda:{d.local_rank}")
    if dev.type not in ("cpu", "cuda"):
        raise TrainingError(f"--device {name} is not supported; use auto, cpu or cuda[:N]")
    return dev


def hardware_description(device: torch.device, world: int) -> str:
    """Human-readable hardware string for the model card."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return f"{world} x {name}" if world > 1 else name
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{world} process(es) on CPU: {cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"


# ---- the run ------------------------------------------------------------------------------------
def build_models(cfg: TrainConfig, data: ImageData) -> tuple[Generator, Discriminator]:
    """G and D shaped for the data set."""
    n_cls = data.num_classes if cfg.conditional else 0
    if cfg.conditional and n_cls < 2:
        raise TrainingError(f"--conditional needs a labelled data set with >= 2 classes; {cfg.dataset} "
                            f"has {n_cls}. Use --no-conditional (or class sub-folders for --dataset folder)")
    G = Generator(GeneratorConfig(z_dim=cfg.z_dim, resolution=data.resolution, channels=data.channels,
                                  width=cfg.g_width, num_classes=n_cls))
    D = Discriminator(DiscriminatorConfig(resolution=data.resolution, channels=data.channels, width=cfg.d_width,
                                          num_classes=n_cls, spectral_norm=cfg.spectral_norm))
    return G, D


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The data order of one epoch, a function of (seed, epoch) only."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


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


def _ema_update(G_ema: nn.Module, G: nn.Module, beta: float) -> None:
    with torch.no_grad():
        ema_p = list(G_ema.parameters())
        torch._foreach_lerp_(ema_p, list(G.parameters()), 1.0 - beta)
        for b_ema, b in zip(G_ema.buffers(), G.buffers()):
            b_ema.copy_(b)


def prepare_output(cfg: TrainConfig) -> Path:
    """Check the output folder: never silently overwrite a finished run or an unfinished one."""
    out = Path(cfg.out)
    finished = (out / FINISHED_MARKER).is_file()
    has_ckpt = bool(ckpt.list_checkpoints(out / CKPT_DIR))
    if cfg.overwrite:
        for name in (CKPT_DIR, PROGRESS_DIR, "best"):
            shutil.rmtree(out / name, ignore_errors=True)
        for name in ("metrics.jsonl", FINISHED_MARKER):
            (out / name).unlink(missing_ok=True)
    elif finished and not cfg.resume:
        raise TrainingError(f"{out} already holds a finished model; pass a new --out, or --overwrite to replace it")
    elif has_ckpt and not cfg.resume:
        raise TrainingError(f"{out} holds an unfinished run; pass --resume to continue it or --overwrite to restart")
    return out  # created by train() once the data has loaded: a bad --data-dir leaves no empty folder


def train(cfg: TrainConfig, *, evaluate_fn: Callable[[Generator], dict] | None = None,
          data: ImageData | None = None, progress: bool = True) -> Path:
    """Run (or resume) a training run and write the model folder; returns its path."""
    d = setup_distributed(cfg.device)
    device = resolve_device(cfg.device, d)
    out = Path(cfg.out)
    if d.main:
        prepare_output(cfg)
    if d.world > 1:
        dist.barrier()

    # ---- data: the whole set as one uint8 tensor on the device -------------------------------
    if data is None:
        data = load_dataset(cfg.dataset, data_dir=cfg.data_dir, resolution=cfg.resolution, channels=cfg.channels)
    data = data.subset(cfg.limit)
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
    n = len(data)
    shard = n // d.world
    if shard < 1:
        raise TrainingError(f"{n} images cannot be split over {d.world} processes")
    batch = min(cfg.batch_size, shard)
    steps_per_epoch = max(shard // batch, 1)
    total = cfg.steps or cfg.epochs * steps_per_epoch
    data = data.to(device)
    X, Y = data.images, data.labels

    torch.manual_seed(cfg.seed)
    G, D = build_models(cfg, data)
    n_cls = G.cfg.num_classes
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    G.to(device, memory_format=fmt)
    D.to(device, memory_format=fmt)
    _broadcast(G, d.world)
    _broadcast(D, d.world)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_G = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_D = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    d_loss, g_loss = d_loss_fn(cfg.loss), g_loss_fn(cfg.loss)
    policy = parse_policy(cfg.augment)
    aug = (lambda x: diff_augment(x, policy)) if policy else (lambda x: x)
    G_run = torch.compile(G) if cfg.compile else G
    D_run = torch.compile(D) if cfg.compile else D
    amp = cfg.amp and device.type == "cuda"

    # fixed noise for progress grids: row i shows class i (conditional) or 10 free samples
    rows = min(n_cls, 10) if n_cls else 8
    fixed_z = torch.randn(rows * 10, cfg.z_dim, generator=torch.Generator().manual_seed(cfg.seed + 777)).to(device)
    fixed_y = torch.arange(rows, device=device).repeat_interleave(10) if n_cls else None

    start, best_fid, lr_scale, wall_before = 0, math.inf, 1.0, 0.0
    if cfg.resume:
        loaded = ckpt.load_latest(out / CKPT_DIR, map_location=device)
        if loaded is None:
            if d.main:
                print(f"--resume: no checkpoint in {out / CKPT_DIR}; starting a new run")
        else:
            state, path = loaded
            _check_resumable(cfg, state["config"], path)
            G.load_state_dict(state["G"]); G_ema.load_state_dict(state["G_ema"]); D.load_state_dict(state["D"])
            opt_G.load_state_dict(state["opt_G"]); opt_D.load_state_dict(state["opt_D"])
            start, best_fid, lr_scale = state["step"], state["best_fid"], state["lr_scale"]
            wall_before = state.get("wall_s", 0.0)
            rng = state["rng_cpu"]
            torch.set_rng_state(rng[d.rank] if len(rng) == d.world else torch.Generator().manual_seed(cfg.seed + 1000 * d.rank + start).get_state())
            if device.type == "cuda" and state.get("rng_cuda") and len(state["rng_cuda"]) == d.world:
                torch.cuda.set_rng_state(state["rng_cuda"][d.rank].cpu(), device)
            if d.main:
                print(f"resumed from {path} at step {start}/{total}")
                _truncate_metrics(out / "metrics.jsonl", start)
    if start == 0:
        torch.manual_seed(cfg.seed + 1000 * d.rank)  # per-rank noise stream
        if d.main:  # a fresh start (also --resume with no checkpoint yet) never inherits a killed attempt's rows
            _truncate_metrics(out / "metrics.jsonl", 0)

    def set_lr() -> None:
        for o, lr in ((opt_G, cfg.lr_g), (opt_D, cfg.lr_d)):
            for grp in o.param_groups:
                grp["lr"] = lr * lr_scale
    set_lr()

    def write_checkpoint(step: int) -> None:
        rng_cpu = [torch.get_rng_state()]
        rng_cuda = [torch.cuda.get_rng_state(device)] if device.type == "cuda" else []
        if d.world > 1:
            gathered = [None] * d.world
            dist.all_gather_object(gathered, (rng_cpu[0], rng_cuda[0] if rng_cuda else None))
            rng_cpu = [g[0] for g in gathered]
            rng_cuda = [g[1] for g in gathered] if rng_cuda else []
        if d.main:
            ckpt.save_checkpoint({
                "step": step, "G": G.state_dict(), "G_ema": G_ema.state_dict(), "D": D.state_dict(),
                "opt_G": opt_G.state_dict(), "opt_D": opt_D.state_dict(), "rng_cpu": rng_cpu,
                "rng_cuda": rng_cuda, "config": asdict(cfg), "best_fid": best_fid, "lr_scale": lr_scale,
                "wall_s": wall_before + time.time() - t_start,
            }, out / CKPT_DIR, step)

    def save_progress(step: int) -> None:
        if not d.main:
            return
        G_snap = copy.deepcopy(G_ema)
        recalibrate_batchnorm(G_snap, n_cls)
        with torch.no_grad():
            imgs = G_snap(fixed_z, fixed_y)
        (out / PROGRESS_DIR).mkdir(exist_ok=True)
        grid_image(imgs, nrow=10).save(out / PROGRESS_DIR / f"step_{step:08d}.png")

    bar = None
    if d.main and progress:
        try:
            from tqdm.auto import tqdm
            bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True, file=sys.stderr)
        except ImportError:
            bar = None
    metrics_f = open(out / "metrics.jsonl", "a") if d.main else None
    acc = torch.zeros(4, device=device)  # sums of d_loss, g_loss, D(x), D(G(z))
    acc_n, nonfinite, t_start, t_log = 0, 0, time.time(), time.time()
    img_log = 0
    perm, perm_epoch = None, -1
    G.train(); D.train()
    if start == 0:
        save_progress(0)

    step = start
    try:
        while step < total:
            epoch, it = divmod(step, steps_per_epoch)
            if epoch != perm_epoch:
                perm = epoch_permutation(n, cfg.seed, epoch)[d.rank * shard:(d.rank + 1) * shard].to(device)
                perm_epoch = epoch
            idx = perm[it * batch:(it + 1) * batch]
            real = to_float(X[idx]).contiguous(memory_format=fmt)  # (B, C, R, R) in [-1, 1]
            y = Y[idx] if n_cls else None
            z = torch.randn(batch, cfg.z_dim, device=device)

            # (1) update D: maximise log D(x) + log(1 - D(G(z)))
            D.requires_grad_(True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                fake = G_run(z, y)
                real_in = aug(real)
                if cfg.r1 > 0:
                    real_in = real_in.detach().requires_grad_(True)
                logits_real = D_run(real_in, y).float()
                logits_fake = D_run(aug(fake.detach()), y).float()
                loss_D = d_loss(logits_real, logits_fake)
                if cfg.loss == "wgan-gp":
                    loss_D = loss_D + cfg.gp_weight * gradient_penalty(D_run, real, fake.detach(), y)
                if cfg.r1 > 0:
                    loss_D = loss_D + 0.5 * cfg.r1 * r1_penalty(logits_real, real_in)
            opt_D.zero_grad(set_to_none=True)
            loss_D.backward()
            _all_reduce_grads(list(D.parameters()), d.world)

            # (2) update G: maximise log D(G(z)) (non-saturating) / -D(G(z)) (hinge, WGAN)
            do_g = (step + 1) % cfg.d_steps == 0
            if do_g:
                D.requires_grad_(False)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    loss_G = g_loss(D_run(aug(fake), y).float())
                opt_G.zero_grad(set_to_none=True)
                loss_G.backward()
                _all_reduce_grads(list(G.parameters()), d.world)
            else:
                loss_G = torch.zeros((), device=device)

            # NaN/inf guard: skip the update and halve the learning rates; stop after too many in a row
            ok = torch.isfinite(loss_D) & torch.isfinite(loss_G)
            if d.world > 1:
                ok_t = ok.float()
                dist.all_reduce(ok_t, op=dist.ReduceOp.MIN)
                ok = ok_t.bool()
            if not bool(ok):
                nonfinite += 1
                lr_scale *= 0.5
                set_lr()
                if d.main:
                    print(f"warning: non-finite loss at step {step} (D {loss_D.item()}, G {loss_G.item()}); "
                          f"skipped the batch, learning rates now x{lr_scale:g}")
                if nonfinite >= cfg.max_nonfinite:
                    raise TrainingError(f"training diverged: {nonfinite} consecutive non-finite losses ending at "
                                        f"step {step}; the last good checkpoint is in {out / CKPT_DIR}. Try a "
                                        f"lower --lr-g/--lr-d or --spectral-norm")
                step += 1
                continue
            nonfinite = 0
            opt_D.step()
            if do_g:
                opt_G.step()
                # (3) EMA of G's weights, with a warm-up so early samples are not dominated by the init
                if cfg.ema:
                    _ema_update(G_ema, G, min(cfg.ema_beta, (1 + step) / (10 + step)))
                else:
                    G_ema.load_state_dict(G.state_dict())
            with torch.no_grad():
                acc += torch.stack([loss_D.detach(), loss_G.detach(), torch.sigmoid(logits_real.detach()).mean(),
                                    torch.sigmoid(logits_fake.detach()).mean()])
            acc_n += 1
            img_log += batch * d.world
            step += 1

            if step % cfg.log_every == 0 or step == total:
                vals = (acc / max(acc_n, 1)).tolist()
                dt = time.time() - t_log
                row = {"step": step, "epoch": round(step / steps_per_epoch, 3), "d_loss": vals[0], "g_loss": vals[1],
                       "d_real": vals[2], "d_fake": vals[3], "img_per_s": img_log / max(dt, 1e-9),
                       "time_s": round(wall_before + time.time() - t_start, 2)}
                acc.zero_(); acc_n, img_log, t_log = 0, 0, time.time()
                if d.main:
                    metrics_f.write(json.dumps(row) + "\n"); metrics_f.flush()
                    if bar is not None:
                        bar.set_postfix(D=f"{vals[0]:.3f}", G=f"{vals[1]:.3f}", Dx=f"{vals[2]:.2f}",
                                        DGz=f"{vals[3]:.2f}", ips=f"{row['img_per_s']:.0f}")
            if bar is not None:
                bar.update(1)
            if step % cfg.sample_every == 0 or step == total:
                save_progress(step)
            if evaluate_fn is not None and cfg.eval_every and d.main and (
                    (step % (cfg.eval_every * steps_per_epoch) == 0) or step == total):
                best_fid = _evaluate(evaluate_fn, G_ema, n_cls, step, best_fid, out, metrics_f, D, data)
            if step % cfg.ckpt_every == 0 or step == total:
                write_checkpoint(step)
    finally:
        if bar is not None:
            bar.close()
        if metrics_f is not None:
            metrics_f.close()

    if d.main:
        wall = wall_before + time.time() - t_start
        _write_model_folder(cfg, out, G_ema, D, data, n_cls, total, wall, device, d.world, fixed_z, fixed_y)
    if d.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return out


def _evaluate(evaluate_fn: Callable[[Generator], dict], G_ema: Generator, n_cls: int, step: int, best_fid: float,
              out: Path, metrics_f, D: Discriminator, data: ImageData) -> float:
    G_snap = copy.deepcopy(G_ema)
    recalibrate_batchnorm(G_snap, n_cls)
    try:
        res = evaluate_fn(G_snap)
    except Exception as e:  # evaluation must never kill a training run
        print(f"warning: evaluation at step {step} failed ({type(e).__name__}: {str(e)[:200]}); training goes on")
        return best_fid
    if not res:
        return best_fid
    row = {"step": step, **{k: float(v) for k, v in res.items() if isinstance(v, (int, float))}}
    metrics_f.write(json.dumps(row) + "\n"); metrics_f.flush()
    fid = row.get("fid", math.inf)
    print(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "step"))
    if fid < best_fid:
        best_fid = fid
        model = _as_gan(G_snap, D, data)
        model.save_pretrained(out / "best")
        (out / "best" / "best.json").write_text(json.dumps(row, indent=2))
    return best_fid


def _as_gan(G: Generator, D: Discriminator, data: ImageData, dataset: str = "fashion-mnist") -> GAN:
    model = GAN(generator=asdict(G.cfg), discriminator=asdict(D.cfg), dataset=dataset,
                class_names=data.class_names if G.cfg.num_classes else None)
    model.generator.load_state_dict(G.state_dict())
    model.discriminator.load_state_dict(D.state_dict())
    return model.cpu().eval()


def _write_model_folder(cfg: TrainConfig, out: Path, G_ema: Generator, D: Discriminator, data: ImageData,
                        n_cls: int, total: int, wall: float, device: torch.device, world: int,
                        fixed_z: torch.Tensor, fixed_y: torch.Tensor | None) -> None:
    G_final = copy.deepcopy(G_ema)
    recalibrate_batchnorm(G_final, n_cls)
    model = _as_gan(G_final, D, data, cfg.dataset)
    with torch.no_grad():
        imgs = G_final(fixed_z, fixed_y)
    grid_image(imgs, nrow=10, scale=3).save(out / "samples.png")
    frames = sorted((out / PROGRESS_DIR).glob("step_*.png"))
    save_gif(frames, out / "progress.gif")
    plot_curves(out / "metrics.jsonl", out / "curves.png")
    options = {**asdict(cfg), "world_size": world, "device": str(device),
               "hardware": hardware_description(device, world), "wall_time_s": round(wall, 1), "steps_done": total,
               "images_seen": total * min(cfg.batch_size, len(data) // world) * world,
               "torch_version": torch.__version__, "python": platform.python_version(), "num_train_images": len(data)}
    (out / "training_options.json").write_text(json.dumps(options, indent=2))
    try:
        from .modelcard import write_model_card
        write_model_card(out, model=model, options=options)
    except Exception as e:  # the card is documentation: never fail a finished run over it
        print(f"warning: model card not written ({type(e).__name__}: {str(e)[:160]}); "
              f"run: python -m gan.modelcard {out}")
    model.save_pretrained(out)  # config.json last: its presence marks the run as finished
    if cfg.dataset == "fashion-mnist" and cfg.limit is None:  # smoke runs (--limit) skip the extras
        _postprocess(out)
    print(f"model folder written to {out} ({total} steps, {wall / 60:.1f} min on {options['hardware']})")


def _postprocess(out: Path) -> None:
    """Once per model: latent directions for the app's sliders and the D score calibration."""
    steps = (("directions", "gan.directions", "write_directions"), ("calibration", "gan.scoring", "write_calibration"))
    for what, module, fn in steps:
        try:
            import importlib
            getattr(importlib.import_module(module), fn)(out)
        except Exception as e:  # extras: never fail a finished run over them
            print(f"warning: {what} not written ({type(e).__name__}: {str(e)[:160]}); run: python -m {module} {out}")


def _check_resumable(cfg: TrainConfig, saved: dict, path: Path) -> None:
    diffs = [f"{k}: checkpoint {saved.get(k)!r} vs now {getattr(cfg, k)!r}" for k in _RESUME_KEYS
             if saved.get(k) != getattr(cfg, k)]
    if diffs:
        raise TrainingError(f"cannot resume from {path}: options differ ({'; '.join(diffs)}); "
                            f"use the original options or a new --out")


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metrics rows logged after the checkpoint we resume from (they will be logged again)."""
    rows = [r for r in read_metrics(path) if r.get("step", 0) <= step]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, path)


def config_fields() -> list:
    """The dataclass fields of TrainConfig (used by the CLI to build its arguments)."""
    return list(fields(TrainConfig))
