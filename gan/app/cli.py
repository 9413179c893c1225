"""Command line of the app's assets: ``python -m gan.app write-examples [MODEL_DIR]`` (the Score tab's examples)."""

from __future__ import annotations

import argparse

from .context import load_context
from .examples import EXAMPLES_DIR, write_examples


def main(argv: list[str] | None = None, prog: str = "python -m gan.app") -> int:
    """python -m gan.app write-examples [MODEL_DIR] [--out assets/examples] [--data-dir DIR]."""
    ap = argparse.ArgumentParser(prog=prog, description="The Score tab's example images.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write-examples", help="write the Score tab's example PNGs")
    w.add_argument("model_dir", nargs="?", default=None, help="model folder (default: the app's model)")
    w.add_argument("--out", default=str(EXAMPLES_DIR))
    w.add_argument("--data-dir", default=None)
    args = ap.parse_args(argv)
    ctx = load_context(local_dir=args.model_dir) if args.model_dir else load_context()
    for p in write_examples(args.out, ctx.model, data_dir=args.data_dir):
        print(p)
    return 0
