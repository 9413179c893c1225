"""Train a GAN and write a model folder (config.json, safetensors weights, model card, samples).

    python train.py                                   # Fashion-MNIST, class-conditional, CPU or GPU
    python train.py --dataset folder --data-dir imgs/ --no-conditional --resolution 64 --channels 3
    torchrun --nproc_per_node=4 train.py --batch-size 512
    python train.py --out runs/x --resume             # continue a killed run
    python train.py --push-to-hub me/fashion-gan      # publish when done (HF_TOKEN or `hf auth login`)
    python train.py --help                            # every option with its default

The options and the run live in the package (gan.train.cli; installed: `fashion-gan train`).
"""

from __future__ import annotations

import sys

from gan.train.cli import HELP, build_parser, main  # noqa: F401 - the script's interface

if __name__ == "__main__":
    sys.exit(main())
