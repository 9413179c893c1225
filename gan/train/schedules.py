"""Learning-rate and EMA schedules: pure functions of the step, so --resume continues them exactly."""

from __future__ import annotations

import math

LR_SCHEDULES = ("constant", "cosine", "linear")


def lr_factor(schedule: str, step: int, total: int, *, warmup: int = 0, final: float = 0.1) -> float:
    """Multiplier of the base learning rate at `step` (0-based) of `total`.

    Linear warm-up from 1/warmup over the first `warmup` steps, then constant, or a cosine / linear decay
    that reaches `final` (a fraction of the base rate) at the last step.
    """
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    span = max(total - warmup - 1, 1)
    t = min(max(step - warmup, 0) / span, 1.0)  # 0 after warm-up, 1 at the last step
    if schedule == "cosine":
        return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * t))
    if schedule == "linear":
        return 1.0 - (1.0 - final) * t
    raise ValueError(f"unknown learning-rate schedule {schedule!r}; choose one of {', '.join(LR_SCHEDULES)}")


def ema_beta(step: int, *, beta: float, halflife_kimg: float = 0.0, images_per_step: int = 1) -> float:
    """EMA decay of G's weights for this G step, with a warm-up so early samples are not dominated by the init.

    halflife_kimg > 0 ties the decay to the images seen, as StyleGAN2 does: after `halflife_kimg` thousand
    images the old weights count half, whatever the batch size or number of processes.
    """
    if halflife_kimg > 0:
        beta = 0.5 ** (images_per_step / (halflife_kimg * 1000.0))
    return min(beta, (1 + step) / (10 + step))


def penalty_weight(step: int, every: int) -> int:
    """Lazy regularisation (StyleGAN2): R1/R2 run on steps 0, every, 2*every, ... weighted by `every`, else 0."""
    return every if step % every == 0 else 0
