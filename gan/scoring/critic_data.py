"""The critic's data: real training images, the frozen generator, round-trip pools, validation and test views.

What never touches what (see ``gan.scoring.refine``): training batches come from real *training* images
(minus a validation split) and fresh samples; validation uses the held-out training images and samples of
seeds never used in training; test uses real *test* images and samples of yet other seeds, and is only
measured.  Round-tripped images (``roundtrip``) are made once, on both sides, so that the round trip
itself is never a cue.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch

from ..data import load_dataset, to_float
from ..pretrained import GAN
from . import analysis
from .calibration import generate_images, real_test_images
from .roundtrip import MODES, round_trip

if TYPE_CHECKING:
    from .refine import RefineOptions

VAL_SEED, TEST_SEED = 7_001, 7_002  # generate_images seeds of the validation and test samples


@dataclass
class Views:
    """One side (real or generated) of a data split in each view: images (N, C, R, R) and classifier labels."""

    images: dict[str, torch.Tensor]
    labels: dict[str, torch.Tensor | None]


def make_views(x: torch.Tensor, modes: tuple[str, ...], seed: int, clf, n_round_trip: int | None = None) -> Views:
    """x in each view (clean as is; round trips of its first n_round_trip images) with classifier labels."""
    imgs = {m: (x if m == "clean" else round_trip(x[:n_round_trip], m, seed=seed + k))
            for k, m in enumerate(modes)}
    return Views(imgs, {m: analysis.classifier_labels(clf, v) for m, v in imgs.items()})


class TrainingData:
    """Real training images, the frozen generator, round-trip pools, and the validation and test views."""

    def __init__(self, model: GAN, opts: "RefineOptions", log: Callable[[str], None]) -> None:
        self.model, self.opts = model, opts
        g = model.generator.cfg
        self.modes = tuple(m for m in MODES if m == "clean" or (opts.mix.get(m, 0) > 0 and g.resolution == 28
                                                                   and g.channels == 1))
        self.clf = analysis.model_classifier(model)
        data = load_dataset(model.dataset, split="train", data_dir=opts.data_dir, resolution=g.resolution,
                            channels=g.channels)
        perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(opts.seed))
        n_val = min(opts.n_val, len(data) // 4)
        train_idx = perm[n_val:] if opts.n_train is None else perm[n_val:n_val + opts.n_train]
        self.train_real = to_float(data.images[train_idx])  # (N, C, R, R) in [-1, 1]
        self._train_labels: torch.Tensor | None = None  # classifier labels, made when a candidate needs them
        t0 = time.perf_counter()
        pick = torch.randperm(len(self.train_real), generator=torch.Generator().manual_seed(opts.seed + 1))
        self.real_pool = self._pool(self.train_real[pick[:opts.pool]], 11)
        self.fake_pool = self._pool(generate_images(model, opts.pool, seed=opts.seed * 10 + 3), 13)
        log(f"round-trip pools: {len(self.modes) - 1} mode(s) x {opts.pool} images per side in "
            f"{time.perf_counter() - t0:.0f} s")
        self.val_real = make_views(to_float(data.images[perm[:n_val]]), self.modes, opts.seed + 21, self.clf)
        self.val_fake = make_views(generate_images(model, n_val, seed=VAL_SEED + 10 * opts.seed), self.modes,
                               opts.seed + 31, self.clf)
        test_real, self.test_split = real_test_images(model, opts.n_test, opts.seed + 41, opts.data_dir)
        n_rt = min(opts.n_test_round_trip, len(test_real))
        self.test_real = make_views(test_real, self.modes, opts.seed + 51, self.clf, n_rt)
        self.test_fake = make_views(generate_images(model, opts.n_test, seed=TEST_SEED + 10 * opts.seed), self.modes,
                                opts.seed + 61, self.clf, n_rt)
        self.n_val, self.n_rt = n_val, n_rt

    @property
    def train_labels(self) -> torch.Tensor:
        """The classifier's classes of the real training images (computed once, on first use)."""
        if self._train_labels is None:
            self._train_labels = analysis.classifier_labels(self.clf, self.train_real)
        return self._train_labels

    def _pool(self, x: torch.Tensor, seed: int) -> Views:
        modes = tuple(m for m in self.modes if m != "clean")
        return make_views(x, modes, self.opts.seed + seed, self.clf) if modes else Views({}, {})

    def _counts(self) -> dict[str, int]:
        w = {m: self.opts.mix.get(m, 0.0) for m in self.modes}
        total = sum(w.values())
        counts = {m: int(round(self.opts.batch_size * v / total)) for m, v in w.items()}
        counts["clean"] += self.opts.batch_size - sum(counts.values())
        return counts

    def batch(self, gen: torch.Generator, want_labels: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None,
                                                                       torch.Tensor | None]:
        """(real (B, C, R, R), fake (B, C, R, R), their classifier labels or None) for one training step."""
        parts: dict[str, list] = {"xr": [], "xf": [], "yr": [], "yf": []}
        for m, k in self._counts().items():
            if k <= 0:
                continue
            if m == "clean":
                i = torch.randint(0, len(self.train_real), (k,), generator=gen)
                xr, yr = self.train_real[i], (self.train_labels[i] if want_labels else None)
                xf = self._fresh(k, gen)
                yf = analysis.classifier_labels(self.clf, xf) if want_labels else None
            else:
                i = torch.randint(0, len(self.real_pool.images[m]), (k,), generator=gen)
                j = torch.randint(0, len(self.fake_pool.images[m]), (k,), generator=gen)
                xr, xf = self.real_pool.images[m][i], self.fake_pool.images[m][j]
                yr = None if self.real_pool.labels[m] is None else self.real_pool.labels[m][i]
                yf = None if self.fake_pool.labels[m] is None else self.fake_pool.labels[m][j]
            for key, v in (("xr", xr), ("xf", xf), ("yr", yr), ("yf", yf)):
                parts[key].append(v)
        cat = (lambda v: torch.cat(v) if want_labels and all(t is not None for t in v) else None)
        return torch.cat(parts["xr"]), torch.cat(parts["xf"]), cat(parts["yr"]), cat(parts["yf"])

    @torch.no_grad()
    def _fresh(self, k: int, gen: torch.Generator) -> torch.Tensor:
        """k fresh samples of the frozen generator, a share of them drawn as the app also draws them.

        Of a share ``opts.app_fakes``, half have their latent scaled by a factor in [0.5, 1.5] (the Generate
        tab's truncation slider) and half a class embedding blended between two classes (the Interpolate
        tab): images the app generates too, which a critic that saw only z ~ N(0, I) and pure classes would
        have to guess about.
        """
        G = self.model.generator
        dev = next(G.parameters()).device
        z = torch.randn(k, G.cfg.z_dim, generator=gen)
        kind = torch.rand(k, generator=gen)
        share = self.opts.app_fakes
        scale = torch.where(kind < share / 2, torch.rand(k, generator=gen) + 0.5, torch.ones(k))
        emb = None
        if G.conditional:
            y0 = torch.randint(0, G.cfg.num_classes, (k,), generator=gen)
            y1 = torch.randint(0, G.cfg.num_classes, (k,), generator=gen)
            t = torch.where((kind >= share / 2) & (kind < share), torch.rand(k, generator=gen), torch.zeros(k))
            table = G.embed.weight.detach().cpu()
            emb = (table[y0] * (1 - t[:, None]) + table[y1] * t[:, None]).to(dev)  # (k, z_dim)
        with analysis.eval_mode(G):
            return G.forward_with_embedding((z * scale[:, None]).to(dev), emb).float().cpu()
