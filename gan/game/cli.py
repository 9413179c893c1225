"""`python -m gan.game`: play the GAN game headless and write metrics.jsonl, frames, a GIF and summary.json.

    python -m gan.game --data ring --steps 2000 --out runs/game-ring
    python -m gan.game --data fashion-mnist --steps 2500 --out runs/game-fashion
    python -m gan.game --data ring --preset minimax --steps 300 --out runs/minimax
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from gan.data import DataError
from gan.game.engine import MAX_K, MAX_LR, OBJECTIVES, Caps, GameError
from gan.game.headless import RunOptions, run
from gan.game.presets import PRESETS, preset
from gan.game.toy import TOY_DATA, ToyError

DATA_CHOICES = (*[d for d in TOY_DATA if d != "drawn"], "drawn", "fashion-mnist")
MAX_STEPS = 1_000_000


def parser() -> argparse.ArgumentParser:
    """The command line of `python -m gan.game`."""
    p = argparse.ArgumentParser(prog="python -m gan.game", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="ring", help=f"one of {', '.join(DATA_CHOICES)} (default ring)")
    p.add_argument("--steps", type=int, default=2000, help="rounds to play; a round is k D updates + 1 G update")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--preset", default="default", help=f"one of {', '.join(PRESETS)}")
    p.add_argument("--loss", help=f"override the preset's loss: {', '.join(OBJECTIVES)}")
    p.add_argument("--lr-d", type=float, help=f"D's Adam learning rate, (0, {MAX_LR}]")
    p.add_argument("--lr-g", type=float, help=f"G's Adam learning rate, (0, {MAX_LR}]")
    p.add_argument("--k", type=int, help=f"D updates per G update, 1..{MAX_K}")
    p.add_argument("--gamma", type=float, help="R1 weight (r3gan: R1 and R2), >= 0")
    p.add_argument("--batch", type=int, help="batch size of each update")
    p.add_argument("--points", help="for --data drawn: a JSON file with a list of [x, y] points in [-2, 2]")
    p.add_argument("--frames", type=int, default=40, help="frames in the GIF (default 40)")
    p.add_argument("--gif-scale", type=float, default=1.0, help="shrink the GIF's frames to this fraction, (0, 1]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", help="folder with the Fashion-MNIST IDX files (default: Debian's package)")
    p.add_argument("--max-seconds", type=float, default=3600.0, help="wall-time cap of the run (default 3600)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    return p


def options(args: argparse.Namespace) -> RunOptions:
    """RunOptions from parsed arguments, or a ValueError/GameError naming the bad one."""
    if args.data not in DATA_CHOICES:
        raise ValueError(f"--data {args.data!r} is not one of {', '.join(DATA_CHOICES)}")
    if not 1 <= args.steps <= MAX_STEPS:
        raise ValueError(f"--steps must be in 1..{MAX_STEPS}, got {args.steps}")
    if not 1 <= args.frames <= 500:
        raise ValueError(f"--frames must be in 1..500, got {args.frames}")
    if not 0 < args.gif_scale <= 1:
        raise ValueError(f"--gif-scale must be in (0, 1], got {args.gif_scale}")
    if not args.max_seconds > 0:
        raise ValueError(f"--max-seconds must be > 0, got {args.max_seconds}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    p = preset(args.preset)
    kind = "fashion" if args.data == "fashion-mnist" else "toy"
    changes = {name: getattr(args, name) for name in ("loss", "lr_d", "lr_g", "k", "gamma", "batch")
               if getattr(args, name) is not None}
    settings = p.settings(kind).changed(**changes)
    points = _points(args.points) if args.data == "drawn" else None
    if args.points and args.data != "drawn":
        raise ValueError("--points is only used with --data drawn")
    return RunOptions(data=args.data, steps=args.steps, out=str(out), settings=settings, nets=p.nets,
                      frames=args.frames, gif_scale=args.gif_scale, seed=args.seed, data_dir=args.data_dir,
                      points=points,
                      caps=Caps(max_steps=args.steps * (settings.k + 1) + 1, max_seconds=args.max_seconds))


def _points(path: str | None) -> list:
    if not path:
        raise ValueError("--data drawn needs --points FILE.json (a list of [x, y] pairs in [-2, 2])")
    try:
        pts = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"--points {path}: cannot read a JSON list of [x, y] pairs ({type(e).__name__})") from None
    if not isinstance(pts, list) or not all(isinstance(q, list) and len(q) == 2 for q in pts):
        raise ValueError(f"--points {path} must hold a JSON list of [x, y] pairs")
    return pts


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 on success, 2 for a bad argument, 1 when the data cannot be read."""
    args = parser().parse_args(argv)
    try:
        opts = options(args)
    except (ValueError, GameError, ToyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        summary = run(opts)
    except (ToyError, GameError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0
