"""Do the sliders do what they say, class by class? Every attribute slider at +3 on seeds the fit never saw.

    python benchmarks/sliders.py [--model checkpoints] [--directions DIR] [--seeds 128] [--json out.json]

For every class and every attribute slider that acts on it: the seed latents ``latent_for_seed(s)`` for
s = 100000 .. 100000+N-1 (the fit draws its latents from one stream seeded with its own --seed, so these
are seeds it never used), rendered as that class at 0 and at +3. Printed per (class, slider): the slider's
own attribute change and the largest change of any other attribute, in sd of that class's real
Fashion-MNIST test images (gan.latent.attributes.Reference.unit), and the share of the seeds read as the
class at 0 that the metric classifier still reads as it at +3 ("class kept"; "same reading" is the share
of all seeds whose reading does not change, the older and stricter reading). A slider passes for a
class when it meets gan.latent.effects.CHECK. Principal directions (GANSpace, SeFa) act on every class
and have no attribute to be judged by; their summary row is printed last.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gan import GAN  # noqa: E402
from gan.classifier import load_classifier  # noqa: E402
from gan.hardware import hardware_description  # noqa: E402
from gan.latent import latent_for_seed, load_directions  # noqa: E402
from gan.latent.attributes import fashion_reference  # noqa: E402
from gan.latent.directions import LABEL_STEP, Directions  # noqa: E402
from gan.latent.effects import CHECK, ShiftEffect, measure_batch, shift_effects  # noqa: E402

FIRST_SEED = 100_000


def measure(model: GAN, d: Directions, name: str, c: int, z: torch.Tensor, clf, ref, base) -> ShiftEffect:
    """The effect of slider name at +LABEL_STEP on latents z of class c."""
    n = len(z)
    y = torch.full((n,), c, dtype=torch.long)
    emb = d.embedding_steps(name, y, n)
    return shift_effects(model.generator, z, y, LABEL_STEP * d.steps(name, y, n), clf, ref, list(model.class_names),
                         base=base, emb_offsets=None if emb is None else LABEL_STEP * emb)


def main(argv: list[str] | None = None) -> int:
    """Print the class x slider table (Markdown) for a model folder's directions."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="checkpoints", help="model folder (default: checkpoints)")
    p.add_argument("--directions", default=None, help="folder with directions.json (default: the model folder)")
    p.add_argument("--seeds", type=int, default=512, help="seeds per class (default: 512; at least 64)")
    p.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = p.parse_args(argv)
    if args.seeds < 64:
        p.error(f"--seeds {args.seeds}: use at least 64")
    torch.set_grad_enabled(False)
    t0 = time.time()
    model = GAN.from_pretrained(args.model).eval()
    d = load_directions(args.directions or args.model, z_dim=model.z_dim)
    if d is None:
        print(f"error: no directions.json (for these weights) in {args.directions or args.model}", file=sys.stderr)
        return 2
    if not model.num_classes:
        print("error: the per-class table needs a class-conditional model", file=sys.stderr)
        return 2
    clf, ref = load_classifier(), fashion_reference()
    z = torch.stack([latent_for_seed(FIRST_SEED + s, model.z_dim) for s in range(args.seeds)])
    names = list(model.class_names)
    attrs = [n for n, k in zip(d.names, d.kinds) if k == "attribute"]
    rows, out, passing, read = [], [], {}, {}
    for c, cname in enumerate(names):
        base = measure_batch(model.generator, z, torch.full((len(z),), c), clf)
        passing[cname] = []
        read[cname] = float((base.pred == c).float().mean())
        for name in attrs:
            if not d.acts_on(name, c):
                continue
            eff = measure(model, d, name, c, z, clf, ref, base)
            worst = max(((abs(v), b) for b, v in eff.sd.items() if b != name), default=(0.0, "-"))
            why = CHECK.failures(eff, name)
            space = d.class_info[d.index[name]].get(cname, {}).get("space", "z")
            if not why:
                passing[cname].append(f"{name} {eff.sd.get(name, 0.0):+.2f}")
            verdict = "yes" if not why else "no: " + "; ".join(why)
            rows.append(f"| {cname} | {name} | {space} | {eff.sd.get(name, 0.0):+.2f} | {worst[1]} {worst[0]:.2f} | "
                        f"{eff.class_kept:.0%} | {eff.same_reading:.0%} | {verdict} |")
            out.append({"class": cname, "slider": name, "space": space, "effects_sd": eff.sd,
                        "class_kept": eff.class_kept, "same_reading": eff.same_reading, "passes": not why,
                        "why_not": why})
    print(f"Attribute sliders of {args.model} (directions: {args.directions or args.model}) at +{LABEL_STEP:g}, "
          f"{args.seeds} unseen seeds per class ({FIRST_SEED}..{FIRST_SEED + args.seeds - 1}); changes in sd of "
          f"that class's real test images; class read by the metric classifier. Check: own >= {CHECK.own:g} sd, "
          f"largest other <= {CHECK.leak:g}x own, class kept >= {CHECK.kept:.0%}.")
    print(f"Machine: {hardware_description(torch.device('cpu'))}, {torch.get_num_threads()} torch threads; "
          f"{time.time() - t0:.0f} s.\n")
    print("| class | slider | moves | own (sd) | largest other (sd) | class kept | same reading | passes |")
    print("|---|---|---|---:|---|---:|---:|---|")
    print("\n".join(rows))
    print("\n| class | read as the class at 0 | attribute sliders that pass (own change at +3, sd of the class) | count |"
          "\n|---|---:|---|---:|")
    for cname, ok in passing.items():
        print(f"| {cname} | {read[cname]:.0%} | {', '.join(ok) or '-'} | {len(ok)} |")
    others = [n for n, k in zip(d.names, d.kinds) if k != "attribute"]
    if others:
        print(f"\nPrincipal directions (every class): {', '.join(others)}.")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "seeds": args.seeds, "first_seed": FIRST_SEED,
                                               "rows": out, "passing": passing,
                                               "read_as_class": read}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
