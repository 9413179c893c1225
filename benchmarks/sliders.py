"""Do the sliders do what they say? Every slider at +3 on many seeds, measured independently of its fit.

    python benchmarks/sliders.py [--model checkpoints] [--directions DIR] [--seeds 128] [--json out.json]

For each slider: seeds 0..N-1 (the app's seed latents, ``latent_for_seed``), with the classes the slider
acts on taken in turn (every class for a slider that acts on all), rendered at 0 and at +3. Printed
per slider: the mean change of every attribute in sd of real Fashion-MNIST test images (the pooled
within-class sd, gan.latent.attributes.fashion_reference), and the share of seeds whose class the metric
classifier (gan.classifier.load_classifier) reads the same at +3 as at 0. An attribute slider meets
the goals when its attribute moves >= 1 sd, no other attribute moves more than half as much, and the
class is kept for >= 90% of seeds. ``--directions`` measures another folder's directions.json (e.g.
an older version) against the same model.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gan import GAN  # noqa: E402
from gan.classifier import load_classifier  # noqa: E402
from gan.latent import SEED_RANGE, latent_for_seed, load_directions  # noqa: E402
from gan.latent.attributes import ATTRIBUTES, fashion_reference  # noqa: E402
from gan.latent.directions import LABEL_STEP, Directions  # noqa: E402
from gan.latent.effects import ShiftEffect, shift_effects  # noqa: E402

GOAL_OWN, GOAL_LEAK, GOAL_KEPT = 1.0, 0.5, 0.9


def measure_slider(model: GAN, d: Directions, name: str, seeds: int, clf, ref, step: float = LABEL_STEP
                   ) -> tuple[ShiftEffect, list[int] | None]:
    """The effect of one slider at +step over `seeds` seed latents, classes taken in turn."""
    classes = d.classes(name)
    C = model.num_classes
    pool = classes if classes is not None else list(range(C))
    z = torch.stack([latent_for_seed(s, model.z_dim) for s in range(seeds)])
    y = torch.tensor([pool[i % len(pool)] for i in range(seeds)]) if C else None
    offsets = step * d.steps(name, y, seeds)
    return shift_effects(model.generator, z, y, offsets, clf, ref, list(model.class_names) if C else []), classes


def verdict(d: Directions, name: str, eff: ShiftEffect) -> str:
    """'yes' / 'no (why)' for attribute sliders, '-' for principal directions."""
    i = d.index[name]
    if d.kinds[i] != "attribute" or name not in eff.sd:
        return "-"
    own = eff.sd[name]
    worst = max(((abs(v), b) for b, v in eff.sd.items() if b != name), default=(0.0, "-"))
    why = []
    if own < GOAL_OWN:
        why.append(f"own {own:+.2f} < {GOAL_OWN:g}")
    if worst[0] > GOAL_LEAK * abs(own):
        why.append(f"{worst[1]} {worst[0]:.2f} > half")
    if not math.isnan(eff.class_kept) and eff.class_kept < GOAL_KEPT:
        why.append(f"class kept {eff.class_kept:.0%} < {GOAL_KEPT:.0%}")
    return "yes" if not why else "no (" + "; ".join(why) + ")"


def main(argv: list[str] | None = None) -> int:
    """Print the slider table (Markdown) for a model folder's directions."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="checkpoints", help="model folder (default: checkpoints)")
    p.add_argument("--directions", default=None, help="folder with directions.json (default: the model folder)")
    p.add_argument("--seeds", type=int, default=128, help="seeds per slider (default: 128; at least 64)")
    p.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = p.parse_args(argv)
    if not 64 <= args.seeds <= SEED_RANGE[1]:
        p.error(f"--seeds {args.seeds}: use at least 64")
    torch.set_grad_enabled(False)
    t0 = time.time()
    model = GAN.from_pretrained(args.model).eval()
    d = load_directions(args.directions or args.model, z_dim=model.z_dim)
    if d is None:
        print(f"error: no directions.json (for these weights) in {args.directions or args.model}", file=sys.stderr)
        return 2
    clf, ref = load_classifier(), fashion_reference()
    attrs = [a for a in ATTRIBUTES if a in ref.sd]
    rows, out = [], []
    for name in d.names:
        eff, classes = measure_slider(model, d, name, args.seeds, clf, ref)
        i = d.index[name]
        own_attr = name if name in eff.sd else max(eff.sd, key=lambda a: abs(eff.sd[a]))
        worst = max(((abs(v), b) for b, v in eff.sd.items() if b != own_attr), default=(0.0, "-"))
        where = "all" if classes is None else ", ".join(model.class_names[c] for c in classes)
        cells = [f"{eff.sd[a]:+.2f}" if a in eff.sd else "" for a in attrs]
        rows.append(f"| {name} | {d.kinds[i]} | {where} | {own_attr} {eff.sd[own_attr]:+.2f} | "
                    f"{worst[1]} {worst[0]:.2f} | {eff.class_kept:.0%} | {verdict(d, name, eff)} | " + " | ".join(cells) + " |")
        out.append({"name": name, "kind": d.kinds[i], "classes": where, "effects_sd": eff.sd,
                    "class_kept": eff.class_kept, "meets_goals": verdict(d, name, eff), "seeds": args.seeds})
    print(f"Sliders of {args.model} (directions: {args.directions or args.model}), +{LABEL_STEP:g} on {args.seeds} "
          f"seeds each; changes in sd of real test images (pooled within class); class read by the metric classifier.")
    print(f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads; "
          f"{time.time() - t0:.0f} s.\n")
    print("| slider | kind | classes | own attribute | largest other | class kept | meets goals | "
          + " | ".join(attrs) + " |")
    print("|" + "---|" * 7 + "---:|" * len(attrs))
    print("\n".join(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "sliders": out}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
