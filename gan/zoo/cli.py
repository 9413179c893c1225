"""python -m gan.zoo [--out assets/zoo] [--families a,b] [--sealed] [--samples 2500] [--seed 0] [--threads N]

Trains each family of ``gan.zoo.families`` on Fashion-MNIST's training images (minutes each on a CPU),
takes its samples at the recipe's snapshots, measures their FID against the real test images (the
metric classifier's features, as ``python -m gan.evaluate``) and writes them with ``gan.zoo.store``.
``--sealed`` makes the sealed families instead (``families.SEALED``, in assets/zoo/sealed), which nothing
learns from.
The same command, seed and library versions make the same samples.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch

from ..data import load_dataset, to_float
from ..hardware import cpu_name
from .families import FAMILIES, SEALED, Family
from .store import SEALED_DIR, ZOO_DIR, load_zoo, write_family
from .train import train_family


def _recipe_samples(fam: Family, n: int, seed: int, data_dir: str | None) -> tuple[torch.Tensor, dict]:
    """This project's own recipe (gan.train, width 32, another seed, fam.recipe's options) stopped at each snapshot."""
    from ..pretrained import GAN
    from ..train.loop import train
    from ..train.options import TrainConfig
    marks = sorted({max(1, round(s * fam.steps)) for s in fam.snapshots})
    options = dict(fam.recipe)
    offset = options.pop("seed_offset", 11)
    per = [n // len(marks) + (1 if i < n % len(marks) else 0) for i in range(len(marks))]
    out, t0 = [], time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for k, steps in enumerate(marks):
            cfg = TrainConfig(out=f"{tmp}/run", steps=steps, batch_size=fam.batch_size, g_width=32, d_width=32,
                              seed=seed + offset, **options, device="cpu", eval_every=0, extras=False, resume=k > 0,
                              data_dir=data_dir, sample_every=10**9, ckpt_every=10**9, log_every=10**9)
            train(cfg, progress=False)
            model = GAN.from_pretrained(f"{tmp}/run")
            x = model.generate(per[k], seed=seed * 1000 + steps, labels=torch.arange(per[k]) % 10)
            out.append(x.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)[:, 0])
    return torch.cat(out), {"seconds": round(time.time() - t0, 1), "snapshots": marks}


def _fid(samples: torch.Tensor, real_feats: torch.Tensor) -> float:
    from ..metrics import embed, fid
    feats, _ = embed(samples.unsqueeze(1))
    return round(fid(real_feats, feats), 2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gan.zoo", description=__doc__.split("\n\n")[1])
    p.add_argument("--out", default=None, help="folder of the samples (default: the checkout's assets/zoo, or "
                   "assets/zoo/sealed with --sealed)")
    p.add_argument("--families", default=None, help="comma-separated (default: all): " + ", ".join(FAMILIES)
                   + "; with --sealed: " + ", ".join(SEALED))
    p.add_argument("--sealed", action="store_true", help="the sealed families, which no detector learns from")
    p.add_argument("--samples", type=int, default=2500, help="samples per family (20%% of them are its test split)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--grid", default=None, metavar="PNG", help="only write a picture of the samples in --out (12 "
                   "test-split samples of each family, one family a row) to PNG")
    args = p.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    table = SEALED if args.sealed else FAMILIES
    args.out = args.out or str(SEALED_DIR if args.sealed else ZOO_DIR)
    names = [n.strip() for n in (args.families or ",".join(table)).split(",") if n.strip()]
    unknown = [n for n in names if n not in table]
    if unknown:
        p.error(f"unknown families {unknown}; choose from {', '.join(table)}")
    if args.grid:
        from .store import write_grid
        print(f"{write_grid(args.out, args.grid)}: " + ", ".join(sorted(load_zoo(args.out))))
        return 0
    from ..metrics import embed
    train_set = load_dataset("fashion-mnist", split="train", data_dir=args.data_dir)
    test = load_dataset("fashion-mnist", split="test", data_dir=args.data_dir)
    real_feats, _ = embed(test.images)
    real, labels = to_float(train_set.images.clone()), train_set.labels
    command = "python -m gan.zoo " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    for name in names:
        fam = table[name]
        print(f"{name}: {fam.description}", flush=True)
        if fam.loss == "recipe":
            samples, facts = _recipe_samples(fam, args.samples, args.seed, args.data_dir)
        else:
            samples, facts = train_family(fam, real, labels, n_samples=args.samples, seed=args.seed)
        f = _fid(samples, real_feats)
        info = {"description": fam.description, "loss": fam.loss, "steps": fam.steps, "batch_size": fam.batch_size,
                "conditional": fam.conditional, "fid": f, "seed": args.seed, "command": command,
                "machine": f"CPU: {cpu_name()}, {torch.get_num_threads()} threads", "torch": torch.__version__,
                **facts}
        write_family(args.out, name, samples, info)
        print(f"{name}: FID {f} ({facts['seconds']} s) -> {Path(args.out) / (name + '.npz')}", flush=True)
    return 0
