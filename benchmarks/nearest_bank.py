"""How many real images the nearest-garment signal's bank should hold, chosen on validation images only.

    python benchmarks/nearest_bank.py [--sizes 10000,30000,59000] [--model checkpoints] [--out FILE.json]

The signal alone (``gan.scoring.nearest``: log distance to the nearest bank image in the metric classifier's
embedding) separates 1,000 held-out real *training* images (the detector's validation split) from the
shipped G's validation samples and the validation share of each zoo family's training split, clean and
after the photo-like round trip, for each bank size.  No test image and no family's test split is used, so
the choice it informs leaves the leave-one-family-out and sealed measurements clean.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gan import GAN  # noqa: E402
from gan.data import load_dataset, to_float  # noqa: E402
from gan.scoring import analysis  # noqa: E402
from gan.scoring.detector_data import G_VAL_SEED, app_like_samples, views  # noqa: E402
from gan.scoring.measures import roc_auc  # noqa: E402
from gan.scoring.nearest import build_bank, log_nearest  # noqa: E402
from gan.zoo import load_zoo  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10000,30000,59000", help="bank sizes (real training images)")
    p.add_argument("--model", default=str(ROOT / "checkpoints"))
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=None, help="also write the ROC AUCs here (JSON)")
    args = p.parse_args(argv)
    model = GAN.from_pretrained(args.model)
    data = load_dataset("fashion-mnist", split="train", data_dir=args.data_dir)
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(500))  # DetectorData's split, seed 0
    real_train, real_val = to_float(data.images[perm[1000:]]), to_float(data.images[perm[:1000]])
    clf = analysis.get_classifier()
    if clf is None:
        raise SystemExit("the metric classifier is missing (gan/assets/classifier)")
    sources = {"real": views(real_val, 2), "shipped G": views(app_like_samples(model, 500, seed=G_VAL_SEED), 4)}
    for k, (name, fam) in enumerate(sorted(load_zoo().items())):
        x = to_float(fam.train)
        sources[name] = views(x[:int(round(0.15 * len(x)))], 11 + 2 * k)  # the validation share
    out = {}
    for n in (int(v) for v in args.sizes.split(",")):
        bank = build_bank(clf, real_train[:n])
        dist = {s: {v: log_nearest(clf, bank, x) for v, x in vs.items() if v != "upload"} for s, vs in sources.items()}
        out[n] = {s: {v: round(roc_auc(-dist["real"][v], -d[v]), 4) for v in d} for s, d in dist.items() if s != "real"}
        print(f"bank of {len(bank):,}: " + "; ".join(f"{s} {r['clean']:.3f} / {r['photo']:.3f}"
                                                     for s, r in out[n].items()), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
