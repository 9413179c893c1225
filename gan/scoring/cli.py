"""Command line: python -m gan.scoring DIR -> DIR/calibration.json (the game D) and its held-out ROC AUC."""

from __future__ import annotations

import argparse
import sys
import time

from .analysis import classifier_status
from .calibration import load_calibration, write_calibration
from .ood import OOD_TRAIN_IMAGES


def main(argv: list[str] | None = None) -> int:
    """python -m gan.scoring DIR [--n-real N] [--n-fake N] [--seed S] [--data-dir D]: write calibration.json."""
    p = argparse.ArgumentParser(prog="python -m gan.scoring",
                                description="Calibrate a model's discriminator and write DIR/calibration.json. "
                                            "(The critic: fashion-gan critic DIR.)")
    p.add_argument("folder", help="model folder (config.json + *.safetensors)")
    p.add_argument("--n-real", type=int, default=5000, help="held-out real test images (default: 5000)")
    p.add_argument("--n-fake", type=int, default=5000, help="generated images (default: 5000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--n-ood-train", type=int, default=OOD_TRAIN_IMAGES,
                   help=f"training images for the OOD statistics (default: {OOD_TRAIN_IMAGES})")
    p.add_argument("--data-dir", default=None, help="folder with the data set files (default: auto)")
    args = p.parse_args(argv)
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        path = write_calibration(args.folder, n_real=args.n_real, n_fake=args.n_fake, seed=args.seed,
                                 data_dir=args.data_dir, n_ood_train=args.n_ood_train)
    except (ValueError, OSError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cal = load_calibration(args.folder)
    if cal is None:
        print(f"error: {path} could not be read back", file=sys.stderr)
        return 2
    ood = (f"; OOD flags {100 * cal.ood['fpr_real']:.1f}% of real, {100 * cal.ood['rate_fake']:.1f}% of generated"
           if cal.ood else "; no OOD statistics (" + classifier_status() + ")")
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB) in {time.perf_counter() - t0:.1f} s wall, "
          f"{time.process_time() - c0:.1f} s CPU (calibration itself {cal.seconds:.1f} s wall)")
    print(cal.summary() + ood)
    return 0
