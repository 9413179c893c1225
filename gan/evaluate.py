"""Print a model's metric table next to the reference rows (see gan.metrics for what each column means).

    python -m gan.evaluate --model checkpoints [--n 10000] [--seed 0] [--write]
    python -m gan.evaluate --samples samples.npz

--write stores the results in MODEL/eval.json, which the model card and the app read:
``metrics`` (the model's row), ``references`` (rows for the same sample count), ``coverage`` and
``class_fid`` (per class name), ``memorization`` (distances and verdict), ``table`` (the Markdown).
"""

from __future__ import annotations

import argparse
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

from .evalreport import EVAL_FILE, memorization_markdown, metric_table
from .fileio import atomic_write_json
from .metrics import MIN_SAMPLES, evaluate_model, evaluate_samples
from .pretrained import ModelFormatError


def read_samples(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """images (N, 28, 28) uint8 and optional labels (N,) from an .npz file, with a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--samples {path}: no such file")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise ValueError(f"--samples {path} is not an .npz file ({type(e).__name__})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"--samples {path} is a single .npy array; expected an .npz with an 'images' array")
    with data:
        if "images" not in data.files:
            raise ValueError(f"--samples {path} has no 'images' array (it has: {', '.join(data.files) or 'nothing'})")
        try:
            images = data["images"]
            labels = data["labels"] if "labels" in data.files else None
        except ValueError as e:  # object arrays need pickle
            raise ValueError(f"--samples {path}: cannot read arrays without pickle ({e})") from None
    if images.dtype != np.uint8:
        raise ValueError(f"--samples {path}: 'images' must be uint8 in [0, 255] (0 = black background), "
                         f"got {images.dtype}; write round((x + 1) * 127.5) of [-1, 1] images")
    if not (images.ndim == 3 and images.shape[1:] == (28, 28)) and not (images.ndim == 4 and images.shape[1:] == (1, 28, 28)):
        raise ValueError(f"--samples {path}: 'images' must have shape (N, 28, 28) or (N, 1, 28, 28), got {images.shape}")
    if images.shape[0] < MIN_SAMPLES:
        raise ValueError(f"--samples {path}: need at least {MIN_SAMPLES} images, got {images.shape[0]}")
    if labels is not None and (labels.ndim != 1 or labels.shape[0] != images.shape[0]
                               or not np.issubdtype(labels.dtype, np.integer)):
        raise ValueError(f"--samples {path}: 'labels' must be integers of shape ({images.shape[0]},), "
                         f"got {labels.dtype} {labels.shape}")
    return images, labels


def run(*, model: str | None = None, samples: str | None = None, n: int = 10000, seed: int = 0,
        write: bool = False, classifier: str | None = None) -> dict:
    """Evaluate a model folder (or Hub id) or a samples file; with write, store MODEL/eval.json."""
    if (model is None) == (samples is None):
        raise ValueError("pass exactly one of --model DIR and --samples FILE.npz")
    if write and (model is None or not Path(model).is_dir()):
        raise ValueError("--write needs --model with a local folder (it writes MODEL/eval.json)")
    if n < MIN_SAMPLES:
        raise ValueError(f"--n must be >= {MIN_SAMPLES}, got {n}")
    if model is not None:
        from .hub import load_pretrained
        res = evaluate_model(load_pretrained(model), n=n, seed=seed, classifier_path=classifier)
        res["model"] = model
    else:
        images, labels = read_samples(samples)
        res = evaluate_samples(images, labels, seed=seed, classifier_path=classifier)
        res["samples"] = str(samples)
    res["table"] = metric_table(res, model_name="model")
    res["memorization_table"] = memorization_markdown(res)
    res["date"] = time.strftime("%Y-%m-%d")
    if write:
        atomic_write_json(Path(model) / EVAL_FILE, res)
    return res


def main(argv: list[str] | None = None) -> int:
    """Command line: python -m gan.evaluate (--model DIR | --samples FILE.npz) [--n N] [--seed S] [--write]."""
    p = argparse.ArgumentParser(prog="python -m gan.evaluate", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="model folder or Hub id (owner/name)")
    src.add_argument("--samples", help=".npz with 'images' (N, 28, 28) uint8 and optional 'labels' (N,)")
    p.add_argument("--n", type=int, default=10000, help="samples to draw from --model (default: 10000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--write", action="store_true", help="store the results in MODEL/eval.json")
    p.add_argument("--classifier", default=None, metavar="FILE",
                   help="feature classifier weights (default: the shipped one in gan/assets/classifier/); "
                        "reference statistics are cached in $GAN_CACHE_DIR (default ~/.cache/fashion-gan)")
    args = p.parse_args(argv)
    try:
        res = run(model=args.model, samples=args.samples, n=args.n, seed=args.seed, write=args.write,
                  classifier=args.classifier)
    except (ValueError, OSError, ModelFormatError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    src = args.model or args.samples
    print(f"{res['n_samples']} samples from {src}; references from {res['reference_samples']} images; "
          f"features: classifier with {res['classifier']['test_accuracy']:.2%} test accuracy\n")
    print(res["table"] + "\n")
    print(res["memorization_table"])
    print(f"\n({res['wall_time_s']:.1f} s)" + (f"; wrote {Path(args.model) / EVAL_FILE}" if args.write else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
