"""The zoo's networks: the small generators that tutorials teach, and their discriminators.

Each family differs from this project's generator in the trace it leaves: fully connected layers
(pixel noise, no spatial prior), transposed convolutions (checkerboards), nearest or pixel-shuffle
upsampling, or a decoder trained for reconstruction (blur).  All map z (B, z_dim) to (B, 1, 28, 28) in
[-1, 1]; a conditional net also takes labels (B,).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class MLPGenerator(nn.Module):
    """Goodfellow et al. (2014)-style fully connected G (the PyTorch-tutorial GAN), optionally conditional."""

    def __init__(self, z_dim: int = 100, hidden: tuple[int, ...] = (256, 512, 1024), num_classes: int = 0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, num_classes) if num_classes else None
        layers, d = [], z_dim + num_classes
        for h in hidden:
            layers += [nn.Linear(d, h), nn.LeakyReLU(0.2)]
            d = h
        self.net = nn.Sequential(*layers, nn.Linear(d, 784), nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(y)], 1)
        return self.net(z).view(-1, 1, 28, 28)


class MLPDiscriminator(nn.Module):
    """Fully connected D with dropout (the 2014 paper's maxout nets, simplified), optionally conditional."""

    def __init__(self, hidden: tuple[int, ...] = (512, 256), num_classes: int = 0) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, num_classes) if num_classes else None
        layers, d = [], 784 + num_classes
        for h in hidden:
            layers += [nn.Linear(d, h), nn.LeakyReLU(0.2), nn.Dropout(0.3)]
            d = h
        self.net = nn.Sequential(*layers, nn.Linear(d, 1))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = x.flatten(1)
        if self.embed is not None:
            h = torch.cat([h, self.embed(y)], 1)
        return self.net(h).flatten()


class ConvGenerator(nn.Module):
    """DCGAN-style G from a 7x7 map: 'convT' (transposed 4x4 convs, checkerboards), 'nearest' or 'bilinear'
    (upsample + 3x3 conv) or 'shuffle' (sub-pixel convolution), with batch norm."""

    def __init__(self, z_dim: int = 100, width: int = 64, upsample: str = "convT") -> None:
        super().__init__()
        if upsample not in ("convT", "nearest", "bilinear", "shuffle"):
            raise ValueError(f"upsample {upsample!r} is not one of convT, nearest, bilinear, shuffle")
        self.width = width
        self.fc = nn.Sequential(nn.Linear(z_dim, 2 * width * 49), nn.BatchNorm1d(2 * width * 49), nn.ReLU())

        def up(cin: int, cout: int, last: bool) -> list[nn.Module]:
            if upsample == "convT":
                layers: list[nn.Module] = [nn.ConvTranspose2d(cin, cout, 4, 2, 1)]
            elif upsample in ("nearest", "bilinear"):
                layers = [nn.Upsample(scale_factor=2, mode=upsample), nn.Conv2d(cin, cout, 3, 1, 1)]
            else:
                layers = [nn.Conv2d(cin, 4 * cout, 3, 1, 1), nn.PixelShuffle(2)]
            return layers + ([nn.Tanh()] if last else [nn.BatchNorm2d(cout), nn.ReLU()])

        self.net = nn.Sequential(*up(2 * width, width, False), *up(width, 1, True))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self.fc(z).view(-1, 2 * self.width, 7, 7))


class ConvDiscriminator(nn.Module):
    """DCGAN D (strided 4x4 convs, LeakyReLU); norm 'batch', 'spectral' or 'none' (WGAN-GP's critic)."""

    def __init__(self, width: int = 64, norm: str = "batch") -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm if norm == "spectral" else (lambda m: m)
        mid = [nn.BatchNorm2d(2 * width)] if norm == "batch" else []
        self.net = nn.Sequential(sn(nn.Conv2d(1, width, 4, 2, 1)), nn.LeakyReLU(0.2),
                                 sn(nn.Conv2d(width, 2 * width, 4, 2, 1)), *mid, nn.LeakyReLU(0.2),
                                 nn.Flatten(), sn(nn.Linear(2 * width * 49, 1)))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x).flatten()


class ConvVAE(nn.Module):
    """A small convolutional VAE (Kingma and Welling 2014); its decoder is the 'generator' of the family."""

    def __init__(self, z_dim: int = 16, width: int = 32) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.enc = nn.Sequential(nn.Conv2d(1, width, 4, 2, 1), nn.ReLU(), nn.Conv2d(width, 2 * width, 4, 2, 1),
                                 nn.ReLU(), nn.Flatten(), nn.Linear(2 * width * 49, 2 * z_dim))
        self.dec_fc = nn.Sequential(nn.Linear(z_dim, 2 * width * 49), nn.ReLU())
        self.dec = nn.Sequential(nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.ReLU(),
                                 nn.ConvTranspose2d(width, 1, 4, 2, 1))
        self.width = width

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits of the pixels (B, 1, 28, 28) in [0, 1] after a sigmoid."""
        return self.dec(self.dec_fc(z).view(-1, 2 * self.width, 7, 7))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Samples: the decoder's mean image mapped to [-1, 1]."""
        return torch.sigmoid(self.decode(z)) * 2.0 - 1.0

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Negative ELBO per image for x in [-1, 1] (Bernoulli likelihood on [0, 1] pixels)."""
        mu, logvar = self.enc(x).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        rec = F.binary_cross_entropy_with_logits(self.decode(z), (x + 1) / 2, reduction="sum") / x.size(0)
        kl = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum() / x.size(0)
        return rec + kl
