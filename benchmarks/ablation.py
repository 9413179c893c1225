"""Ablation: what each training trick buys, at the same budget per row.

Starts from the seeds' plain recipe (unconditional DCGAN, non-saturating loss, no spectral norm, no EMA,
no augmentation) and adds one improvement per row, up to the shipped recipe.  Every row trains with
the same number of steps and batch size, then is evaluated with the same metrics (classifier-feature
FID, KID, precision, recall, class coverage).  Finished rows are reused, so the script can be re-run.

    python benchmarks/ablation.py --steps 940 --out runs/ablation      # ~2 epochs per row
    python benchmarks/ablation.py --report-only                        # rebuild docs/ablation.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PLAIN = ["--no-conditional", "--loss", "ns", "--no-spectral-norm", "--no-ema", "--augment", ""]
ROWS: list[tuple[str, str, list[str]]] = [
    ("plain", "seeds' plain recipe: DCGAN, non-saturating loss", PLAIN),
    ("sn", "+ spectral norm in D", ["--no-conditional", "--loss", "ns", "--spectral-norm", "--no-ema", "--augment", ""]),
    ("hinge", "+ hinge loss", ["--no-conditional", "--loss", "hinge", "--spectral-norm", "--no-ema", "--augment", ""]),
    ("ema", "+ EMA generator", ["--no-conditional", "--loss", "hinge", "--spectral-norm", "--ema", "--augment", ""]),
    ("augment", "+ DiffAugment (translation)", ["--no-conditional", "--loss", "hinge", "--spectral-norm", "--ema",
                                                "--augment", "translation"]),
    ("cond", "+ class conditioning (shipped recipe)", ["--conditional", "--loss", "hinge", "--spectral-norm", "--ema",
                                                       "--augment", "translation"]),
    ("wide", "+ wider nets (G 48, D 48)", ["--conditional", "--loss", "hinge", "--spectral-norm", "--ema",
                                          "--augment", "translation", "--g-width", "48", "--d-width", "48"]),
]


def train_run(out: Path, steps: int, flags: list[str], args: argparse.Namespace, *, eval_every: int = 0,
              ckpt_every: int = 200) -> Path:
    """Train with train.py into out (resuming a killed attempt; reusing a finished one); returns out."""
    if (out / "config.json").is_file():
        return out
    cmd = [sys.executable, str(ROOT / "train.py"), "--out", str(out), "--steps", str(steps),
           "--batch-size", str(args.batch_size), "--seed", str(args.seed), "--eval-every", str(eval_every),
           "--sample-every", str(steps), "--ckpt-every", str(ckpt_every), "--log-every", "50", "--no-extras", *flags]
    if (out / "ckpts").is_dir():
        cmd.append("--resume")
    print("$", " ".join(repr(c) if c == "" else c for c in cmd), flush=True)
    t = time.time()
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL if not args.verbose else None)
    print(f"  trained {out.name} in {time.time() - t:.0f} s", flush=True)
    return out


def run_row(name: str, flags: list[str], args: argparse.Namespace) -> Path:
    """Train one row (or reuse it when finished) and return its model folder."""
    return train_run(Path(args.out) / name, args.steps, flags, args)


def evaluate_row(folder: Path, n: int, seed: int, cache: Path | None = None) -> dict:
    """Metrics of one model folder (cached in folder/eval.json, or in cache)."""
    cache = cache or folder / "eval.json"
    if cache.is_file():
        res = json.loads(cache.read_text())
        if res.get("n") == n:
            return res
    from gan import GAN
    from gan.metrics import evaluate_model
    res = evaluate_model(GAN.from_pretrained(str(folder)), n=n, seed=seed)
    res["n"] = n
    cache.write_text(json.dumps(res, indent=2))
    return res


def compare_at_epochs(epochs: int, longer: Path, args: argparse.Namespace) -> str:
    """Plain recipe vs the shipped run at the same, larger budget, from the same in-training evaluation.

    Trains the plain recipe for `epochs` epochs with train.py's own FID evaluation (every `epochs` epochs,
    --eval-samples images) and reads the shipped run's metrics.jsonl row at the same step: same evaluator,
    same sample count, same step.
    """
    steps = epochs * (60000 // args.batch_size)
    if args.report_only and not (Path(args.out) / f"plain-{epochs}ep" / "config.json").is_file():
        return f"\n(no plain-{epochs}ep run yet: run without --report-only to train it)\n"
    out = train_run(Path(args.out) / f"plain-{epochs}ep", steps, PLAIN, args, eval_every=epochs, ckpt_every=500)

    def row_at(folder: Path) -> dict | None:
        rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()]
        return next((r for r in rows if r.get("step") == steps and "fid" in r), None)

    plain, shipped = row_at(out), row_at(longer)
    lines = ["", f"### Same budget, longer: {epochs} epochs ({steps} steps x batch {args.batch_size})", "",
             "train.py's in-training evaluation (EMA G when there is one; the same evaluator and sample count "
             "for both rows), read from each run's metrics.jsonl at the same step:", "",
             "| row | FID | KID x1000 | precision | recall | min class share | class match |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in (("plain (seeds' recipe)", plain), ("shipped recipe", shipped)):
        if r is None:
            lines.append(f"| {name} | no evaluation at step {steps} | | | | | |")
            continue
        lines.append(f"| {name} | {_cells(r)} | {_f(r.get('label_accuracy'))} |")
    return "\n".join(lines) + "\n"


def _f(v: object, fmt: str = ".3f") -> str:
    return format(v, fmt) if isinstance(v, (int, float)) else "-"


def _cells(m: dict) -> str:
    """FID | KID x1000 | precision | recall | min class share, as markdown cells."""
    kid = m.get("kid")
    return (f"{_f(m.get('fid'), '.2f')} | {_f(kid * 1000 if isinstance(kid, (int, float)) else None, '.2f')} | "
            f"{_f(m.get('precision'))} | {_f(m.get('recall'))} | {_f(m.get('coverage_min'))}")


def report(rows: list[tuple[str, str, dict, dict]], args: argparse.Namespace) -> str:
    """Markdown table of the ablation, with the machine and budget."""
    lines = [f"Budget per row: {args.steps} steps x batch {args.batch_size} "
             f"({args.steps * args.batch_size / 60000:.1f} epochs of Fashion-MNIST), seed {args.seed}; "
             f"metrics on {args.n} samples in the metric classifier's feature space.", "",
             "| row | recipe | FID | KID x1000 | precision | recall | min class share | class match | wall time |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, label, full, opts in rows:
        res = full.get("metrics", full)
        lines.append(f"| {name} | {label} | {_cells(res)} | {_f(res.get('label_accuracy'))} "
                     f"| {_f(opts.get('wall_time_s'), '.0f')} s |")
    refs = (rows[0][2].get("references") or {}) if rows else {}
    for key, label in (("train", "real training images (the floor)"), ("blur", "real images, 1-pixel Gaussian blur"),
                       ("noise", "real images + Gaussian noise, sigma 0.1")):
        r = refs.get(key)
        if isinstance(r, dict):
            lines.append(f"| *ref* | {label} | {_cells(r)} | - | - |")
    hw = rows[0][3].get("hardware", "?") if rows else "?"
    lines += ["", f"Trained on: {hw} (rows ran one after another while other work shared the machine, "
              "so wall times are indicative only). The *longer* row is the shipped model with its own, longer "
              "budget (see its training options); reference rows are real test images put through the same "
              "metrics."]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=940, help="training steps per row (default: 940 = ~2 epochs)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=int, default=10000, help="samples per evaluation (default: 10000)")
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--rows", default=",".join(r[0] for r in ROWS), help="comma-separated subset of rows")
    p.add_argument("--report", default=str(ROOT / "docs" / "ablation.md"))
    p.add_argument("--report-only", action="store_true", help="only evaluate finished rows and write the report")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--compare-epochs", type=int, default=0, metavar="E",
                   help="also train the plain recipe for E epochs and compare it with --longer's run at that step")
    p.add_argument("--longer", default=None, metavar="DIR",
                   help="a model folder trained longer with the shipped recipe (e.g. checkpoints), shown as the last row")
    args = p.parse_args()
    wanted = args.rows.split(",")
    results = []
    for name, label, flags in ROWS:
        if name not in wanted:
            continue
        folder = Path(args.out) / name
        if not args.report_only:
            folder = run_row(name, flags, args)
        if not (folder / "config.json").is_file():
            continue
        res = evaluate_row(folder, args.n, args.seed)
        opts = json.loads((folder / "training_options.json").read_text())
        results.append((name, label, res, opts))
        m = res.get("metrics", res)
        print(f"  {name}: FID {_f(m.get('fid'), '.2f')}, precision {_f(m.get('precision'))}, "
              f"recall {_f(m.get('recall'))}", flush=True)
    if args.longer and (Path(args.longer) / "config.json").is_file():
        folder = Path(args.longer)
        opts = json.loads((folder / "training_options.json").read_text())
        steps = opts.get("steps_done") or opts.get("steps") or "?"
        label = f"+ longer training ({opts.get('epochs', '?')} epochs, {steps} steps; the shipped model)"
        results.append(("longer", label, evaluate_row(folder, args.n, args.seed, Path(args.out) / "longer_eval.json"),
                        opts))
    text = report(results, args)
    if args.compare_epochs and args.longer:
        text += compare_at_epochs(args.compare_epochs, Path(args.longer), args)
    Path(args.report).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
