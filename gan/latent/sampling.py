"""Latents of seeds, interpolation paths (two or more stops, lerp or slerp) and rendering with explicit embeddings.

Everything here runs on the CPU in eval mode without gradients and is cheap enough to call on every
slider move: one 28x28 image from a width-64 generator takes about a millisecond.

    from gan import GAN
    from gan.latent import latent_for_seed, render, interpolate, class_embedding
    model = GAN.from_pretrained("checkpoints")
    z = latent_for_seed(42, model.z_dim)                        # (z_dim,), same z as model.generate(1, seed=42)
    img = render(model, z, class_embedding(model, 3))[0]        # (1, 28, 28) in [-1, 1]
    frames = interpolate(z, latent_for_seed(7, model.z_dim), 16, method="slerp")
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn as nn

from ..models import Generator, sample_latents

# Ranges a shared state is clamped to (the app's sliders use the same limits).
SEED_RANGE = (0, 2**31 - 1)
TRUNCATION_RANGE = (0.0, 2.0)
SLIDER_RANGE = (-5.0, 5.0)


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


def path_frames(n_stops: int, n_frames: int, *, loop: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Leg index (T,) and position within the leg t (T,) in [0, 1] for a path through n_stops stops.

    The path has n_stops - 1 legs (n_stops with ``loop``: the last leg returns to the first stop). The
    frame count is rounded to legs * k + 1 so that every stop is a frame; every leg gets k frames.
    """
    if n_stops < 2:
        raise ValueError(f"a path needs at least 2 stops, got {n_stops}")
    if n_frames < 2:
        raise ValueError(f"n_frames={n_frames} must be >= 2 (the two endpoints)")
    legs = n_stops if loop else n_stops - 1
    k = max(1, round((n_frames - 1) / legs))
    u = torch.arange(legs * k + 1, dtype=torch.float32) / k  # (T,) position in legs
    leg = u.floor().long().clamp(max=legs - 1)
    return leg, u - leg


def interpolate_stops(stops: list[torch.Tensor] | torch.Tensor, n_frames: int, *,
                      method: Literal["lerp", "slerp"] = "slerp", loop: bool = False) -> torch.Tensor:
    """(T, dim) vectors along stops[0] -> stops[1] -> ... (-> stops[0] with loop), hitting every stop exactly.

    T is n_frames rounded so that every stop is a frame (see path_frames). For two stops and no loop
    this is exactly ``interpolate(stops[0], stops[1], n_frames)``.
    """
    if method not in ("lerp", "slerp"):
        raise ValueError(f"method={method!r} is not supported; use 'lerp' or 'slerp'")
    pts = [torch.as_tensor(s).detach().float().reshape(-1) for s in stops]
    if len({p.shape for p in pts}) > 1:
        raise ValueError(f"stops differ in size: {[tuple(p.shape) for p in pts]}")
    leg, t = path_frames(len(pts), n_frames, loop=loop)
    P = torch.stack(pts + [pts[0]])  # (n + 1, dim): the loop's way back is one more leg
    a, b, tt = P[leg], P[leg + 1], t.unsqueeze(1)
    out = lerp(a, b, tt) if method == "lerp" else slerp(a, b, tt)
    hit = t == 0  # frames that sit on a stop are the stop itself, bit for bit
    out[hit] = a[hit]
    out[-1] = P[leg[-1] + 1]
    return out


# ---- rendering with an explicit class embedding -----------------------------------------------
def class_embedding(model: nn.Module, label: int) -> torch.Tensor:
    """The generator's class embedding (z_dim,) of one label; the conditioning the G input carries."""
    G = generator_of(model)
    if not G.conditional:
        raise ValueError("this generator is unconditional: it has no class embeddings (use emb=None)")
    if not 0 <= int(label) < G.cfg.num_classes:
        raise ValueError(f"label={label} is out of range; use 0..{G.cfg.num_classes - 1}")
    with torch.no_grad():
        return G.class_input(torch.tensor([int(label)]))[0].detach().clone()


def blend_embedding(model: nn.Module, y0: int, y1: int, t: float) -> torch.Tensor:
    """(z_dim,) embedding (1 - t) embed(y0) + t embed(y1): t=0 is class y0, t=1 class y1."""
    G = generator_of(model)
    for y in (y0, y1):
        class_embedding(model, y)  # range checks
    with torch.no_grad():
        return G.class_input(torch.tensor([int(y0)]), torch.tensor([int(y1)]), float(t))[0].detach().clone()


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
    if G.conditional and emb is None:
        raise ValueError("this generator is class-conditional: pass emb (e.g. class_embedding(model, label))")
    if not G.conditional and emb is not None:
        raise ValueError("this generator is unconditional: pass emb=None")
    if emb is not None:
        emb = torch.as_tensor(emb, dtype=torch.float32)
        emb = emb.unsqueeze(0) if emb.dim() == 1 else emb
    was_training = G.training
    G.eval()
    try:
        return G.forward_with_embedding(z, emb)  # (B, C, R, R) in [-1, 1]
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
