"""Sharing a generator view: compact share strings (URL queries or JSON) and safe latent .npy files.

    from gan.latent import share_state, parse_state, save_latent_npy, load_latent_npy
    s = share_state(42, 8, 0.7, {"width": 1.5})   # 'seed=42&label=8&truncation=0.7&width=1.5'
    parse_state(s, names=["width"], num_classes=10)   # {seed, label, truncation, sliders, notes}
"""

from __future__ import annotations

import json
import math
import urllib.parse
from pathlib import Path

import numpy as np
import torch

from .sampling import SEED_RANGE, SLIDER_RANGE, TRUNCATION_RANGE

_RESERVED_KEYS = ("seed", "label", "truncation")


def _num(v: float) -> str:
    return f"{round(float(v), 3):g}"


def share_state(seed: int, label: int | None, truncation: float, sliders: dict[str, float]) -> str:
    """Compact URL query string of a generator state, e.g. ``seed=42&label=8&truncation=0.7&PC1=1.5``."""
    for k in sliders:
        if k in _RESERVED_KEYS:
            raise ValueError(f"slider name {k!r} clashes with a state key; rename the direction")
    items = [("seed", str(int(seed)))]
    if label is not None:
        items.append(("label", str(int(label))))
    items.append(("truncation", _num(truncation)))
    items += [(k, _num(v)) for k, v in sliders.items() if float(v) != 0.0]
    return urllib.parse.urlencode(items, safe="/")


def _clamp(key: str, v: float, lo: float, hi: float, notes: list[str]) -> float:
    if v < lo or v > hi:
        c = min(max(v, lo), hi)
        notes.append(f"{key}={v:g} is outside [{lo:g}, {hi:g}]; clamped to {c:g}")
        return c
    return v


def parse_state(s: str, *, names: list[str] | None = None, num_classes: int | None = None) -> dict:
    """Parse a share string (query string, URL, or JSON) into {seed, label, truncation, sliders, notes}.

    Malformed input raises ValueError naming the bad part. Unknown direction names (when ``names`` is
    given) are dropped, and out-of-range values are clamped; both are reported in ``notes``.
    """
    if not isinstance(s, str) or not s.strip():
        raise ValueError("share string is empty; expected e.g. 'seed=42&label=3&truncation=0.8&PC1=1.5'")
    s = s.strip()
    if s.startswith("{"):
        try:
            raw = json.loads(s)
        except json.JSONDecodeError as e:
            raise ValueError(f"share string is not valid JSON ({e.msg} at position {e.pos})") from None
        if not isinstance(raw, dict):
            raise ValueError("share JSON must be an object like {\"seed\": 42, \"sliders\": {\"PC1\": 1.5}}")
        raw = dict(raw)
        nested = raw.pop("sliders", {}) or {}
        if not isinstance(nested, dict):
            raise ValueError(f"'sliders' must be an object of name: value, got {type(nested).__name__}")
        raw.update(nested)
    else:
        query = s.split("?", 1)[1] if "?" in s else s
        query = query.split("#", 1)[0]
        try:
            pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise ValueError(f"share string {s[:80]!r} is not a query string like 'seed=42&PC1=1.5'") from None
        raw = {}
        for k, v in pairs:
            if k in raw:
                raise ValueError(f"key {k!r} appears twice in the share string")
            raw[k] = v
    notes: list[str] = []

    def number(key: str, v, kind=float):
        if v is None or isinstance(v, bool):
            raise ValueError(f"{key}={v!r} is not a number")
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{key}={v!r} is not a number") from None
        if not math.isfinite(x):
            raise ValueError(f"{key}={v!r} is not a finite number")
        if kind is int and x != int(x):
            raise ValueError(f"{key}={v!r} must be a whole number")
        return x

    if "seed" not in raw:
        raise ValueError("share string has no seed; expected e.g. 'seed=42'")
    seed = int(_clamp("seed", number("seed", raw.pop("seed"), int), *SEED_RANGE, notes))
    label_raw = raw.pop("label", None)
    label = None
    if label_raw not in (None, "", "none", "None"):
        label = int(number("label", label_raw, int))
        if num_classes is not None:
            if num_classes == 0:
                notes.append(f"label={label} ignored: the model is unconditional")
                label = None
            else:
                label = int(_clamp("label", label, 0, num_classes - 1, notes))
    elif num_classes:
        label = 0
        notes.append("no label given for a class-conditional model; using label 0")
    trunc_raw = raw.pop("truncation", None)
    truncation = 1.0 if trunc_raw in (None, "") else _clamp("truncation", number("truncation", trunc_raw),
                                                            *TRUNCATION_RANGE, notes)
    sliders: dict[str, float] = {}
    for k, v in raw.items():
        if names is not None and k not in names:
            notes.append(f"unknown direction {k!r} ignored (this model has: {', '.join(names) or 'none'})")
            continue
        sliders[k] = _clamp(k, number(k, v), *SLIDER_RANGE, notes)
    return {"seed": seed, "label": label, "truncation": truncation, "sliders": sliders, "notes": notes}


# ---- latent files -----------------------------------------------------------------------------
def _latent_dtype(z_dim: int) -> np.dtype:
    return np.dtype([("z", "<f4", (z_dim,)), ("label", "<i8")])


def save_latent_npy(z: torch.Tensor, label: int | None, path: str | Path) -> Path:
    """Save z (z_dim,) and its label to a .npy file (a numpy record with fields 'z' and 'label', -1 = none)."""
    z = torch.as_tensor(z).detach().float().cpu().reshape(-1)
    if not torch.isfinite(z).all():
        raise ValueError("z contains NaN or infinite values")
    rec = np.zeros((), dtype=_latent_dtype(z.numel()))
    rec["z"] = z.numpy()
    rec["label"] = -1 if label is None else int(label)
    path = Path(path)
    if path.suffix != ".npy":
        raise ValueError(f"{path.name}: latent files end in .npy")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, rec, allow_pickle=False)
    return path


def load_latent_npy(path: str | Path, z_dim: int | None = None) -> tuple[torch.Tensor, int | None]:
    """Load (z (z_dim,), label or None) from a .npy written by save_latent_npy or a plain float array.

    Never unpickles: object arrays and pickles are refused, as are wrong shapes and non-finite values.
    """
    path = Path(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise ValueError(f"{path.name} is refused: it holds pickled/object data ({e}); "
                         f"save latents with save_latent_npy or np.save of a float array") from None
    except (OSError, EOFError) as e:
        raise ValueError(f"{path.name} cannot be read as a .npy file: {e}") from None
    if not isinstance(arr, np.ndarray):  # an .npz archive
        arr.close()
        raise ValueError(f"{path.name} is an .npz archive; expected one .npy array")
    label: int | None = None
    if arr.dtype.names:
        if set(arr.dtype.names) != {"z", "label"} or arr.shape != ():
            raise ValueError(f"{path.name} has fields {arr.dtype.names} with shape {arr.shape}; "
                             f"expected one record with fields 'z' and 'label'")
        lab = int(arr["label"])
        label = None if lab < 0 else lab
        arr = np.asarray(arr["z"])
    if arr.dtype.kind != "f":
        raise ValueError(f"{path.name} has dtype {arr.dtype}; expected a float array")
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 1 or (z_dim is not None and arr.shape[0] != z_dim):
        want = f"({z_dim},)" if z_dim is not None else "(z_dim,)"
        raise ValueError(f"{path.name} holds an array of shape {arr.shape}; expected {want}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{path.name} contains NaN or infinite values")
    return torch.from_numpy(arr.astype(np.float32)), label
