"""Setting a run up: the output folder, the device, the data on it, G, D, G_ema, optimisers, and --resume."""

from __future__ import annotations

import copy
import json
import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from .. import checkpoint as ckpt
from ..augment import diff_augment, parse_policy
from ..data import ImageData, epoch_batches, load_dataset
from ..fileio import sha256_file
from ..hardware import use_cpu_amp
from ..losses import d_loss_fn, g_loss_fn
from ..hub import load_pretrained
from ..models import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig
from ..pretrained import ModelFormatError
from .distributed import Dist, broadcast_module
from .options import RESUME_KEYS, TrainConfig, TrainingError
from .schedules import BudgetPlan, cooldown_start, lr_factor

FINISHED_MARKER = "config.json"
CKPT_DIR = "ckpts"
PROGRESS_DIR = "progress"


@dataclass
class Run:
    """Everything one training run holds; the loop's named steps read and update it."""

    cfg: TrainConfig
    d: Dist
    device: torch.device
    out: Path
    data: ImageData
    batch: int  # per rank
    steps_per_epoch: int
    total: int
    G: Generator
    D: Discriminator
    G_ema: Generator
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    d_loss: Callable
    g_loss: Callable
    aug: Callable[[torch.Tensor], torch.Tensor]
    G_run: nn.Module  # G, or its torch.compile wrapper
    D_run: nn.Module
    fixed_z: torch.Tensor  # (rows*10, z_dim) noise of the progress grids
    fixed_y: torch.Tensor | None
    fmt: torch.memory_format = torch.contiguous_format
    amp: bool = False
    step: int = 0
    best_fid: float = math.inf
    lr_scale: float = 1.0
    wall_before: float = 0.0  # seconds spent by earlier attempts of this run (resume)
    nonfinite: int = 0
    t_start: float = 0.0
    perm: torch.Tensor | None = field(default=None, repr=False)
    perm_epoch: int = -1
    base: dict | None = None  # --init-from: what the run started from (base_record), kept in its checkpoints
    resumes: list = field(default_factory=list)  # --resume with changed options: [{"step", "changed"}], kept too
    plan: BudgetPlan | None = None  # --time-budget: the fitted length and cool-down (budget.py), kept too

    @property
    def num_classes(self) -> int:
        return self.G.cfg.num_classes

    def decay_start(self) -> int | None:
        """First step of the learning-rate decay: the budget plan's, or the last --lr-cooldown of the run."""
        if self.plan is not None:
            return self.plan.decay_start
        return cooldown_start(self.total, self.cfg.lr_cooldown) if self.cfg.lr_cooldown else None

    def set_lr(self) -> None:
        """Learning rates for run.step: the schedule's factor x lr_scale (halved after each non-finite step)."""
        c = self.cfg
        f = self.lr_scale * lr_factor(c.lr_schedule, self.step, self.total, warmup=c.lr_warmup, final=c.lr_final,
                                      decay_start=self.decay_start())
        for o, lr in ((self.opt_G, c.lr_g), (self.opt_D, c.lr_d)):
            for grp in o.param_groups:
                grp["lr"] = lr * f


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


def load_data(cfg: TrainConfig, d: Dist, data: ImageData | None) -> tuple[ImageData, int, int, int]:
    """The (limited) data set and this rank's batch, steps per epoch and total steps."""
    if data is None:
        data = load_dataset(cfg.dataset, data_dir=cfg.data_dir, resolution=cfg.resolution, channels=cfg.channels)
    data = data.subset(cfg.limit)
    if len(data) // d.world < 1:
        raise TrainingError(f"{len(data)} images cannot be split over {d.world} processes")
    batch, steps_per_epoch = epoch_batches(len(data), cfg.batch_size, d.world)
    return data, batch, steps_per_epoch, cfg.steps or cfg.epochs * steps_per_epoch


def build_run(cfg: TrainConfig, d: Dist, device: torch.device, data: ImageData, batch: int,
              steps_per_epoch: int, total: int) -> Run:
    """Seeded G and D (identical on every rank), G_ema, optimisers, losses, augmentation and fixed noise."""
    torch.manual_seed(cfg.seed)
    G, D = build_models(cfg, data)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    G.to(device, memory_format=fmt)
    D.to(device, memory_format=fmt)
    broadcast_module(G, d)  # collective (start): every rank
    broadcast_module(D, d)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    policy = parse_policy(cfg.augment)
    n_cls = G.cfg.num_classes
    rows = min(n_cls, 10) if n_cls else 8  # progress grids: row i shows class i (conditional) or free samples
    fixed_z = torch.randn(rows * 10, cfg.z_dim, generator=torch.Generator().manual_seed(cfg.seed + 777)).to(device)
    cfg.cpu_amp = use_cpu_amp(cfg.cpu_amp, device)  # auto (None) -> what this run uses: training_options.json
    return Run(
        cfg=cfg, d=d, device=device, out=Path(cfg.out), data=data.to(device), batch=batch,
        steps_per_epoch=steps_per_epoch, total=total, G=G, D=D, G_ema=G_ema,
        opt_G=torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2)),
        opt_D=torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2)),
        d_loss=d_loss_fn(cfg.loss), g_loss=g_loss_fn(cfg.loss),
        aug=(lambda x: diff_augment(x, policy)) if policy else (lambda x: x),
        G_run=torch.compile(G) if cfg.compile else G, D_run=torch.compile(D) if cfg.compile else D,
        fixed_z=fixed_z, fixed_y=torch.arange(rows, device=device).repeat_interleave(10) if n_cls else None,
        fmt=fmt, amp=cfg.amp if device.type == "cuda" else cfg.cpu_amp)


def init_from(run: Run, source: str) -> None:
    """--init-from: G, G_ema and D take a trained model folder's weights (G_ema's for G too: the folder
    ships only the EMA generator); the optimisers and the step count start fresh."""
    try:
        model = load_pretrained(source)
    except ModelFormatError as e:
        raise TrainingError(f"--init-from: {e}") from None
    diffs = [f"{net}.{k}: {source} has {theirs!r}, this run {ours!r}"
             for net, mine, other in (("generator", run.G.cfg, model.generator.cfg),
                                      ("discriminator", run.D.cfg, model.discriminator.cfg))
             for k, ours in asdict(mine).items() if (theirs := asdict(other).get(k)) != ours]
    if diffs:
        raise TrainingError(f"--init-from {source}: its nets differ from this run's options "
                            f"({'; '.join(diffs)}); set the matching --z-dim/--g-width/--d-width")
    with torch.no_grad():
        for dst, src in ((run.G, model.generator), (run.G_ema, model.generator), (run.D, model.discriminator)):
            dst.load_state_dict(src.state_dict())
    run.base = base_record(source)
    if run.d.main:
        print(f"--init-from: G, G_ema and D start from {source}")


BASE_KEYS = ("epochs", "steps_done", "images_seen", "wall_time_s", "hardware", "loss", "r1", "r2", "reg_every",
             "g_width", "d_width", "cpu_amp", "base_model")


def base_record(source: str) -> dict:
    """What a warm-started run came from: the source, its generator's SHA-256 and its own training record (a
    local folder's training_options.json; a chain of --init-from runs nests), for training_options.json."""
    folder = Path(source)
    rec: dict = {"source": source}
    if (folder / "generator.safetensors").is_file():
        rec["generator_sha256"] = sha256_file(folder / "generator.safetensors")
    try:
        opts = json.loads((folder / "training_options.json").read_text())
    except (OSError, ValueError):
        return rec
    return {**rec, **{k: opts[k] for k in BASE_KEYS if k in opts}}


# options that do not change what is trained (where files go, how often to log or save): a --resume that changes
# any other option is recorded in run.resumes, and so in training_options.json and the model card
UNRECORDED = ("data_dir", "out", "device", "sample_every", "ckpt_every", "log_every", "eval_every", "eval_samples",
              "ddp_timeout", "extras", "resume", "overwrite", "max_nonfinite", "init_from")


def resume(run: Run) -> bool:
    """Load the newest checkpoint into run (weights, optimisers, step, RNG); False when there is none."""
    cfg, d = run.cfg, run.d
    loaded = ckpt.load_latest(run.out / CKPT_DIR, map_location=run.device)
    if loaded is None:
        if d.main:
            print(f"--resume: no checkpoint in {run.out / CKPT_DIR}; starting a new run")
        return False
    state, path = loaded
    diffs = [f"{k}: checkpoint {state['config'].get(k)!r} vs now {getattr(cfg, k)!r}" for k in RESUME_KEYS
             if state["config"].get(k) != getattr(cfg, k)]
    if diffs:
        raise TrainingError(f"cannot resume from {path}: options differ ({'; '.join(diffs)}); "
                            f"use the original options or a new --out")
    run.G.load_state_dict(state["G"]); run.G_ema.load_state_dict(state["G_ema"]); run.D.load_state_dict(state["D"])
    run.opt_G.load_state_dict(state["opt_G"]); run.opt_D.load_state_dict(state["opt_D"])
    run.step, run.best_fid, run.lr_scale = state["step"], state["best_fid"], state["lr_scale"]
    run.wall_before = state.get("wall_s", 0.0)
    run.base = state.get("base")
    run.resumes = list(state.get("resumes") or [])
    run.plan = BudgetPlan.from_dict(state["budget_plan"]) if state.get("budget_plan") else None  # budget.py decides
    changed = {k: [state["config"].get(k), v] for k, v in asdict(cfg).items()
               if k not in UNRECORDED and k in state["config"] and state["config"][k] != v}
    if changed:
        run.resumes.append({"step": run.step, "changed": changed})
    rng = state["rng_cpu"]
    torch.set_rng_state(rng[d.rank] if len(rng) == d.world else
                        torch.Generator().manual_seed(cfg.seed + 1000 * d.rank + run.step).get_state())
    if run.device.type == "cuda" and state.get("rng_cuda") and len(state["rng_cuda"]) == d.world:
        torch.cuda.set_rng_state(state["rng_cuda"][d.rank].cpu(), run.device)
    if d.main:
        print(f"resumed from {path} at step {run.step}/{run.total}")
        _warn_schedule_change(run, state["config"])
    return True


def _warn_schedule_change(run: Run, before: dict) -> None:
    """A decaying learning rate depends on the run's length: say so when --resume changes it."""
    cfg = run.cfg
    keys = ("steps", "epochs", "lr_schedule", "lr_final", "lr_warmup", "lr_cooldown")
    if cfg.time_budget or run.plan is not None:
        return  # budget.py says what a budgeted run (or the resume of one) does with its schedule
    old_cooldown = before.get("lr_cooldown") or 0.0
    if (cfg.lr_schedule == "constant" and not cfg.lr_cooldown and not old_cooldown) or all(
            before.get(k, getattr(cfg, k)) == getattr(cfg, k) for k in keys):
        return
    old_total = before.get("steps") or before.get("epochs", cfg.epochs) * run.steps_per_epoch
    was = lr_factor(before.get("lr_schedule", cfg.lr_schedule), run.step, old_total,
                    warmup=before.get("lr_warmup", cfg.lr_warmup), final=before.get("lr_final", cfg.lr_final),
                    decay_start=cooldown_start(old_total, old_cooldown) if old_cooldown else None)
    now = lr_factor(cfg.lr_schedule, run.step, run.total, warmup=cfg.lr_warmup, final=cfg.lr_final,
                    decay_start=run.decay_start())
    what = f"now spans {run.total} steps instead of {old_total}" if run.total != old_total else "changed"
    print(f"note: the {cfg.lr_schedule} learning-rate schedule {what}, "
          f"so the rate at step {run.step} goes from {was:.3g}x to {now:.3g}x the base rate")


def checkpoint_state(run: Run, rng_cpu: list, rng_cuda: list, wall_s: float) -> dict:
    """What a checkpoint holds: enough to continue bit-exactly."""
    return {"step": run.step, "G": run.G.state_dict(), "G_ema": run.G_ema.state_dict(), "D": run.D.state_dict(),
            "opt_G": run.opt_G.state_dict(), "opt_D": run.opt_D.state_dict(), "rng_cpu": rng_cpu,
            "rng_cuda": rng_cuda, "config": asdict(run.cfg), "best_fid": run.best_fid, "lr_scale": run.lr_scale,
            "wall_s": wall_s, "base": run.base, "resumes": run.resumes,
            "budget_plan": run.plan.as_dict() if run.plan is not None else None}
