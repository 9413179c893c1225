"""Tables and a time-to-quality plot from the summaries that tools/gpu_train.py writes (summary.json).

    python tools/gpu_report.py benchmarks/results/h200_35ep.json benchmarks/results/h200_gamma_5ep.json \\
        --baseline checkpoints/metrics.jsonl --plot docs/time_to_quality_gpu.png

Prints one markdown table per summary: each run's recipe, length, wall time, training images/s and its
10,000-sample evaluation.  The plot shows FID (the runs' own 5,000-sample evaluations) against epochs and
against wall-clock time, with an optional baseline run's metrics.jsonl for comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

COLUMNS = ("fid", "precision", "recall", "label_accuracy", "coverage_min")


def recipe(opts: dict) -> str:
    """A run's options in a few words: width and R1/R2 weight."""
    return f"G/D width {opts.get('g_width')}/{opts.get('d_width')}, R1/R2 gamma {opts.get('r1')}"


def table(summary: dict) -> str:
    """One markdown row per run of a summary."""
    lines = ["| run | recipe | seed | epochs | wall time | images/s (median) | FID | precision | recall | "
             "label accuracy | min class share |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in summary.items():
        ev, opts = r.get("eval_10k") or {}, r.get("options", {})
        vals = " | ".join(f"{ev[c]:.3f}" if c in ev else "-" for c in COLUMNS)
        ips = f"{r['img_per_s_median']:,.0f}" if r.get("img_per_s_median") else "-"
        wall = f"{r['wall_time_s']:.0f} s" if r.get("wall_time_s") else "-"
        lines.append(f"| {name} | {recipe(opts)} | {opts.get('seed', 0)} | {r.get('epochs')} | {wall} | {ips} | {vals} |")
    hw = {r.get("hardware") for r in summary.values() if r.get("hardware")}
    return "\n".join(lines) + f"\n\nTrained on: {', '.join(sorted(hw)) or 'unknown'}; FID etc. on 10,000 samples."


def curves(summary: dict) -> dict[str, list[tuple[float, float, float]]]:
    """Per run: (epoch, wall seconds, FID) of its own evaluations."""
    out = {}
    for name, r in summary.items():
        spe = r.get("steps_per_epoch") or 1
        out[name] = [(c["step"] / spe, c["time_s"], c["fid"]) for c in r.get("curve", []) if "step" in c]
    return out


def baseline_curve(metrics: Path, steps_per_epoch: int) -> list[tuple[float, float, float]]:
    rows = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()]
    return [(r["step"] / steps_per_epoch, r["time_s"], r["fid"]) for r in rows if "fid" in r]


def plot(series: dict[str, list[tuple[float, float, float]]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for name, pts in series.items():
        if not pts:
            continue
        ep, t, fid = zip(*pts)
        style = "--" if "CPU" in name else "-"
        ax1.plot(ep, fid, style, marker="o", ms=3, label=name)
        ax2.plot([x / 60 for x in t], fid, style, marker="o", ms=3, label=name)
    for ax, xl in ((ax1, "epochs"), (ax2, "training wall time (min, log scale)")):
        ax.set_yscale("log"); ax.set_xlabel(xl); ax.set_ylabel("FID (5,000 samples, log scale)"); ax.grid(alpha=.3)
    ax2.set_xscale("log")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("summaries", nargs="+", type=Path)
    p.add_argument("--baseline", type=Path, default=None, help="a CPU run's metrics.jsonl to plot alongside")
    p.add_argument("--baseline-label", default="previous shipped model (CPU, width 32, gamma 0.1)")
    p.add_argument("--plot", type=Path, default=None, help="write the time-to-quality plot of the first summary here")
    a = p.parse_args(argv)
    loaded = [json.loads(s.read_text()) for s in a.summaries]
    for path, summary in zip(a.summaries, loaded):
        print(f"### {path.name}\n\n{table(summary)}\n")
    if a.plot:
        series = curves(loaded[0])
        if a.baseline:
            series[f"{a.baseline_label}"] = baseline_curve(a.baseline, 468)
        plot(series, a.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
