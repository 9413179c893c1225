"""Latent-space tools for the app: seeds, interpolation, class morphing, rendering, sharing and export.

Everything here runs on the CPU in eval mode without gradients and is cheap enough to call on every
slider move: one 28x28 image from a width-64 generator takes about a millisecond.

    from gan import GAN
    from gan.latent import latent_for_seed, render, interpolate, to_pil
    model = GAN.from_pretrained("checkpoints")
    z = latent_for_seed(42, model.z_dim)                        # (z_dim,), same z as model.generate(1, seed=42)
    img = render(model, z, class_embedding(model, 3))[0]        # (1, 28, 28) in [-1, 1]
    frames = interpolate(z, latent_for_seed(7, model.z_dim), 16, method="slerp")
"""

from __future__ import annotations

import io
import json
import math
import urllib.parse
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from .data import to_uint8
from .models import Generator, sample_latents

# Ranges a shared state is clamped to (the app's sliders use the same limits).
SEED_RANGE = (0, 2**31 - 1)
TRUNCATION_RANGE = (0.0, 2.0)
SLIDER_RANGE = (-5.0, 5.0)
_RESERVED_KEYS = ("seed", "label", "truncation")


def generator_of(model: nn.Module) -> Generator:
    """The Generator of a GAN, or the argument itself when it already is one."""
    G = getattr(model, "generator", model)
    if not isinstance(G, Generator):
        raise TypeError(f"expected a GAN or a Generator, got {type(model).__name__}")
    return G


# ---- interpolation ----------------------------------------------------------------------------
def lerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Linear interpolation a + t (b - a); t broadcasts (a scalar, or (T, 1) for T frames)."""
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Spherical interpolation over the last dim; the norm is lerped, so |a| = |b| keeps it exactly.

    Nearly parallel vectors fall back to lerp of directions; antipodal ones rotate through a fixed
    perpendicular vector (any great circle is a valid path), so the result is always finite.
    """
    a, b = torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32)
    t = torch.as_tensor(t, dtype=torch.float32)
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    ua, ub = a / na.clamp_min(eps), b / nb.clamp_min(eps)
    dot = (ua * ub).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.acos(dot)  # (..., 1) angle between a and b
    # antipodal: replace ub by a unit vector perpendicular to ua and rotate by pi along it
    anti = dot < -1.0 + 1e-6
    if anti.any():
        e = torch.zeros_like(ua).scatter_(-1, ua.abs().argmin(-1, keepdim=True), 1.0)  # least-aligned axis
        perp = e - (e * ua).sum(-1, keepdim=True) * ua
        perp = perp / perp.norm(dim=-1, keepdim=True).clamp_min(eps)
        ub = torch.where(anti, perp, ub)
        omega = torch.where(anti, torch.full_like(omega, math.pi / 2), omega)
        t_dir = torch.where(anti, t * 2, t)  # perp is at pi/2: twice the parameter covers pi
    else:
        t_dir = t
    so = torch.sin(omega)
    small = so < 1e-4
    s0 = torch.where(small, 1.0 - t_dir, torch.sin((1.0 - t_dir) * omega) / so.clamp_min(1e-12))
    s1 = torch.where(small, t_dir, torch.sin(t_dir * omega) / so.clamp_min(1e-12))
    u = s0 * ua + s1 * ub
    if small.any():  # lerp of directions leaves the sphere slightly: renormalise
        u = torch.where(small, u / u.norm(dim=-1, keepdim=True).clamp_min(eps), u)
    return u * lerp(na, nb, t)


def interpolate(z0: torch.Tensor, z1: torch.Tensor, n_frames: int, *,
                method: Literal["lerp", "slerp"] = "slerp") -> torch.Tensor:
    """(n_frames, z_dim) latents from z0 to z1, hitting both endpoints exactly."""
    if n_frames < 2:
        raise ValueError(f"n_frames={n_frames} must be >= 2 (the two endpoints)")
    if method not in ("lerp", "slerp"):
        raise ValueError(f"method={method!r} is not supported; use 'lerp' or 'slerp'")
    z0, z1 = z0.detach().float().reshape(-1), z1.detach().float().reshape(-1)
    if z0.shape != z1.shape:
        raise ValueError(f"z0 {tuple(z0.shape)} and z1 {tuple(z1.shape)} differ in size")
    t = torch.linspace(0.0, 1.0, n_frames).unsqueeze(1)  # (T, 1)
    out = lerp(z0, z1, t) if method == "lerp" else slerp(z0.expand(n_frames, -1), z1.expand(n_frames, -1), t)
    out[0], out[-1] = z0, z1
    return out


# ---- rendering with an explicit class embedding -----------------------------------------------
def class_embedding(model: nn.Module, label: int) -> torch.Tensor:
    """The generator's class embedding (z_dim,) of one label; the conditioning the G input carries."""
    G = generator_of(model)
    if not G.conditional:
        raise ValueError("this generator is unconditional: it has no class embeddings (use emb=None)")
    if not 0 <= int(label) < G.cfg.num_classes:
        raise ValueError(f"label={label} is out of range; use 0..{G.cfg.num_classes - 1}")
    return G.embed.weight[int(label)].detach().clone()


def blend_embedding(model: nn.Module, y0: int, y1: int, t: float) -> torch.Tensor:
    """(z_dim,) embedding (1 - t) embed(y0) + t embed(y1): t=0 is class y0, t=1 class y1."""
    return lerp(class_embedding(model, y0), class_embedding(model, y1), float(t))


@torch.no_grad()
def render(model: nn.Module, z: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
    """Images (B, C, R, R) in [-1, 1] from z (B|-, z_dim) and an explicit embedding (B|-, z_dim) or None.

    Identical to ``G(z, y)`` when ``emb = G.embed(y)``, but emb may be any vector (a class blend).
    """
    G = generator_of(model)
    z = torch.as_tensor(z, dtype=torch.float32)
    z = z.unsqueeze(0) if z.dim() == 1 else z
    if z.size(-1) != G.cfg.z_dim:
        raise ValueError(f"z has size {z.size(-1)} but the generator expects z_dim={G.cfg.z_dim}")
    if G.conditional:
        if emb is None:
            raise ValueError("this generator is class-conditional: pass emb (e.g. class_embedding(model, label))")
        emb = torch.as_tensor(emb, dtype=torch.float32)
        emb = emb.unsqueeze(0) if emb.dim() == 1 else emb
        h = torch.cat([z, emb.expand(z.size(0), -1)], dim=1)  # what Generator.embed_input builds
    elif emb is not None:
        raise ValueError("this generator is unconditional: pass emb=None")
    else:
        h = z
    was_training = G.training
    G.eval()
    try:
        x = G.blocks(G.fc(h))  # (B, width, R, R), as Generator.forward
        return torch.tanh(G.to_img(x))  # (B, C, R, R) in [-1, 1]
    finally:
        G.train(was_training)


def interpolate_conditioning(model: nn.Module, z: torch.Tensor, y0: int, y1: int, n_frames: int) -> torch.Tensor:
    """(n_frames, C, R, R) images of one z while the class embedding blends from y0 to y1 (a bag into a shoe)."""
    if n_frames < 2:
        raise ValueError(f"n_frames={n_frames} must be >= 2 (the two endpoints)")
    e0, e1 = class_embedding(model, y0), class_embedding(model, y1)
    t = torch.linspace(0.0, 1.0, n_frames).unsqueeze(1)  # (T, 1)
    emb = lerp(e0, e1, t)
    emb[0], emb[-1] = e0, e1
    z = torch.as_tensor(z, dtype=torch.float32).reshape(1, -1).expand(n_frames, -1)
    return render(model, z, emb)


def render_path(model: nn.Module, zs: torch.Tensor, label: int | None = None) -> torch.Tensor:
    """(T, C, R, R) images of latents zs (T, z_dim) with a fixed label (None for unconditional models)."""
    emb = class_embedding(model, label) if label is not None else None
    return render(model, zs, emb)


# ---- seeds ------------------------------------------------------------------------------------
def latent_for_seed(seed: int, z_dim: int, truncation: float = 1.0) -> torch.Tensor:
    """(z_dim,) latent of a seed; the same z as ``model.generate(1, seed=seed, truncation=truncation)``."""
    if not SEED_RANGE[0] <= int(seed) <= SEED_RANGE[1]:
        raise ValueError(f"seed={seed} is out of range; use {SEED_RANGE[0]}..{SEED_RANGE[1]}")
    return sample_latents(1, z_dim, seed=int(seed), truncation=truncation)[0]


# ---- pictures ---------------------------------------------------------------------------------
def to_pil(image: torch.Tensor, scale: int = 8) -> Image.Image:
    """(1|C, H, W) (or (1, C, H, W)) in [-1, 1] -> PIL image upscaled with nearest neighbour (crisp pixels)."""
    x = image.detach().cpu()
    x = x[0] if x.dim() == 4 and x.size(0) == 1 else x
    if x.dim() != 3 or x.size(0) not in (1, 3):
        raise ValueError(f"expected an image of shape (1|3, H, W), got {tuple(image.shape)}")
    if int(scale) < 1:
        raise ValueError(f"scale={scale} must be >= 1")
    arr = to_uint8(x).permute(1, 2, 0).numpy()  # (H, W, C) uint8
    im = Image.fromarray(arr[..., 0], mode="L") if arr.shape[2] == 1 else Image.fromarray(arr, mode="RGB")
    if scale > 1:
        im = im.resize((im.width * int(scale), im.height * int(scale)), Image.NEAREST)
    return im


def to_png_bytes(image: torch.Tensor, scale: int = 8) -> bytes:
    """PNG file bytes of one image (1|C, H, W) in [-1, 1], nearest-neighbour upscaled."""
    buf = io.BytesIO()
    to_pil(image, scale).save(buf, format="PNG")
    return buf.getvalue()


def make_gif(frames: list[Image.Image | torch.Tensor], path: str | Path, duration_ms: int = 80, *,
             loop: bool = True) -> Path:
    """Animated GIF of PIL frames (or (C, H, W) tensors in [-1, 1], upscaled x8); returns the path."""
    if not frames:
        raise ValueError("make_gif needs at least one frame")
    ims = [f if not isinstance(f, torch.Tensor) else to_pil(f) for f in frames]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ims[0].save(path, format="GIF", save_all=True, append_images=ims[1:], duration=int(duration_ms),
                loop=0 if loop else 1, optimize=False, disposal=2)
    return path


# make_mp4 is left out on purpose: it needs ffmpeg/imageio/av, none of which the app installs.


# ---- sharing ----------------------------------------------------------------------------------
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
