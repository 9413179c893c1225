"""Checks of raw UI/API values: each returns a clean value or raises AppInputError naming the bad one."""

from __future__ import annotations

import math
from typing import Any

import torch

from .. import latent as L
from ..models import seed_latents
from .context import AppContext

RANDOM_CLASS = "random"  # class choice: the class the seed picks, as model.generate(1, seed=seed) does
AUTO_CLASS = "auto"  # projection: try every class and keep the best


class AppInputError(ValueError):
    """A user input the app cannot use; the message names the bad value and is shown as is."""


def parse_seed(seed: Any) -> int:
    """A seed from a UI/API value: a whole number in latent.SEED_RANGE, else AppInputError."""
    if seed is None or (isinstance(seed, str) and not seed.strip()):
        raise AppInputError("seed is empty; enter a whole number such as 42")
    try:
        x = float(seed)
    except (TypeError, ValueError):
        raise AppInputError(f"seed {seed!r} is not a number; enter a whole number such as 42") from None
    if not math.isfinite(x) or x != int(x):
        raise AppInputError(f"seed {seed!r} is not a whole number; enter e.g. 42")
    lo, hi = L.SEED_RANGE
    if not lo <= int(x) <= hi:
        raise AppInputError(f"seed {int(x)} is out of range; use {lo}..{hi}")
    return int(x)


def parse_float(name: str, value: Any, lo: float, hi: float, default: float | None = None) -> float:
    """A finite float in [lo, hi] (None -> default), else AppInputError naming it."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if default is None:
            raise AppInputError(f"{name} is empty; use a number in [{lo:g}, {hi:g}]")
        return float(default)
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise AppInputError(f"{name} {value!r} is not a number; use a number in [{lo:g}, {hi:g}]") from None
    if not math.isfinite(x) or not lo <= x <= hi:
        raise AppInputError(f"{name}={value!r} is out of range; use a number in [{lo:g}, {hi:g}]")
    return x


def parse_int(name: str, value: Any, lo: int, hi: int, default: int | None = None) -> int:
    """A whole number in [lo, hi] (None -> default), else AppInputError naming it."""
    x = parse_float(name, value, lo, hi, default)
    if x != int(x):
        raise AppInputError(f"{name}={value!r} is not a whole number")
    return int(x)


def class_choices(ctx: AppContext) -> list[str]:
    """Dropdown choices: 'random' then the class names (empty for an unconditional model)."""
    return [RANDOM_CLASS, *ctx.model.class_names] if ctx.conditional else []


def seed_label(ctx: AppContext, seed: int) -> int | None:
    """The class that model.generate(1, seed=seed) picks (None when unconditional)."""
    if not ctx.conditional:
        return None
    return int(seed_latents(int(seed), 1, ctx.model.z_dim, ctx.model.num_classes)[1][0])


def parse_class(ctx: AppContext, choice: Any, seed: int | None = None, *, allow_auto: bool = False) -> int | None:
    """A class choice (name, index, 'random' or 'auto') -> label; None for unconditional models or 'auto'."""
    if not ctx.conditional:
        return None
    names = ctx.model.class_names
    if choice is None or (isinstance(choice, str) and choice.strip().lower() in ("", RANDOM_CLASS)):
        if seed is None:
            raise AppInputError("class 'random' needs a seed; pick a class name instead")
        return seed_label(ctx, seed)
    if allow_auto and isinstance(choice, str) and choice.strip().lower() == AUTO_CLASS:
        return None
    if isinstance(choice, str) and choice in names:
        return names.index(choice)
    try:
        x = float(choice)
        if x == int(x) and 0 <= int(x) < len(names):
            return int(x)
    except (TypeError, ValueError):
        pass
    extra = f"{AUTO_CLASS}, " if allow_auto else ""
    raise AppInputError(f"class {choice!r} is not one of: {extra}{RANDOM_CLASS}, {', '.join(names)} "
                        f"(or an index 0..{len(names) - 1})")


def class_name(ctx: AppContext, label: int | None) -> str:
    """Display name of a label ('-' for none)."""
    return ctx.model.class_names[label] if label is not None and ctx.conditional else "-"


def check_latent(ctx: AppContext, z: Any) -> list[float]:
    t = torch.as_tensor(z, dtype=torch.float32).reshape(-1)
    if t.numel() != ctx.model.z_dim or not torch.isfinite(t).all():
        raise AppInputError(f"latent has {t.numel()} values (or non-finite ones); this model needs {ctx.model.z_dim}")
    return t.tolist()
