"""Compute a model folder's sliders and write them there: ``write_directions(folder)``.

The fitting is gan.latent.fitting, the container and its files gan.latent.directions; this module joins
them for the finisher (gan.finish) and the command line (``fashion-gan directions DIR``, gan.latent.cli).
"""

from __future__ import annotations

from pathlib import Path

import torch.nn as nn

from ..pretrained import GAN
from .combine import MIN_PER_CLASS, attribute_sliders, fill_classes
from .directions import save_directions
from .fitting import compute_directions


def write_directions(folder: str | Path, *, n: int = 20000, k: int = 8, seed: int = 0,
                     classifier: nn.Module | None | str = "auto", verbose: bool = False,
                     fill_seeds: tuple[int, ...] = (), **kwargs) -> Path:
    """Compute directions for the model in folder and store them there; returns the JSON path.

    fill_seeds: fit again with each of these seeds and give every class left with fewer than three attribute
    sliders the other fit's passing directions (gan.latent.combine)."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder} is not a finished model folder (no config.json); pass the folder that "
                         f"train.py wrote, e.g. runs/fashion-mnist or checkpoints")
    model = GAN.from_pretrained(str(folder))
    d = compute_directions(model, n=n, k=k, seed=seed, classifier=classifier, verbose=verbose, **kwargs)
    for s in fill_seeds:
        if all(len(attribute_sliders(d, c)) >= MIN_PER_CLASS for c in range(model.num_classes)):
            break
        other = compute_directions(model, n=n, k=k, seed=s, classifier=classifier, verbose=verbose, **kwargs)
        d, added = fill_classes(d, other, list(model.class_names))
        if verbose:
            print(f"seed {s} adds: {', '.join(added) or 'nothing'}")
    return save_directions(d, folder)
