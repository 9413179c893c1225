"""Write samples of a model to an .npz file in Fashion-MNIST convention.

    python -m gan.sample --model checkpoints --n 10000 --out samples.npz [--seed 0] [--label 3]

The file holds ``images`` (N, 28, 28) uint8 with 0 = black background, i.e. round((x + 1) * 127.5) of
the generator's [-1, 1] output, and, for class-conditional models, ``labels`` (N,) int64: the requested
class of each image (--label, or uniformly random classes).  ``python -m gan.evaluate --samples FILE``
reads the same format.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from .data import to_uint8
from .hub import load_pretrained
from .models import seed_latents
from .pretrained import GAN


@torch.no_grad()
def sample_images(model: GAN, n: int, *, seed: int = 0, label: int | None = None,
                  batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray | None]:
    """n images (n, 28, 28) uint8 and their requested labels (None for unconditional models)."""
    if n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    G = model.generator.eval()
    k = model.num_classes
    if label is not None and not k:
        raise ValueError(f"--label {label}: this model is unconditional (it has no classes)")
    if label is not None and not 0 <= label < k:
        names = ", ".join(f"{i}={c}" for i, c in enumerate(model.class_names))
        raise ValueError(f"--label {label} is out of range; this model's classes are {names}")
    if G.cfg.channels != 1 or G.cfg.resolution != 28:
        raise ValueError(f"this model makes {G.cfg.channels}x{G.cfg.resolution}x{G.cfg.resolution} images; "
                         f"the .npz format holds 28x28 grayscale (Fashion-MNIST) images only")
    z, y = seed_latents(seed, n, model.z_dim, k if label is None else 0)
    if k and label is not None:
        y = torch.full((n,), label, dtype=torch.long)
    dev = next(G.parameters()).device
    out = [to_uint8(G(z[i:i + batch_size].to(dev), None if y is None else y[i:i + batch_size].to(dev))).cpu()
           for i in range(0, n, batch_size)]
    images = torch.cat(out)[:, 0].numpy()  # (n, 28, 28) uint8
    return images, None if y is None else y.numpy()


def check_out_path(path: str | Path) -> Path:
    """The --out path, if it ends in .npz and its folder exists."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"--out {path} must end in .npz")
    if not path.parent.is_dir():
        raise ValueError(f"--out {path}: folder {path.parent} does not exist")
    return path


def write_samples(path: str | Path, images: np.ndarray, labels: np.ndarray | None) -> Path:
    """Save images (and labels when given) to a compressed .npz file."""
    path = check_out_path(path)
    arrays = {"images": images} if labels is None else {"images": images, "labels": labels}
    np.savez_compressed(path, **arrays)
    return path


def main(argv: list[str] | None = None) -> int:
    """Command line: python -m gan.sample --model DIR --n N --out FILE.npz [--seed S] [--label K]."""
    p = argparse.ArgumentParser(prog="python -m gan.sample", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="model folder or Hub id (owner/name)")
    p.add_argument("--n", type=int, required=True, help="number of images")
    p.add_argument("--out", required=True, help="output file (.npz)")
    p.add_argument("--seed", type=int, default=0, help="random seed; fixes the latents and labels (default: 0)")
    p.add_argument("--label", type=int, default=None,
                   help="class to sample (conditional models; default: uniformly random classes)")
    args = p.parse_args(argv)
    try:
        if args.n < 1:
            raise ValueError(f"--n must be >= 1, got {args.n}")
        check_out_path(args.out)
        model = load_pretrained(args.model)
        images, labels = sample_images(model, args.n, seed=args.seed, label=args.label)
        path = write_samples(args.out, images, labels)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(images)} images{' with labels' if labels is not None else ''} to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
