"""The detector's data: real images, the shipped G's samples and the zoo's, each in the views a user uploads.

What never touches what: training batches come from real *training* images (minus a validation split),
fresh-seeded samples of the shipped G and the *training* split of each included zoo family (minus a
validation share).  Validation (early stopping, the detector's Platt scaling and the verdict's
combination) uses the held-out training images, G samples of other seeds and the zoo's validation
share.  The zoo's *test* split and real *test* images are never used here: benchmarks/critic.py
measures on them, and a family left out (``exclude``) contributes nothing at all.

Views: "clean" (as generated), "upload" (a PNG upload through the app's preprocessing) and "photo"
(the photo-like round trip); round trips are made once per image into pools, on both sides alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..data import load_dataset, to_float
from ..pretrained import GAN
from .calibration import generate_images
from .roundtrip import round_trip

VIEWS = ("clean", "upload", "photo")
VIEW_MIX = {"clean": 0.4, "upload": 0.35, "photo": 0.25}  # share of each view in a training batch
# of a batch's generated half, the shipped G's samples (the rest: the zoo); 1/6 beat 1/3 on three held-out folds
# and on the model's own samples (docs/critic.md)
G_SHARE = 1 / 6
G_VAL_SEED, G_TRAIN_SEED = 8_101, 8_102


def views(x: torch.Tensor, seed: int, *, halves: bool = False) -> dict[str, torch.Tensor]:
    """x (N, 1, 28, 28) in [-1, 1] in every view; halves: each round trip of one half only (a training
    pool: half the round-trip time, and no image seen in two views)."""
    h = len(x) // 2
    parts = {"upload": x[:h], "photo": x[h:]} if halves else {"upload": x, "photo": x}
    return {"clean": x, **{v: round_trip(parts[v], v, seed=seed + k) for k, v in enumerate(VIEWS[1:])}}


@torch.no_grad()
def app_like_samples(model: GAN, n: int, seed: int) -> torch.Tensor:
    """n samples of G: half as drawn, a quarter with the latent scaled by 0.5..1.5 (the truncation slider),
    a quarter with a class embedding blended between two classes (the Interpolate tab)."""
    G = model.generator
    gen = torch.Generator().manual_seed(seed)
    plain = generate_images(model, n - n // 2, seed=seed)
    k = n // 2
    z = torch.randn(k, G.cfg.z_dim, generator=gen)
    z[: k // 2] *= (torch.rand(k // 2, generator=gen) + 0.5)[:, None]
    emb = None
    if G.conditional:
        table = G.embed.weight.detach().cpu()
        y0, y1 = torch.randint(0, G.cfg.num_classes, (2, k), generator=gen)
        t = torch.zeros(k)
        t[k // 2:] = torch.rand(k - k // 2, generator=gen)
        emb = table[y0] * (1 - t[:, None]) + table[y1] * t[:, None]
    was = G.training
    G.eval()
    out = torch.cat([G.forward_with_embedding(z[i:i + 500], emb[i:i + 500]) if emb is not None
                     else G(z[i:i + 500]) for i in range(0, k, 500)]) if k else plain[:0]
    G.train(was)
    return torch.cat([plain, out.float().clamp(-1, 1).cpu()])


@dataclass
class Side:
    """Images of one source (real, the shipped G, or one zoo family) in each view."""

    train: dict[str, torch.Tensor]
    val: dict[str, torch.Tensor]


class DetectorData:
    """Every source's training and validation views, built once and shared by leave-one-out folds."""

    def __init__(self, model: GAN, zoo: dict, *, n_val: int = 1000, pool: int = 4000, zoo_val_share: float = 0.15,
                 seed: int = 0, data_dir: str | None = None, log: Callable[[str], None] = print) -> None:
        t0 = time.perf_counter()
        data = load_dataset("fashion-mnist", split="train", data_dir=data_dir)
        perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed + 500))
        real_train = to_float(data.images[perm[n_val:]])
        real_val = to_float(data.images[perm[:n_val]])
        self.real_all = real_train  # clean real images are drawn from all of them
        self.real = Side(views(real_train[:pool], seed + 1, halves=True), views(real_val, seed + 2))
        self.real.train["clean"] = real_train
        g_train = app_like_samples(model, 3 * pool, seed=G_TRAIN_SEED + 10 * seed)
        g_val = app_like_samples(model, n_val // 2, seed=G_VAL_SEED + 10 * seed)
        self.g = Side(views(g_train[:pool], seed + 3, halves=True), views(g_val, seed + 4))
        self.g.train["clean"] = g_train
        self.zoo: dict[str, Side] = {}
        for k, (name, fam) in enumerate(sorted(zoo.items())):
            x = to_float(fam.train)
            n = int(round(zoo_val_share * len(x)))
            self.zoo[name] = Side(views(x[n:], seed + 10 + 2 * k, halves=True), views(x[:n], seed + 11 + 2 * k))
        log(f"detector data: {len(real_train)} real, {len(g_train)} G samples, {len(self.zoo)} zoo families; "
            f"round trips in {time.perf_counter() - t0:.0f} s")

    def families(self, exclude: tuple[str, ...] = ()) -> list[str]:
        """The zoo families a fold learns from."""
        return [f for f in self.zoo if f not in exclude]

    def batch(self, n: int, families: list[str], gen: torch.Generator,
              g_share: float = G_SHARE, p_flip: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """(x (2n, 1, 28, 28), target (2n,) 1 = real): n real images, n generated (g_share of them the shipped
        G, whose own specialist is the critic, the rest the zoo's families); p_flip: see augment."""
        if not 0.0 <= g_share <= 1.0:
            raise ValueError(f"g_share must be in [0, 1], got {g_share}")
        real = self._draw(self.real.train, n, gen)
        n_zoo = int(n * (1.0 - g_share) + 1e-9) if families else 0
        fakes = [self._draw(self.g.train, n - n_zoo, gen)]
        if n_zoo:
            pick = torch.randint(0, len(families), (n_zoo,), generator=gen)
            for j, name in enumerate(families):
                k = int((pick == j).sum())
                if k:
                    fakes.append(self._draw(self.zoo[name].train, k, gen))
        x = torch.cat([real, *fakes])
        return augment(x, gen, p_flip=p_flip), torch.cat([torch.ones(n), torch.zeros(n)])

    @staticmethod
    def _draw(side: dict[str, torch.Tensor], n: int, gen: torch.Generator) -> torch.Tensor:
        counts = torch.multinomial(torch.tensor([VIEW_MIX[v] for v in VIEWS]), n, replacement=True, generator=gen)
        out = []
        for j, v in enumerate(VIEWS):
            k = int((counts == j).sum())
            if k:
                out.append(side[v][torch.randint(0, len(side[v]), (k,), generator=gen)])
        return torch.cat(out)

    def val_sets(self, families: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(real (N, ...), fake (M, ...), fake weights (M,)): every view; G and the zoo weigh half each."""
        real = torch.cat([self.real.val[v] for v in VIEWS])
        g = torch.cat([self.g.val[v] for v in VIEWS])
        zoo = [torch.cat([self.zoo[f].val[v] for v in VIEWS]) for f in families]
        w = [torch.full((len(g),), 1.0 / len(g) * (0.5 if zoo else 1.0))]
        w += [torch.full((len(z),), 0.5 / len(zoo) / len(z)) for z in zoo]
        return real, torch.cat([g, *zoo]), torch.cat(w)


def augment(x: torch.Tensor, gen: torch.Generator, p_blur: float = 0.1, p_resize: float = 0.1,
            p_flip: float = 0.0) -> torch.Tensor:
    """CNNDetection-style augmentation, on both sides alike: Gaussian blur (sigma 0.3..1.5) and a bilinear
    down-and-up resize (to 14..26 pixels) of random images; with p_flip > 0, a left-right flip of that share
    (28 is even, so a flip keeps the 2x2 grid that upsampling traces sit on)."""
    x = x.clone()
    if p_flip > 0:  # drawn only when asked, so that p_flip = 0 keeps the random stream of earlier detectors
        flip = (torch.rand(len(x), generator=gen) < p_flip).nonzero().flatten()
        x[flip] = x[flip].flip(-1)
    u = torch.rand(len(x), generator=gen)
    blur = (u < p_blur).nonzero().flatten()
    for i in blur.tolist():
        s = 0.3 + 1.2 * float(torch.rand((), generator=gen))
        k = torch.arange(-2, 3, dtype=torch.float32)
        w = torch.exp(-k ** 2 / (2 * s * s))
        w = w / w.sum()
        img = F.pad(x[i:i + 1], (2, 2, 2, 2), mode="replicate")
        img = F.conv2d(img, w.view(1, 1, 1, 5))
        x[i:i + 1] = F.conv2d(img, w.view(1, 1, 5, 1))
    resize = ((u >= p_blur) & (u < p_blur + p_resize)).nonzero().flatten()
    for i in resize.tolist():
        s = int(torch.randint(14, 27, (), generator=gen))
        small = F.interpolate(x[i:i + 1], size=(s, s), mode="bilinear", antialias=True, align_corners=False)
        x[i:i + 1] = F.interpolate(small, size=(28, 28), mode="bilinear", align_corners=False)
    return x.clamp(-1, 1)
