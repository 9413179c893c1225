"""Compute a model folder's sliders and write them there: ``python -m gan.latent.directions DIR``.

The fitting is gan.latent.fitting, the container and its files gan.latent.directions; this module joins
them (the writer ``write_directions(folder)``, which train.py's finishing steps call, and the command line).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch.nn as nn

from ..pretrained import GAN, ModelFormatError
from .combine import MIN_PER_CLASS, attribute_sliders, fill_classes
from .directions import TENSOR_FILE, load_directions, save_directions
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


def main(argv: list[str] | None = None) -> int:
    """Command line: python -m gan.latent.directions DIR [--n N] [--k K] [--seed S] [--no-classifier]."""
    p = argparse.ArgumentParser(prog="python -m gan.latent.directions",
                                description="Compute labelled latent sliders for a model folder.")
    p.add_argument("folder", help="model folder (config.json + generator.safetensors)")
    p.add_argument("--n", type=int, default=20000, help="latent samples for the fits (default: 20000)")
    p.add_argument("--k", type=int, default=8, help="principal components (GANSpace and SeFa) to try (default: 8)")
    p.add_argument("--tune", type=int, default=192, help="samples per class to tune and label sliders (default: 192)")
    p.add_argument("--check", type=int, default=512,
                   help="samples per class on which a tuned slider is accepted or dropped (default: 512)")
    p.add_argument("--class-samples", type=int, default=0,
                   help="samples of a class for its fit in z and G's class input (default: 0, n / classes)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--fill-seeds", default="",
                   help="comma-separated seeds of further fits, tried in order, that give a class left with fewer "
                        "than three attribute sliders the passing directions they found for it (default: none)")
    p.add_argument("--spaces", default="z,z+class",
                   help="where sliders may move, tried in order per class: z, z+class (default: z,z+class)")
    p.add_argument("--no-classifier", action="store_true",
                   help="skip the metric classifier (no class retention, no class directions)")
    args = p.parse_args(argv)
    t0 = time.time()
    try:
        path = write_directions(args.folder, n=args.n, k=args.k, seed=args.seed, verbose=True, n_tune=args.tune,
                                n_check=args.check, class_samples=args.class_samples,
                                spaces=tuple(s.strip() for s in args.spaces.split(",") if s.strip()),
                                fill_seeds=_seeds(args.fill_seeds),
                                classifier=None if args.no_classifier else "auto")
    except (ModelFormatError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    d = load_directions(args.folder)
    for lab in d.labels if d else []:
        print(f"  {lab}")
    print(f"wrote {path} and {TENSOR_FILE} ({len(d) if d else 0} sliders) in {time.time() - t0:.1f} s")
    return 0


def _seeds(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ValueError(f"--fill-seeds takes comma-separated integers, got {text!r}") from None


if __name__ == "__main__":
    sys.exit(main())
