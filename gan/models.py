"""DCGAN-family generator and discriminator (Radford et al. 2015), optionally class-conditional.

Read top to bottom: config dataclasses, then the generator, then the discriminator.

* Generator: z (+ class embedding, the seeds' p(x|y)) -> linear -> (S0 x S0) feature map ->
  transposed-conv upsampling blocks with BatchNorm + ReLU -> 3x3 conv -> tanh.  Output in [-1, 1].
* Discriminator: strided convs with LeakyReLU(0.2) -> global sum pool -> linear logit, plus the
  projection term <embed(y), h> of Miyato & Koyama 2018 when conditional.  Optional spectral norm.

Pure PyTorch, no custom CUDA ops.  Every constructor argument is JSON-serialisable, so a config is
just ``dataclasses.asdict(cfg)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

SUPPORTED_RESOLUTIONS = (28, 32, 64)


def _check_common(resolution: int, channels: int, num_classes: int, width: int) -> None:
    if resolution not in SUPPORTED_RESOLUTIONS:
        raise ValueError(f"resolution={resolution} is not supported; use one of {SUPPORTED_RESOLUTIONS}")
    if channels not in (1, 3):
        raise ValueError(f"channels={channels} is not supported; use 1 (grayscale) or 3 (RGB)")
    if num_classes < 0:
        raise ValueError(f"num_classes={num_classes} must be >= 0 (0 means unconditional)")
    if width < 4:
        raise ValueError(f"width={width} is too small; use at least 4")


def _stages(resolution: int) -> tuple[int, int]:
    """(initial spatial size, number of x2 upsampling stages) for a resolution."""
    if resolution == 28:
        return 7, 2
    return 4, int(math.log2(resolution // 4))


@dataclass
class GeneratorConfig:
    """Hyper-parameters of the generator; its ``asdict`` is what config.json stores."""

    z_dim: int = 64
    resolution: int = 28
    channels: int = 1
    width: int = 64  # channels of the last hidden block; earlier blocks double it per stage
    num_classes: int = 0  # 0 = unconditional
    max_width: int = 512

    def __post_init__(self) -> None:
        _check_common(self.resolution, self.channels, self.num_classes, self.width)
        if self.z_dim < 1:
            raise ValueError(f"z_dim={self.z_dim} must be >= 1")

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        """Build from a dict, naming any unknown key instead of silently dropping it."""
        return cls(**_known(cls, d))


@dataclass
class DiscriminatorConfig:
    """Hyper-parameters of the discriminator."""

    resolution: int = 28
    channels: int = 1
    width: int = 64  # channels of the first conv; doubled per stage
    num_classes: int = 0
    spectral_norm: bool = True
    max_width: int = 512

    def __post_init__(self) -> None:
        _check_common(self.resolution, self.channels, self.num_classes, self.width)

    @classmethod
    def from_dict(cls, d: dict) -> "DiscriminatorConfig":
        """Build from a dict, naming any unknown key instead of silently dropping it."""
        return cls(**_known(cls, d))


def _known(cls: type, d: dict) -> dict:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {unknown}; known keys are {sorted(names)}")
    return dict(d)


class Generator(nn.Module):
    """G(z, y) -> image in [-1, 1], shape (B, C, R, R)."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        s0, n_up = _stages(cfg.resolution)
        chans = [min(cfg.width * 2 ** (n_up - i), cfg.max_width) for i in range(n_up + 1)]
        self.s0 = s0
        self.c0 = chans[0]
        in_dim = cfg.z_dim
        if cfg.num_classes > 0:
            self.embed = nn.Embedding(cfg.num_classes, cfg.z_dim)
            in_dim += cfg.z_dim
        self.fc = nn.Sequential(
            nn.Linear(in_dim, chans[0] * s0 * s0, bias=False),
            nn.Unflatten(1, (chans[0], s0, s0)),
            nn.BatchNorm2d(chans[0]),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            blocks += [
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
        self.blocks = nn.Sequential(*blocks)
        self.to_img = nn.Conv2d(chans[-1], cfg.channels, 3, padding=1)
        self.apply(_dcgan_init)

    @property
    def conditional(self) -> bool:
        return self.cfg.num_classes > 0

    def embed_input(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Concatenate z (B, z_dim) with the class embedding of y (B,) when conditional."""
        if self.conditional:
            if y is None:
                raise ValueError("this generator is class-conditional: pass labels y of shape (B,)")
            return torch.cat([z, self.embed(y)], dim=1)
        return z

    def class_input(self, y0: torch.Tensor, y1: torch.Tensor | None = None, t: float | torch.Tensor = 0.0
                    ) -> torch.Tensor:
        """G's class input (B, z_dim): embed(y0), or the blend (1 - t) embed(y0) + t embed(y1) of two classes."""
        if not self.conditional:
            raise ValueError("this generator is unconditional: it has no class input")
        e0 = self.embed(y0)
        if y1 is None:
            return e0
        t = torch.as_tensor(t, dtype=e0.dtype, device=e0.device)
        return e0 + (self.embed(y1) - e0) * (t.reshape(-1, 1) if t.dim() else t)

    def early_features(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Activations of the first layer (B, C0*S0*S0): the GANSpace PCA target."""
        return self.fc(self.embed_input(z, y)).flatten(1)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_with_embedding(z, self.embed(y) if self.conditional and y is not None else None)

    def forward_with_embedding(self, z: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        """G(z) with an explicit class embedding emb (B, z_dim), e.g. a blend of two classes; None if unconditional.

        ``forward(z, y)`` is ``forward_with_embedding(z, embed(y))``.
        """
        return self.forward_from(self.features_before(z, emb, 0), 0)

    def features_before(self, z: torch.Tensor, emb: torch.Tensor | None, block: int) -> torch.Tensor:
        """The activations that enter self.blocks[block] for z and class input emb (the layers before it).

        ``forward_from(features_before(z, emb, k), k)`` is ``forward_with_embedding(z, emb)``: a caller that
        changes only the layers from block k on (pivotal tuning) computes the earlier ones once.
        """
        if self.conditional:
            if emb is None:
                raise ValueError("this generator is class-conditional: pass labels y of shape (B,)")
            z = torch.cat([z, emb.expand(z.size(0), -1)], dim=1)
        elif emb is not None:
            raise ValueError("this generator is unconditional: pass no class embedding")
        return self.blocks[:block](self.fc(z))  # fc: (B, C0, S0, S0)

    def forward_from(self, h: torch.Tensor, block: int) -> torch.Tensor:
        """The image (B, C, R, R) in [-1, 1] from the activations h that enter self.blocks[block]."""
        h = self.blocks[block:](h)  # (B, width, R, R)
        return torch.tanh(self.to_img(h))

    @torch.no_grad()
    def latent_weight(self) -> torch.Tensor:
        """(C0*S0*S0, z_dim): the linear map from z to the first layer's normalised pre-activation (eval mode).

        The z columns of the first linear layer, each output row scaled by its BatchNorm's eval-mode gain
        gamma / sqrt(running_var + eps): the matrix A whose top eigenvectors of A^T A are SeFa's directions.
        """
        lin, bn = self.fc[0], self.fc[2]
        gain = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).repeat_interleave(self.s0 * self.s0)  # (C0*S0*S0,)
        return lin.weight[:, : self.cfg.z_dim] * gain.unsqueeze(1)


class Discriminator(nn.Module):
    """D(x, y) -> real/fake logit of shape (B,); sigmoid(logit) estimates P(x is real)."""

    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        sn = nn.utils.parametrizations.spectral_norm if cfg.spectral_norm else (lambda m: m)
        _, n_down = _stages(cfg.resolution)
        n_down += 1  # one more stride-2 conv: 28 -> 14 -> 7 -> 4, 32 -> 16 -> 8 -> 4 -> 2
        chans = [min(cfg.width * 2**i, cfg.max_width) for i in range(n_down)]
        layers: list[nn.Module] = [sn(nn.Conv2d(cfg.channels, chans[0], 3, padding=1)), nn.LeakyReLU(0.2, inplace=True)]
        c_prev = chans[0]
        for c in chans:
            layers += [sn(nn.Conv2d(c_prev, c, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, inplace=True)]
            c_prev = c
        self.features = nn.Sequential(*layers)
        self.out = sn(nn.Linear(c_prev, 1))
        if cfg.num_classes > 0:
            self.embed = sn(nn.Embedding(cfg.num_classes, c_prev))
        self.apply(_dcgan_init)
        if cfg.spectral_norm:
            _refresh_spectral_norm(self)  # u, v were estimated for the weights before the DCGAN re-init

    @property
    def conditional(self) -> bool:
        return self.cfg.num_classes > 0

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x).sum(dim=(2, 3))  # (B, C_last): global sum pooling
        logit = self.out(h).squeeze(1)  # (B,)
        if self.conditional:
            if y is None:
                raise ValueError("this discriminator is class-conditional: pass labels y of shape (B,)")
            logit = logit + (self.embed(y) * h).sum(dim=1)  # projection term
        return logit

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_last) globally sum-pooled conv features: what the output and projection heads see."""
        return self.features(x).sum(dim=(2, 3))

    def class_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Conditional D: logits (B, K), D(x, y) for every class y in one pass (same heads as forward)."""
        if not self.conditional:
            raise ValueError("class_logits needs a class-conditional discriminator (num_classes > 0)")
        h = self.pooled_features(x)  # (B, C_last)
        return self.out(h) + h @ self.embed.weight.t()  # (B, 1) + (B, K): the projection term for each y


@torch.no_grad()
def _refresh_spectral_norm(module: nn.Module, iters: int = 15) -> None:
    """Re-estimate the singular vectors of every spectral-norm parametrization from the current weights.

    Without this, an untrained D in eval mode divides by a stale sigma and gives logits of ~1e7.
    """
    for m in module.modules():
        if hasattr(m, "parametrizations") and hasattr(m.parametrizations, "weight"):
            for p in m.parametrizations.weight:
                if hasattr(p, "_power_method"):
                    p._power_method(p._reshape_weight_to_matrix(m.parametrizations.weight.original), iters)


def _dcgan_init(m: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) weights, BatchNorm gamma ~ N(1, 0.02)."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
        w = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
        nn.init.normal_(w, 0.0, 0.02)
        if getattr(m, "bias", None) is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def count_params(m: nn.Module) -> int:
    """Number of parameters of a module."""
    return sum(p.numel() for p in m.parameters())


def config_dict(cfg: GeneratorConfig | DiscriminatorConfig) -> dict:
    """JSON-serialisable dict of a model config."""
    return asdict(cfg)


def sample_latents(n: int, z_dim: int, *, seed: int | None = None, device: str | torch.device = "cpu",
                   truncation: float = 1.0) -> torch.Tensor:
    """(n, z_dim) standard-normal latents; a seed alone fixes them (independent of device)."""
    g = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    z = torch.randn(n, z_dim, generator=g)
    if truncation != 1.0:
        z = z * float(truncation)
    return z.to(device)


def seed_latents(seed: int | None, n: int, z_dim: int, num_classes: int = 0, *, truncation: float = 1.0,
                 device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor | None]:
    """The seed rule: (z (n, z_dim), uniform labels (n,) or None) with z from `seed` and labels from `seed + 1`.

    Every sampler (GAN.generate, gan.sample, gan.metrics, the app) draws through here, so one seed names
    the same images everywhere; seed=None draws both from the global RNG.
    """
    z = sample_latents(n, z_dim, seed=seed, device=device, truncation=truncation)
    if not num_classes:
        return z, None
    g = torch.Generator().manual_seed(int(seed) + 1) if seed is not None else None
    return z, torch.randint(0, num_classes, (n,), generator=g).to(device)


def generate(G: Generator, n: int, *, seed: int | None = 0, labels: torch.Tensor | list[int] | int | None = None,
             truncation: float = 1.0, device: str | torch.device | None = None) -> torch.Tensor:
    """Sample n images (n, C, R, R) in [-1, 1] from G in eval mode; labels default to the seed's (seed_latents)."""
    device = device or next(G.parameters()).device
    given = G.conditional and labels is not None  # given labels replace the seed's: draw none
    z, y = seed_latents(seed, n, G.cfg.z_dim, 0 if given else G.cfg.num_classes, truncation=truncation, device=device)
    if given:
        if isinstance(labels, int):
            y = torch.full((n,), labels, dtype=torch.long)
        else:
            y = torch.as_tensor(labels, dtype=torch.long)
        if y.min() < 0 or y.max() >= G.cfg.num_classes:
            raise ValueError(f"labels must be in [0, {G.cfg.num_classes - 1}], got {y.tolist()[:8]}")
        y = y.to(device)
    was_training = G.training
    G.eval()
    with torch.no_grad():
        out = G(z, y)
    G.train(was_training)
    return out
