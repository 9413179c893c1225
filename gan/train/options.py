"""Every training option (``python train.py --help`` lists them), checked once when the run is configured."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from ..augment import parse_policy
from ..data import DATASETS
from ..losses import LOSSES
from .schedules import DEFAULT_COOLDOWN, LR_SCHEDULES

# keys that change the model or the data order: a checkpoint only resumes a run that agrees on them
RESUME_KEYS = ("dataset", "resolution", "channels", "conditional", "z_dim", "g_width", "d_width",
               "spectral_norm", "loss", "seed", "batch_size", "limit", "d_steps")


# R1 and R2 weight that `--loss rpgan` gets unless --r1/--r2 say otherwise: 0.05 beat 0.1 and 0.2 at 5 epochs
# (two seeds each) and at 35 epochs (docs/ablation.md); the other losses default to no penalty, so
# `--loss hinge` alone is the earlier shipped recipe
PENALTY_DEFAULTS = {"rpgan": 0.05}


class TrainingError(RuntimeError):
    """A run cannot start or continue (bad options, finished output folder, divergence, a stuck rank)."""


@dataclass
class TrainConfig:
    """Every training option; ``python train.py --help`` lists them with these defaults."""

    dataset: str = "fashion-mnist"  # one of fashion-mnist, mnist, cifar10, folder
    data_dir: str | None = None
    out: str = "runs/fashion-mnist"  # output model folder
    epochs: int = 36  # the default recipe's measured full run (docs/ablation.md)
    steps: int | None = None  # total iterations; overrides --epochs when set
    time_budget: float = field(default=0.0, metadata={"help": (
        "minutes of training (0 = no limit): the run measures its speed, fits its total steps (at most "
        "--epochs/--steps) and its learning-rate cool-down (--lr-cooldown) to end cooled down when the budget "
        "ends, and records the fit in training_options.json; with --lr-cooldown 0 and --lr-schedule constant "
        "it instead stops at the first epoch end after the budget (docs/training.md)")})
    batch_size: int = 128  # per process
    limit: int | None = None  # use only the first N training images (smoke runs)
    resolution: int | None = None  # 28, 32 or 64; default: the data set's own (folder: 64)
    channels: int | None = None  # 1 or 3; default: the data set's own
    conditional: bool = True  # class-conditional G and projection D (p(x|y))
    z_dim: int = 64
    g_width: int = 64  # best per epoch in the GPU sweep; 32 trains about 3x the images/s on a CPU (docs/speed.md)
    d_width: int = 64
    spectral_norm: bool = True
    loss: str = "rpgan"  # rpgan (R3GAN's relativistic pairing), ns (the 2014 paper's), hinge, wgan-gp
    r1: float | None = None  # R1 penalty weight gamma on real images (0 = off; None: 0.05 with rpgan, else 0)
    r2: float | None = None  # R2 penalty weight gamma on generated images (0 = off; None: 0.05 with rpgan, else 0)
    reg_every: int = field(default=8, metadata={"help": (
        "lazy regularisation (StyleGAN2): R1 and R2 run every N steps, weighted by N (1 = every step); "
        "a function of the step, so --resume keeps the schedule")})
    gp_weight: float = 10.0  # WGAN-GP weight (loss=wgan-gp only)
    d_steps: int = 1  # D updates per G update
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    lr_schedule: str = "constant"  # constant, cosine or linear decay (to lr_final x the base rate at the end)
    lr_warmup: int = 0  # steps of linear learning-rate warm-up
    lr_final: float = 0.1  # the learning rate at the last step, as a fraction of --lr-g/--lr-d (cosine, linear)
    lr_cooldown: float | None = field(default=None, metadata={"help": (
        "--lr-schedule constant: decay the rate linearly to --lr-final over this last fraction of the run "
        "(warmup-stable-decay); default (None): 0.2 with --time-budget, 0 (no cool-down) without")})
    beta1: float = 0.5
    beta2: float = 0.999
    ema: bool = True
    ema_beta: float = 0.999
    ema_halflife_kimg: float = 0.0  # EMA half-life in thousands of images (StyleGAN2); 0 = use --ema-beta
    augment: str = "translation"  # DiffAugment policy: comma-separated color, translation, cutout; "" = off
    seed: int = 0
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    amp: bool = True  # bf16 autocast on GPU (ignored on CPU)
    cpu_amp: bool | None = field(default=None, metadata={"help": (
        "bf16 autocast on the CPU; default (None): on where the CPU computes bf16 natively (AMX-BF16 or "
        "AVX512-BF16 in its flags: about 2x the images/s), off elsewhere (emulated bf16 is slower); --cpu-amp "
        "and --no-cpu-amp force it; training_options.json records what the run used (docs/speed.md)")})
    compile: bool = False  # torch.compile G and D (GPU)
    channels_last: bool = True
    sample_every: int = 500  # steps between progress grids
    ckpt_every: int = 500  # steps between checkpoints
    log_every: int = 50  # steps between metrics.jsonl rows
    eval_every: int = 5  # epochs between FID evaluations (0 = off; needs the metric classifier)
    eval_samples: int = 5000
    ddp_timeout: int = 1800  # seconds a torchrun rank waits at a collective before failing with an error naming it
    extras: bool = True  # Fashion-MNIST: compute the app's directions, calibration and critic after training
    resume: bool = False
    init_from: str | None = field(default=None, metadata={"help": (
        "start G, its EMA copy and D from a trained model folder (a local path, or OWNER/NAME on the Hub) "
        "instead of random weights, to train a published model further or fine-tune it on other images; the "
        "optimisers start fresh, and the net options (--z-dim, --g-width, --d-width, classes, resolution, "
        "channels, --spectral-norm) must match its config.json; ignored when --resume finds a checkpoint")})
    overwrite: bool = False
    max_nonfinite: int = 5  # consecutive NaN/inf steps tolerated (each skips the batch, halves the LRs)

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise TrainingError(f"--dataset {self.dataset!r} is unknown; choose one of {', '.join(DATASETS)}")
        if self.loss not in LOSSES:
            raise TrainingError(f"--loss {self.loss!r} is unknown; choose one of {', '.join(LOSSES)}")
        for name in ("r1", "r2"):
            if getattr(self, name) is None:
                setattr(self, name, PENALTY_DEFAULTS.get(self.loss, 0.0))
        for name in ("epochs", "batch_size", "d_steps", "sample_every", "ckpt_every", "log_every", "z_dim",
                     "g_width", "d_width", "max_nonfinite", "reg_every", "eval_samples", "ddp_timeout"):
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
        if self.time_budget < 0:
            raise TrainingError(f"--time-budget must be >= 0 minutes, got {self.time_budget}")
        if self.r1 < 0 or self.r2 < 0 or self.eval_every < 0 or self.lr_warmup < 0 or self.ema_halflife_kimg < 0:
            raise TrainingError("--r1, --r2, --eval-every, --lr-warmup and --ema-halflife-kimg must be >= 0")
        if self.cpu_amp not in (None, True, False):
            raise TrainingError(f"--cpu-amp must be true, false or None (auto), got {self.cpu_amp!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise TrainingError(f"--lr-schedule {self.lr_schedule!r} is unknown; choose one of "
                                f"{', '.join(LR_SCHEDULES)}")
        if not 0 < self.lr_final <= 1:
            raise TrainingError(f"--lr-final must be in (0, 1], got {self.lr_final}")
        if self.lr_cooldown is None:  # auto -> what this run uses, recorded in training_options.json
            self.lr_cooldown = DEFAULT_COOLDOWN if self.time_budget and self.lr_schedule == "constant" else 0.0
        if not 0 <= self.lr_cooldown < 1:
            raise TrainingError(f"--lr-cooldown must be in [0, 1), got {self.lr_cooldown}")
        if self.lr_cooldown and self.lr_schedule != "constant":
            raise TrainingError(f"--lr-cooldown {self.lr_cooldown:g} needs --lr-schedule constant; the "
                                f"{self.lr_schedule} schedule decays over the whole run already")
        try:
            parse_policy(self.augment)
        except ValueError as e:
            raise TrainingError(f"--augment: {e}") from None


def config_fields() -> list:
    """The dataclass fields of TrainConfig (used by the CLI to build its arguments)."""
    return list(fields(TrainConfig))
