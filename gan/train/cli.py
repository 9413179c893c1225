"""Train a GAN and write a model folder (config.json, safetensors weights, model card, samples).

The command line of train.py and of `fashion-gan train` (the same options; train.py only calls main()):

    python train.py                                   # Fashion-MNIST, class-conditional, CPU or GPU
    python train.py --dataset folder --data-dir imgs/ --no-conditional --resolution 64 --channels 3
    torchrun --nproc_per_node=4 train.py --batch-size 512
    python train.py --out runs/x --resume             # continue a killed run
    python train.py --push-to-hub me/fashion-gan      # publish when done (HF_TOKEN or `hf auth login`)
    fashion-gan train --epochs 5                      # the same, installed
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from dataclasses import MISSING

import torch

from ..checkpoint import CheckpointError
from ..data import DataError
from .distributed import is_main_process
from .options import TrainConfig, TrainingError, config_fields

HELP = {
    "dataset": "data set: fashion-mnist, mnist, cifar10, or folder (any folder of images)",
    "data_dir": "where the data lives: IDX files, a torchvision root, or an image folder",
    "out": "output model folder",
    "epochs": "passes over the training set",
    "steps": "total iterations (overrides --epochs)",
    "batch_size": "images per process per step",
    "limit": "use only the first N training images (smoke runs)",
    "resolution": "28, 32 or 64 (None: the data set's own; folder: 64)",
    "channels": "1 (grayscale) or 3 (RGB) (None: the data set's own)",
    "conditional": "class-conditional G and projection D",
    "z_dim": "latent size", "g_width": "generator width (channels of its last block)",
    "d_width": "discriminator width (channels of its first block)",
    "spectral_norm": "spectral normalisation in D",
    "loss": "GAN loss: ns (non-saturating), hinge, wgan-gp, rpgan (relativistic pairing, as in R3GAN)",
    "r1": "R1 gradient penalty weight on real data (0 = off; None: 0.05 with --loss rpgan, else 0)",
    "r2": "R2 gradient penalty weight on generated data (0 = off; None: 0.05 with --loss rpgan, else 0)",
    "gp_weight": "gradient penalty weight for wgan-gp",
    "d_steps": "D updates per G update",
    "lr_g": "generator learning rate (Adam)", "lr_d": "discriminator learning rate (Adam)",
    "lr_schedule": "learning-rate schedule after warm-up: constant, cosine or linear decay",
    "lr_warmup": "steps of linear learning-rate warm-up (0 = none)",
    "lr_final": "cosine, linear or --lr-cooldown: the learning rate at the last step, as a fraction of the base "
                "rate",
    "beta1": "Adam beta1", "beta2": "Adam beta2",
    "ema": "keep an EMA copy of G (the one sampled and shipped)", "ema_beta": "EMA decay per G step",
    "ema_halflife_kimg": "EMA half-life in thousands of images (StyleGAN2-style; overrides --ema-beta; 0 = off)",
    "augment": "DiffAugment policy, comma-separated: color, translation, cutout ('' = off)",
    "seed": "random seed (fixes weights, data order and noise)",
    "device": "auto, cpu, cuda or cuda:N",
    "amp": "bf16 autocast on GPU", "compile": "torch.compile G and D (GPU)",
    "channels_last": "channels_last memory format",
    "sample_every": "steps between progress grids", "ckpt_every": "steps between checkpoints",
    "log_every": "steps between metrics.jsonl rows",
    "eval_every": "epochs between FID evaluations (0 = off)", "eval_samples": "samples per FID evaluation",
    "ddp_timeout": "torchrun: seconds a rank waits at a collective before it stops with an error naming it",
    "extras": "after a full Fashion-MNIST run, compute the app's sliders, calibration and critic (measured on a shared "
              "2-core CPU: about 14 min for the per-class sliders, 16 min for the critic; later: "
              "fashion-gan finish DIR)",
    "resume": "continue the run in --out from its newest checkpoint",
    "overwrite": "replace whatever --out holds",
    "max_nonfinite": "consecutive NaN/inf steps tolerated (each skips the batch and halves the LRs)",
}


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """An option per TrainConfig field, plus the Hub options."""
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in config_fields():
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else None
        help_ = f"{f.metadata.get('help') or HELP.get(f.name, '')} (default: {default!r})"
        tp = f.type if not isinstance(f.type, str) else eval(f.type, vars(typing), {})  # noqa: S307 (our own annotations)
        if tp is bool or tp == bool | None:  # bool | None: --x / --no-x force it, neither leaves the auto default
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_)
        else:
            base = next((a for a in typing.get_args(tp) if a is not type(None)), tp) if isinstance(tp, types.UnionType) else tp
            p.add_argument(flag, type=base, default=default, help=help_, metavar=f.name.upper())
    hub = p.add_argument_group("Hugging Face Hub")
    hub.add_argument("--push-to-hub", metavar="OWNER/NAME", default=None,
                     help="upload the finished model folder to this Hub repo (default: None)")
    hub.add_argument("--private", action="store_true", help="create the Hub repo as private (default: False)")
    hub.add_argument("--hub-revision", metavar="BRANCH", default=None, help="Hub branch to push to (default: main)")
    return p


def _evaluator(cfg: TrainConfig):
    """FID evaluation in the metric classifier's features; built on first use, skipped with a note if unavailable."""
    state: dict = {}

    def evaluate(G):  # noqa: ANN001, ANN202
        if "fn" not in state:
            try:
                from ..metrics import training_evaluator
                state["fn"] = training_evaluator(cfg)
            except Exception as e:  # missing classifier weights or metrics extras: train on, without FID
                print(f"note: FID evaluation skipped ({type(e).__name__}: {str(e)[:160]})", file=sys.stderr)
                return {}
        return state["fn"](G)
    return evaluate


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Parse the options, train, write the model folder (and push it); return the exit status."""
    args = vars(build_parser(prog).parse_args(argv))
    hub = {k: args.pop(k) for k in ("push_to_hub", "private", "hub_revision")}
    if hub["push_to_hub"]:
        from ..hub import check_repo_id, has_token
        try:
            check_repo_id(hub["push_to_hub"])
        except ValueError as e:
            print(f"error: --push-to-hub: {e}", file=sys.stderr)
            return 2
        if not has_token():
            print("warning: no Hugging Face token (set HF_TOKEN or run `hf auth login`): the model will be "
                  "trained and saved locally, but not pushed", file=sys.stderr)
    try:
        cfg = TrainConfig(**args)
        from .loop import train
        evaluate_fn = _evaluator(cfg) if cfg.eval_every and cfg.dataset == "fashion-mnist" else None
        out = train(cfg, evaluate_fn=evaluate_fn)
    except torch.OutOfMemoryError as e:
        print(f"error: out of memory ({str(e).splitlines()[0][:160]}); lower --batch-size, or continue with "
              f"--resume after freeing memory", file=sys.stderr)
        return 2
    except (TrainingError, DataError, CheckpointError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: python train.py --out {args['out']} --resume", file=sys.stderr)
        return 130
    if hub["push_to_hub"] and is_main_process():  # under torchrun, rank 0 alone pushes the folder it wrote
        from ..finish import publish
        from ..hub import PushError
        try:
            url = publish(out, hub["push_to_hub"], private=hub["private"], revision=hub["hub_revision"])
            print(f"pushed {out} to {url}")
        except PushError as e:
            print(f"error: {e}", file=sys.stderr)  # names the local folder and the command to push later
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m gan.train.cli"))
