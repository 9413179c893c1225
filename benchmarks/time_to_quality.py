"""How good is a model after N minutes of ``train.py --time-budget N``, from scratch, on this machine?

    python benchmarks/time_to_quality.py                                  # 10, 30 and 60 minutes, one run at a time
    python benchmarks/time_to_quality.py --budgets 10,30 --parallel 2 --threads 1 --also-constant --also-unfitted

Each budget is one ``train.py --time-budget MIN --no-extras --out OUT/bMIN`` run with every other option at
train.py's default (add some with ``--train-args``), then an evaluation of ``--n`` samples for each of
``--eval-seeds`` (``gan.evaluate``: FID, precision, recall, label accuracy in the metric classifier's features).

* ``--also-constant``: for each budget, the same run (the same seed, so identical up to the cool-down) for the
  fitted number of steps at the constant rate (``--steps N --lr-cooldown 0``): what the fitted cool-down buys
  at equal steps.
* ``--also-unfitted``: for each budget, the older rule (``--time-budget MIN --lr-cooldown 0``: the constant
  rate, stopping at the first epoch end after the budget), with the minutes it really took.

Runs go ``--parallel`` at a time, each with ``--threads`` torch threads; a budgeted run's speed is measured
while it runs, so runs that share the machine get fewer steps (the table shows steps and minutes). Prints a
Markdown table and writes OUT/time_to_quality.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLUMNS = ("run", "steps", "epochs", "minutes", "FID", "precision", "recall", "label accuracy")


def _launch(args: list[str], log: Path, threads: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)


def _run_all(jobs: list[tuple[str, list[str]]], out: Path, parallel: int, threads: int) -> None:
    """Train every (name, train.py args) job, `parallel` at a time; raise if one fails."""
    waiting, running = list(jobs), []
    while waiting or running:
        while waiting and len(running) < parallel:
            name, args = waiting.pop(0)
            print(f"train {name}: train.py {shlex.join(args)}", flush=True)
            running.append((name, _launch(args, out / f"{name}.log", threads)))
        time.sleep(2)
        for name, proc in list(running):
            if proc.poll() is not None:
                running.remove((name, proc))
                if proc.returncode:
                    raise RuntimeError(f"{name} failed (exit {proc.returncode}); see {out / f'{name}.log'}")


def _record(folder: Path) -> dict:
    opts = json.loads((folder / "training_options.json").read_text())
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()]
    last = max((r for r in rows if "time_s" in r and "step" in r), key=lambda r: r["step"])
    return {"steps": last["step"], "epochs": last.get("epoch"), "minutes": round(last["time_s"] / 60, 1),
            "time_budget_fit": opts.get("time_budget_fit")}


def evaluate(folder: Path, n: int, seeds: list[int]) -> dict:
    """Mean metrics over the evaluation seeds (and each seed's FID)."""
    from gan.evaluate import run
    res = [run(model=str(folder), n=n, seed=s)["metrics"] for s in seeds]
    keys = ("fid", "precision", "recall", "label_accuracy")
    return {**{k: sum(r[k] for r in res) / len(res) for k in keys}, "fid_per_seed": [r["fid"] for r in res]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budgets", default="10,30,60", help="minutes, comma-separated (default: 10,30,60)")
    p.add_argument("--out", default="runs/time_to_quality", help="folder for the runs and the JSON")
    p.add_argument("--parallel", type=int, default=1, help="runs at a time (default: 1)")
    p.add_argument("--threads", type=int, default=0, help="torch threads a run (default 0: every core)")
    p.add_argument("--train-args", default="", help="extra train.py options for every run, one string")
    p.add_argument("--also-constant", action="store_true", help="the same steps at the constant rate")
    p.add_argument("--also-unfitted", action="store_true", help="the older epoch-end rule for each budget")
    p.add_argument("--n", type=int, default=10000, help="samples an evaluation (default: 10000)")
    p.add_argument("--eval-seeds", default="0,1", help="evaluation seeds (default: 0,1)")
    a = p.parse_args(argv)
    budgets = [float(b) for b in a.budgets.split(",") if b.strip()]
    if not budgets or min(budgets) <= 0 or a.parallel < 1 or a.threads < 0:
        p.error("--budgets must be positive minutes, --parallel >= 1, --threads >= 0")
    threads = a.threads or os.cpu_count() or 1
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    extra = shlex.split(a.train_args)
    name = {b: f"b{b:g}" for b in budgets}
    jobs = [(name[b], ["--out", str(out / name[b]), "--no-extras", "--time-budget", f"{b:g}", *extra]) for b in budgets]
    if a.also_unfitted:
        jobs += [(f"{name[b]}_unfitted", ["--out", str(out / f"{name[b]}_unfitted"), "--no-extras", "--time-budget",
                                          f"{b:g}", "--lr-cooldown", "0", *extra]) for b in budgets]
    t0 = time.time()
    _run_all(jobs, out, a.parallel, threads)
    runs = [j[0] for j in jobs]
    if a.also_constant:
        const = [(f"{name[b]}_constant", ["--out", str(out / f"{name[b]}_constant"), "--no-extras", "--steps",
                                          str(_record(out / name[b])["steps"]), "--lr-cooldown", "0", *extra])
                 for b in budgets]
        _run_all(const, out, a.parallel, threads)
        runs += [j[0] for j in const]
    import torch
    torch.set_num_threads(threads)
    results = []
    for r in sorted(runs):
        rec = {"run": r, **_record(out / r), **evaluate(out / r, a.n, [int(s) for s in a.eval_seeds.split(",")])}
        results.append(rec)
        print(json.dumps(rec), flush=True)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * (len(COLUMNS) - 1)]
    lines += [f"| {r['run']} | {r['steps']} | {r['epochs']} | {r['minutes']} | {r['fid']:.2f} | {r['precision']:.3f} | "
              f"{r['recall']:.3f} | {100 * r['label_accuracy']:.1f}% |" for r in results]
    print("\n".join(lines))
    from gan.hardware import cpu_name
    machine = f"CPU: {cpu_name()}, {os.cpu_count()} cores, {threads} threads a run"
    (out / "time_to_quality.json").write_text(json.dumps(
        {"machine": machine, "parallel": a.parallel, "train_args": a.train_args, "n": a.n, "eval_seeds": a.eval_seeds,
         "seconds": round(time.time() - t0), "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
