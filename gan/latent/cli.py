"""Command lines of the latent tools (entry points: they parse arguments, then call one library function).

    python -m gan.latent directions DIR [--seed S] [--fill-seeds 0]   # also: fashion-gan directions DIR
    python -m gan.latent attributes [--out docs/attributes.png]      # the attributes' extremes, as a figure
"""

from __future__ import annotations

import argparse
import sys
import time

from ..pretrained import ModelFormatError
from .build import write_directions
from .directions import TENSOR_FILE, load_directions


def directions_main(argv: list[str] | None = None, prog: str = "python -m gan.latent directions") -> int:
    """Compute labelled latent sliders for a model folder and write them there."""
    p = argparse.ArgumentParser(prog=prog, description="Compute labelled latent sliders for a model folder.")
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


def attributes_main(argv: list[str] | None = None, prog: str = "python -m gan.latent attributes") -> int:
    """Draw real test images at each attribute's extremes; print the spreads and class-label checks."""
    from ..data import FASHION_MNIST_CLASSES, DataError, load_dataset, to_float
    from .attributes import ATTRIBUTES, CLASS_CHECKS, class_auc, extremes_figure, measure_attributes, reference
    p = argparse.ArgumentParser(prog=prog, description=attributes_main.__doc__)
    p.add_argument("--out", default="docs/attributes.png", help="PNG to write (default: docs/attributes.png)")
    p.add_argument("--data-dir", default=None, help="folder with the Fashion-MNIST IDX files")
    args = p.parse_args(argv)
    try:
        test = load_dataset("fashion-mnist", split="test", data_dir=args.data_dir)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    names, x = list(FASHION_MNIST_CLASSES), to_float(test.images)
    ref = reference(x, test.labels, names, "Fashion-MNIST test images")
    print(f"wrote {extremes_figure(x, test.labels, names, args.out)}")
    print("| attribute | defined for | what is measured | 1 sd (pooled within class) |\n|---|---|---|---:|")
    for n, a in ATTRIBUTES.items():
        print(f"| {n} | {', '.join(a.classes) if a.classes else 'every class'} | {a.description} | {ref.sd[n]:.3f} |")
    values = measure_attributes(x)
    print("\n| attribute | low classes | high classes | ROC AUC |\n|---|---|---|---:|")
    for n, lo, hi in CLASS_CHECKS:
        print(f"| {n} | {', '.join(lo)} | {', '.join(hi)} | {class_auc(values[n], test.labels, names, lo, hi):.3f} |")
    return 0


COMMANDS = {"directions": directions_main, "attributes": attributes_main}


def main(argv: list[str] | None = None) -> int:
    """python -m gan.latent COMMAND [options]: dispatch to a latent tool's command line."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m gan.latent {directions,attributes} [options]\n\n"
              "  directions  compute a model folder's latent sliders (directions.json + .safetensors)\n"
              "  attributes  draw the garment attributes' extremes on real test images (docs/attributes.png)")
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}; choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])
