"""FID through a model's whole training when it was continued with --init-from: the base run's evaluations, then
each continuation's, on one axis of epochs since the base run began (and one of training time).

    python benchmarks/lineage_curve.py --base runs/base-35ep --runs runs/cont45 runs/cont45-b256 \
        --start-epochs 35 47 --start-hours 2.19 2.53 --out docs/time_to_quality_cpu.png

A continuation's epochs are counted in images seen, so runs with another batch size line up. Each run's
``metrics.jsonl`` rows with an ``fid`` (every --eval-every epochs, --eval-samples samples) are plotted as they
are; the last row of each run is printed too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def fid_rows(folder: Path) -> tuple[list[dict], dict]:
    """The evaluation rows of a run's metrics.jsonl and its training_options.json (batch size, images)."""
    rows = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines() if x.strip()]
    opts_path = folder / "training_options.json"
    opts = json.loads(opts_path.read_text()) if opts_path.is_file() else {}
    return [r for r in rows if "fid" in r], opts


def curve(folder: Path, offset_epochs: float, offset_s: float, n_train: int, from_step: int = 0
          ) -> tuple[list, list, list]:
    """(epochs, hours, fid) of a run from step from_step on, shifted by where it started."""
    rows, opts = fid_rows(folder)
    rows = [r for r in rows if r["step"] >= from_step]
    batch = opts.get("batch_size", 128) * opts.get("world_size", 1)
    ep = [offset_epochs + r["step"] * batch / n_train for r in rows]
    hours = [(offset_s + r.get("time_s", 0.0)) / 3600 for r in rows]
    return ep, hours, [r["fid"] for r in rows]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="the run the others started from (its model folder)")
    p.add_argument("--runs", nargs="+", required=True, help="continuations (model folders or run folders)")
    p.add_argument("--labels", nargs="*", default=None, help="a label per run (default: folder names)")
    p.add_argument("--start-epochs", nargs="*", type=float, default=None,
                   help="epochs since the base began at which each run started (default: the base's length)")
    p.add_argument("--start-hours", nargs="*", type=float, default=None,
                   help="hours of training before each run started (default: the base's wall time)")
    p.add_argument("--from-steps", nargs="*", type=int, default=None,
                   help="per run, the first step to plot (a run resumed in a copy of another's folder)")
    p.add_argument("--base-label", default=None)
    p.add_argument("--out", default=str(ROOT / "docs" / "time_to_quality_cpu.png"))
    args = p.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base_rows, base_opts = fid_rows(Path(args.base))
    n_train = base_opts.get("num_train_images", 60000)
    base_ep, base_h, base_fid = curve(Path(args.base), 0.0, 0.0, n_train)
    base_epochs = base_opts.get("epochs", base_ep[-1] if base_ep else 0)
    base_s = base_opts.get("wall_time_s", 0.0)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    series = [(args.base_label or f"{Path(args.base).name} (base)", base_ep, base_h, base_fid)]
    labels = args.labels or [Path(r).name for r in args.runs]
    starts = args.start_epochs or [base_epochs] * len(args.runs)
    hours0 = [h * 3600 for h in args.start_hours] if args.start_hours else [base_s] * len(args.runs)
    first = args.from_steps or [0] * len(args.runs)
    if not len(labels) == len(starts) == len(hours0) == len(first) == len(args.runs):
        p.error("--labels, --start-epochs, --start-hours and --from-steps need one value per run")
    for run, label, e0, s0, f in zip(args.runs, labels, starts, hours0, first):
        series.append((label, *curve(Path(run), e0, s0, n_train, f)))
    for label, ep, hours, fid in series:
        a1.plot(ep, fid, marker="o", ms=3, label=label)
        a2.plot(hours, fid, marker="o", ms=3, label=label)
        if fid:
            print(f"{label}: FID {fid[-1]:.3f} at epoch {ep[-1]:.1f} ({hours[-1]:.2f} h of train.py's clock)")
    for ax, xl in ((a1, "epochs since the base run began"), (a2, "hours of train.py's clock (CPU)")):
        ax.set_xlabel(xl)
        ax.set_ylabel("FID (5,000 samples, metric classifier)")
        ax.set_yscale("log")
        ax.axvline(base_epochs if ax is a1 else base_s / 3600, color="grey", lw=0.8, ls="--")
        ax.grid(alpha=0.3)
    a1.legend(fontsize=8)
    fig.suptitle("FID through training, the base run and its --init-from continuations")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
