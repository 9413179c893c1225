"""Ablation: what each training trick buys, at the same budget per row, and how fast each recipe gets there.

Starts from the seeds' plain recipe (unconditional DCGAN, non-saturating loss, no spectral norm, no EMA,
no augmentation, constant learning rate) and adds one improvement per row, up to the recipe shipped before
R3GAN (``cond``); the remaining rows each try one further option on top of ``cond``; the one that measured best
(``rpgan``, the R3GAN objective) was then tuned: a lower R1/R2 weight (``gamma05``) and wider nets
(``wide64``, train.py's defaults and the shipped recipe, measured on a GPU: docs/ablation.md).
Every row trains with train.py for the same number of epochs and batch size, evaluates itself every epoch
(``--eval-samples`` images, for the learning curves) and is then evaluated once more on ``--n`` samples
(classifier-feature FID, KID, precision, recall, class balance, label accuracy).  Every row runs with two
seeds, and the summary calls a row's change real only when every seed of it beats (or loses to) every seed of
the row it builds on; rows that change only G's average are compared seed by seed, as G and D train alike.

Finished rows are reused and a killed row resumes from its last checkpoint, so the script can be re-run at
any time; rows are trained in the order --rows gives, and the report is rewritten after each row.

    python benchmarks/ablation.py --epochs 5                      # every row (hours on a CPU)
    python benchmarks/ablation.py --rows plain,cond,cond-s1       # a subset, in this order (-s1: seed 1)
    python benchmarks/ablation.py --report-only                   # rebuild docs/ablation.md and the plot
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PLAIN = ["--no-conditional", "--loss", "ns", "--r1", "0", "--r2", "0", "--no-spectral-norm", "--no-ema",
         "--augment", "", "--lr-schedule", "constant", "--g-width", "32", "--d-width", "32",
         "--no-cpu-amp"]  # the CPU rows were measured in fp32: keep them comparable where bf16 would be the default


def _swap(flags: list[str], **changes: str) -> list[str]:
    """flags with the value after each --option replaced (options that are not there are appended)."""
    out = list(flags)
    for key, value in changes.items():
        flag = "--" + key.replace("_", "-")
        if flag in out:
            out[out.index(flag) + 1] = value
        else:
            out += [flag, value]
    return out


class Recipe(NamedTuple):
    name: str
    label: str  # what the row adds
    base: str  # the row it is compared with ("" for the first)
    flags: list[str]  # train.py flags; every option the ablation measures is set
    paired: bool = False  # only G's average changes: G and D train exactly as in the base run of the same seed


def _recipes() -> list[Recipe]:
    """The rows: each adds one change to its base (the row before it in the chain, or ``cond``)."""
    sn = [f for f in PLAIN if f != "--no-spectral-norm"] + ["--spectral-norm"]
    hinge = _swap(sn, loss="hinge")
    ema = [f for f in hinge if f != "--no-ema"] + ["--ema"]
    augment = _swap(ema, augment="translation")
    cond = [f for f in augment if f != "--no-conditional"] + ["--conditional"]
    return [
        Recipe("plain", "seeds' plain recipe: DCGAN, non-saturating loss", "", PLAIN),
        Recipe("sn", "+ spectral norm in D", "plain", sn),
        Recipe("hinge", "+ hinge loss", "sn", hinge),
        Recipe("ema", "+ EMA generator (beta 0.999)", "hinge", ema),
        Recipe("augment", "+ DiffAugment (translation)", "ema", augment),
        Recipe("cond", "+ class conditioning (the recipe shipped before R3GAN)", "augment", cond),
        Recipe("cosine", "cond + cosine learning-rate decay to 0.1x", "cond", _swap(cond, lr_schedule="cosine")),
        Recipe("halflife", "cond + EMA half-life 10 kimg (StyleGAN2-style)", "cond",
               _swap(cond, ema_halflife_kimg="10"), paired=True),
        Recipe("rpgan", "cond, hinge -> R3GAN objective (RpGAN + R1 + R2, gamma 0.1): the previous shipped recipe",
               "cond", _swap(cond, loss="rpgan", r1="0.1", r2="0.1")),
        Recipe("wide", "cond + wider nets (G 48, D 48)", "cond", _swap(cond, g_width="48", d_width="48")),
        Recipe("gamma05", "rpgan with R1/R2 gamma 0.05", "rpgan", rpgan := _swap(cond, loss="rpgan", r1="0.05", r2="0.05")),
        Recipe("wide64", "gamma05 + wider nets (G 64, D 64): the shipped recipe", "gamma05",
               _swap(rpgan, g_width="64", d_width="64")),
    ]


RECIPES = {r.name: r for r in _recipes()}
SHIPPED = "wide64"  # the row that is `python train.py`'s defaults (tests/test_ablation.py checks it)
SEEDS = (0, 1)


def run_name(recipe: str, seed: int) -> str:
    """The folder of one run: the recipe's name for seed 0, name-s<seed> otherwise."""
    return recipe if seed == 0 else f"{recipe}-s{seed}"


RUNS = {run_name(r, s): (RECIPES[r], s) for s in SEEDS for r in RECIPES}  # every seed-0 run first
PLOTTED = {"plain": "plain (seeds' recipe)", "cond": "previous recipe (hinge loss)",
           "rpgan": "R3GAN objective (gamma 0.1)", "cosine": "previous + cosine LR decay (rejected)"}


def train_row(out: Path, seed: int, flags: list[str], args: argparse.Namespace) -> Path:
    """Train one row with train.py (resuming a killed attempt; reusing a finished one); returns out."""
    if (out / "config.json").is_file():
        return out
    cmd = [sys.executable, str(ROOT / "train.py"), "--out", str(out), "--epochs", str(args.epochs),
           "--batch-size", str(args.batch_size), "--seed", str(seed), "--eval-every", "1",
           "--eval-samples", str(args.eval_samples), "--sample-every", "100000", "--ckpt-every", "200",
           "--log-every", "50", "--no-extras", *flags, *args.train_args]
    if (out / "ckpts").is_dir():
        cmd.append("--resume")
    print("$", " ".join(repr(c) if c == "" else c for c in cmd), flush=True)
    t = time.time()
    subprocess.run(cmd, check=True, stderr=None if args.verbose else subprocess.DEVNULL)
    print(f"  trained {out.name} in {time.time() - t:.0f} s", flush=True)
    return out


def evaluate_row(folder: Path, n: int, seed: int, cache: Path | None = None) -> dict:
    """Metrics of one model folder on n samples (cached in folder/eval.json, or in cache)."""
    cache = cache or folder / "eval.json"
    for path in dict.fromkeys([cache, folder / "eval.json"]):  # a model folder's own eval.json counts too
        if path.is_file():
            res = json.loads(path.read_text())
            if n in (res.get("n"), res.get("n_samples")):
                return res
    from gan import GAN
    from gan.metrics import evaluate_model
    res = evaluate_model(GAN.from_pretrained(str(folder)), n=n, seed=seed)
    res["n"] = n
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(res, indent=2))
    return res


def curve(folder: Path) -> list[tuple[float, float]]:
    """(training wall time in s, FID) of every in-training evaluation in folder/metrics.jsonl.

    Evaluation rows carry their own time_s; rows written before they did get it interpolated from the
    loss rows around them.
    """
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()]
    logged = sorted((r["step"], r["time_s"]) for r in rows if "time_s" in r and "fid" not in r)
    steps = [s for s, _ in logged]
    times = [t for _, t in logged]

    def at(step: int) -> float:
        i = bisect.bisect_left(steps, step)
        if i < len(steps) and steps[i] == step:
            return times[i]
        if i == 0 or i == len(steps):
            return times[min(i, len(times) - 1)] if times else float("nan")
        s0, s1, t0, t1 = steps[i - 1], steps[i], times[i - 1], times[i]
        return t0 + (t1 - t0) * (step - s0) / (s1 - s0)

    return [(r.get("time_s", at(r["step"])), r["fid"]) for r in rows if "fid" in r]


def _f(v: object, fmt: str = ".3f") -> str:
    return format(v, fmt) if isinstance(v, (int, float)) else "-"


def _cells(m: dict, coverage: dict | None = None) -> str:
    """FID | KID x1000 | precision | recall | min class share | max class share | label accuracy."""
    kid = m.get("kid")
    shares = list((coverage or {}).values())
    return (f"{_f(m.get('fid'), '.2f')} | {_f(kid * 1000 if isinstance(kid, (int, float)) else None, '.2f')} | "
            f"{_f(m.get('precision'))} | {_f(m.get('recall'))} | {_f(m.get('coverage_min'))} | "
            f"{_f(max(shares) if shares else None)} | {_f(m.get('label_accuracy'))}")


def verdict(new: list[float], old: list[float], paired: bool = False) -> str:
    """Whether a row's FIDs and its base's differ by more than the spread between seeds.

    paired: seed i of both rows is the same G/D trajectory (only the EMA differs), so compare seed by seed.
    """
    if len(new) < len(SEEDS) or len(old) < len(SEEDS):
        return "not known: one seed"
    if paired:
        if all(n < o for n, o in zip(new, old)) or all(n > o for n, o in zip(new, old)):
            better = new[0] < old[0]
            return f"**yes, {'better' if better else 'worse'}**: every seed, on the same G/D run"
        return "no: the seeds disagree"
    if max(new) < min(old):
        return "**yes, better**: every seed"
    if min(new) > max(old):
        return "**yes, worse**: every seed"
    return "no: the seeds overlap"


def summary(results: dict[str, dict], opts: dict[str, dict] | None = None) -> list[str]:
    """The answer: per recipe, FID of each seed, the mean, and the change against the row it builds on.

    The change is taken over the seeds both rows ran, so a row with one seed is compared with the same seed.
    """
    def by_seed(recipe: str, key: str) -> dict[int, float]:
        return {s: results[run_name(recipe, s)]["metrics"][key] for s in SEEDS if run_name(recipe, s) in results}

    lines = ["| row | adds | FID, seed " + " / ".join(map(str, SEEDS)) + " | mean FID | against "
             "| change in mean FID | beyond the seed spread? | mean recall | mean precision | mean wall time |",
             "| --- | --- | --- | ---: | --- | ---: | --- | ---: | ---: | ---: |"]
    for r in RECIPES.values():
        fids = by_seed(r.name, "fid")
        if not fids:
            lines.append(f"| {r.name} | {r.label} | not run yet | | | | | | | |")
            continue
        walls = [(opts or {}).get(run_name(r.name, s), {}).get("wall_time_s") for s in fids]
        wall = f"{statistics.mean(walls):.0f} s" if walls and None not in walls else "-"
        base = by_seed(r.base, "fid") if r.base else {}
        common = [s for s in fids if s in base]
        change = "-"
        if common:
            new, old = statistics.mean(fids[s] for s in common), statistics.mean(base[s] for s in common)
            change = f"{new - old:+.2f} ({new / old:.2f}x)" + ("" if len(common) == len(SEEDS) else
                                                              f", seed {', '.join(map(str, common))} only")
        cells = " / ".join(f"{fids[s]:.2f}" if s in fids else "-" for s in SEEDS)
        judged = verdict([fids[s] for s in common], [base[s] for s in common], r.paired) if base else "-"
        lines.append(f"| {r.name} | {r.label} | {cells} | {statistics.mean(fids.values()):.2f} | {r.base or '-'} "
                     f"| {change} | {judged} | {statistics.mean(by_seed(r.name, 'recall').values()):.3f} "
                     f"| {statistics.mean(by_seed(r.name, 'precision').values()):.3f} | {wall} |")
    return lines


def report(results: dict[str, dict], opts: dict[str, dict], args: argparse.Namespace) -> str:
    """Markdown of the ablation: the per-recipe answer, every run's metrics, the machine and budget."""
    steps = args.epochs * (60000 // args.batch_size)
    lines = [f"Budget per run: {args.epochs} epochs of Fashion-MNIST ({steps} steps x batch {args.batch_size}); "
             f"each run evaluated on {args.n} samples in the metric classifier's feature space. A row's change "
             f"is beyond the seed spread when every seed of it is better (or worse) than every seed of the row "
             f"it builds on.", "", *summary(results, opts), "", "Every run:", "",
             "| run | recipe | FID | KID x1000 | precision | recall | min class share | max class share "
             "| label accuracy | wall time |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, (recipe, seed) in RUNS.items():
        label = recipe.label + (f" (seed {seed})" if seed else "")
        if name in results:
            lines.append(f"| {name} | {label} | {_cells(results[name]['metrics'], results[name].get('coverage'))} "
                         f"| {_f(opts[name].get('wall_time_s'), '.0f')} s |")
        else:
            lines.append(f"| {name} | {label} | not run yet | | | | | | | |")
    for key in [k for k in results if k.startswith("longer:")]:
        o, folder = opts[key], key.split(":", 1)[1]
        lines.append(f"| longer | `{folder}`: {o.get('epochs', '?')} epochs, {o.get('loss', '?')} loss, "
                     f"{o.get('lr_schedule', 'constant')} learning rate, otherwise the `cond` recipe "
                     f"| {_cells(results[key]['metrics'], results[key].get('coverage'))} "
                     f"| {_f(o.get('wall_time_s'), '.0f')} s |")
    refs = next((r.get("references") for r in results.values() if r.get("references")), None) or {}
    for key, label in (("train", "real training images (the floor)"), ("blur", "real images, 1-pixel Gaussian blur")):
        if isinstance(refs.get(key), dict):
            lines.append(f"| *ref* | {label} | {_cells(refs[key])} | - |")
    rows = {k: o for k, o in opts.items() if not k.startswith("longer:")}
    machines = sorted({o.get("hardware", "?") for o in rows.values()})
    evals = sorted({str(o.get("eval_samples", "?")) for o in rows.values()})
    lines += ["", f"Trained on: {'; '.join(machines)}. Wall time is train.py's own clock, its per-epoch "
              f"evaluations ({' or '.join(evals)} samples) included."]
    if args.note:
        lines += ["", args.note]
    return "\n".join(lines) + "\n"


START, END = "<!-- ablation table: written by benchmarks/ablation.py -->", "<!-- end of ablation table -->"


def write_report(path: Path, table: str) -> None:
    """Write the generated table into path between the START/END markers, keeping the text around it."""
    old = path.read_text() if path.is_file() else ""
    if START in old and END in old:
        head, rest = old.split(START, 1)
        text = head + START + "\n" + table + rest[rest.index(END):]
    else:
        text = f"{START}\n{table}{END}\n"
    path.write_text(text)


def plot_time_to_quality(results_dir: Path, path: Path, hardware: str) -> bool:
    """FID against training wall time for the plotted rows (both seeds where they ran); False if none ran."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    drawn = False
    for i, (name, label) in enumerate(PLOTTED.items()):
        for seed_suffix, style in (("", "-"), ("-s1", ":")):
            folder = results_dir / f"{name}{seed_suffix}"
            if not (folder / "metrics.jsonl").is_file():
                continue
            pts = curve(folder)
            if not pts:
                continue
            ax.plot([t / 60 for t, _ in pts], [f for _, f in pts], style, marker="o", color=f"C{i}",
                    label=label + (" (seed 1)" if seed_suffix else ""))
            drawn = True
    if not drawn:
        plt.close(fig)
        return False
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel("training wall time (minutes)")
    ax.set_ylabel("FID (classifier features, log scale)")
    ax.set_title("Time to quality", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")  # the curves start top left and fall to the right
    fig.text(0.01, 0.01, hardware, fontsize=6, color="0.4")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=5, help="epochs per row (default: 5)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--n", type=int, default=10000, help="samples for each row's final evaluation (default: 10000)")
    p.add_argument("--eval-samples", type=int, default=5000, help="samples per in-training evaluation (default: 5000)")
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--rows", default=",".join(RUNS), help="comma-separated runs (recipe, or recipe-s1 for seed 1), "
                   "trained in this order (default: every recipe with seed 0, then with seed 1)")
    p.add_argument("--report", default=str(ROOT / "docs" / "ablation.md"))
    p.add_argument("--plot", default=str(ROOT / "docs" / "time_to_quality.png"))
    p.add_argument("--longer", nargs="*", default=[], metavar="DIR",
                   help="model folders trained longer (e.g. checkpoints), shown as last rows")
    p.add_argument("--report-only", action="store_true", help="only evaluate finished rows and write the report")
    p.add_argument("--note", default="", help="a sentence for the report (e.g. what else shared the machine)")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("train_args", nargs="*", help="extra train.py options after --, e.g. -- --limit 512")
    args = p.parse_args()
    wanted = [w for w in args.rows.split(",") if w]
    unknown = [w for w in wanted if w not in RUNS]
    if unknown:
        p.error(f"unknown rows {', '.join(unknown)}; choose from {', '.join(RUNS)}")
    out = Path(args.out)
    results: dict[str, dict] = {}
    opts: dict[str, dict] = {}

    def collect(name: str, folder: Path, cache: Path | None = None) -> None:
        if (folder / "config.json").is_file():
            results[name] = evaluate_row(folder, args.n, 0, cache)
            opts[name] = json.loads((folder / "training_options.json").read_text())

    for name in RUNS:
        collect(name, out / name)
    for folder in args.longer:  # cached by the weights' hash: a folder holding another model is re-evaluated
        digest = hashlib.sha256((Path(folder) / "generator.safetensors").read_bytes()).hexdigest()[:16]
        collect(f"longer:{folder}", Path(folder), out / f"longer_eval_{digest}.json")
    def publish() -> str:  # the report and the plot, after each trained row and once at the end
        text = report(results, opts, args)
        write_report(Path(args.report), text)
        if opts:
            plot_time_to_quality(out, Path(args.plot), next(iter(opts.values())).get("hardware", ""))
        return text

    for name in ([] if args.report_only else wanted):
        recipe, seed = RUNS[name]
        collect(name, train_row(out / name, seed, recipe.flags, args))
        m = results[name]["metrics"]
        print(f"  {name}: FID {m['fid']:.2f}, precision {m['precision']:.3f}, recall {m['recall']:.3f}", flush=True)
        publish()
    print(publish() if args.report_only or not wanted else report(results, opts, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
