"""Learning-rate and EMA schedules: pure functions of the step, so --resume continues them exactly.

A --time-budget run's length is fitted while it runs (gan/train/budget.py); what was fitted is a
``BudgetPlan``, stored in every checkpoint, and the rate at a step is a pure function of the step and the plan.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

LR_SCHEDULES = ("constant", "cosine", "linear")
DEFAULT_COOLDOWN = 0.2  # --lr-cooldown under --time-budget when not given: the last 20% of the run decays


def lr_factor(schedule: str, step: int, total: int, *, warmup: int = 0, final: float = 0.1,
              decay_start: int | None = None) -> float:
    """Multiplier of the base learning rate at `step` (0-based) of `total`.

    Linear warm-up from 1/warmup over the first `warmup` steps, then the base rate until `decay_start`
    (default: the end of the warm-up for cosine and linear, never for constant), then a cosine or linear decay
    that reaches `final` (a fraction of the base rate) at the last step. ``constant`` with a `decay_start`
    is warmup-stable-decay (WSD): constant, then a linear cool-down.
    """
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {schedule!r}; choose one of {', '.join(LR_SCHEDULES)}")
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if decay_start is None:
        if schedule == "constant":
            return 1.0
        decay_start = warmup
    start = max(decay_start, warmup)
    if step < start:
        return 1.0
    t = min((step - start) / max(total - start - 1, 1), 1.0)  # 0 at the decay's first step, 1 at the last step
    if schedule == "cosine":
        return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * t))
    return 1.0 - (1.0 - final) * t  # linear, and constant's cool-down


def cooldown_start(total: int, fraction: float, start: int = 0) -> int:
    """First step of the linear cool-down over the last `fraction` of the steps from `start` to `total`
    (at least 2 steps, so that the last one runs at the final rate, when the run has them)."""
    span = max(total - start, 0)
    return total - min(max(round(fraction * span), 2 if fraction > 0 else 0), span)


def fit_steps(remaining_s: float, s_per_step: float, *, eval_period: int = 0, eval_cost_s: float = 0.0) -> int:
    """Steps that fit in `remaining_s` seconds at `s_per_step`, with an evaluation of `eval_cost_s` seconds
    every `eval_period` steps and one at the end (as the loop runs them)."""
    if remaining_s <= 0 or s_per_step <= 0:
        return 0
    per_step = s_per_step + (eval_cost_s / eval_period if eval_period else 0.0)
    return max(int((remaining_s - eval_cost_s) / per_step), 0)


@dataclass
class BudgetPlan:
    """What --time-budget fitted: the run's total steps and its cool-down, with the measurements behind them.

    Every rank holds the same total, decay_start and frozen (rank 0 decides, all receive); the measurements
    are rank 0's. Times are the run's training wall-clock seconds, earlier attempts (--resume) included.
    """

    budget_min: float
    schedule: str  # the run's --lr-schedule
    cooldown: float  # constant: fraction of the planned steps (start_step..total) that decays; else unused
    deadline_s: float  # training wall time at which the run should end
    start_step: int  # the step this plan began at (0, or where a --resume with a new budget picked up)
    cap: int  # --steps / --epochs: the fitted total never exceeds it
    total: int
    decay_start: int
    frozen: bool = False  # the total no longer changes (the decay has begun)
    frozen_at: int | None = None
    ref_step: int | None = None  # start of the current measuring window (rank 0)
    ref_s: float = 0.0
    ref_eval_s: float = 0.0
    eval_s: float = 0.0  # seconds spent evaluating since the plan began (rank 0)
    eval_cost_s: float = 0.0  # the last evaluation's seconds
    s_per_step: float | None = None  # the last measured seconds a step (evaluations excluded)
    fits: int = 0  # how many estimates set the total
    first_fit: dict | None = None  # {"step", "s_per_step", "total"} of the first estimate

    def as_dict(self) -> dict:
        """Plain JSON-able fields (checkpoints and training_options.json)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "BudgetPlan":
        """The plan a checkpoint stored (unknown keys ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def ema_beta(step: int, *, beta: float, halflife_kimg: float = 0.0, images_per_step: int = 1) -> float:
    """EMA decay of G's weights for this G step, with a warm-up so early samples are not dominated by the init.

    halflife_kimg > 0 ties the decay to the images seen, as StyleGAN2 does: after `halflife_kimg` thousand
    images the old weights count half, whatever the batch size or number of processes. The warm-up
    (1 + step) / (10 + step) alone gives a half-life of about 7% of the steps so far, so in runs shorter than
    about 9,000 steps the EMA's horizon already scales with the run's length.
    """
    if halflife_kimg > 0:
        beta = 0.5 ** (images_per_step / (halflife_kimg * 1000.0))
    return min(beta, (1 + step) / (10 + step))


def penalty_weight(step: int, every: int) -> int:
    """Lazy regularisation (StyleGAN2): R1/R2 run on steps 0, every, 2*every, ... weighted by `every`, else 0."""
    return every if step % every == 0 else 0
