"""Train the recipe on one GPU inside a fixed wall-clock window and pack the results for the trip back.

Made for a lent GPU machine with a hard time limit per call (say 10 minutes), but it runs anywhere with a
CUDA GPU and the Fashion-MNIST IDX files:

    python3 tools/gpu_train.py --data .data/fashion-mnist --out "$OUT" --deadline 570

What it does, each phase bounded so that the packing always happens before the deadline:

1. a smoke run (a few steps, one evaluation) with the real flags; if bf16 autocast fails there, the runs go on
   without it (--no-amp), and if the smoke run fails altogether nothing else is started; then
   ``benchmarks/train_speed.py`` on the GPU alone, at most a minute (the throughput figures);
2. the training runs of ``--runs`` side by side (one process each; a small model leaves a big GPU mostly idle,
   so they share it), each with ``train.py --time-budget``, which fits the run's steps and its learning-rate
   cool-down to the window from the measured speed of its first steps (docs/training.md), so that each ends
   cooled down inside it, writes its model folder and evaluates itself every ``--eval-every`` epochs;
3. the 10,000-sample evaluation of every finished model (``python -m gan.evaluate --write``);
5. one tar of at most 60 MiB, split into parts of at most 15 MiB: every run's card, metrics, evaluation and
   samples, the best run's weights and newest checkpoint (to continue it with ``train.py --resume``), then the
   other runs' weights while they fit.  Unpack with ``cat results.tar.* | tar x``.

It uses only the standard library and the repository's own commands, so it runs under whatever PyTorch the
machine has, and it never imports gradio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
PART_BYTES = 15 * 2**20
LIMIT_BYTES = 60 * 2**20  # what comes back from the machine: at most 64 MiB in all
# name -> train.py options on top of the shared ones: the recipe at train.py's width and at twice it, and the
# R1/R2 weight at half and twice the default on the wide nets
RUNS = {
    "w32": ["--g-width", "32", "--d-width", "32"],
    "w64": ["--g-width", "64", "--d-width", "64"],
    "w64-gamma0.05": ["--g-width", "64", "--d-width", "64", "--r1", "0.05", "--r2", "0.05"],
    "w64-gamma0.2": ["--g-width", "64", "--d-width", "64", "--r1", "0.2", "--r2", "0.2"],
    "w32-gamma0.05": ["--g-width", "32", "--d-width", "32", "--r1", "0.05", "--r2", "0.05"],
    "w32-gamma0.2": ["--g-width", "32", "--d-width", "32", "--r1", "0.2", "--r2", "0.2"],
}
# what the summary keeps of each run's training_options.json
OPTION_KEYS = ("g_width", "d_width", "r1", "r2", "seed", "batch_size", "loss", "amp", "reg_every", "eval_samples")
# seconds kept back after the training budget for the last epoch, the 10k evaluations and the packing
RESERVE_S = 140


class Log:
    """Prints with the time since start, and keeps a copy for the trip back."""

    def __init__(self, path: Path) -> None:
        self.t0, self.f = time.time(), open(path, "a")

    def __call__(self, msg: str) -> None:
        line = f"[{time.time() - self.t0:6.1f} s] {msg}"
        print(line, flush=True)
        self.f.write(line + "\n"); self.f.flush()

    def left(self, deadline: float) -> float:
        return deadline - (time.time() - self.t0)


def run_cmd(cmd: list[str], log: Log, timeout: float, env: dict | None = None, out: Path | None = None) -> int:
    """Run one command with a timeout; its output goes to `out` (or the log). Returns its exit code (124: timeout)."""
    log(f"$ {' '.join(cmd)}  (timeout {timeout:.0f} s)")
    sink = open(out, "w") if out else subprocess.PIPE
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, text=True,
                           timeout=max(timeout, 1))
        rc = p.returncode
        if p.stdout:
            log(p.stdout[-3000:])
    except subprocess.TimeoutExpired:
        rc = 124
    if out:
        sink.close()
        log(out.read_text()[-2500:])
    log(f"exit {rc}")
    return rc


def train_env(threads: int) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1"}


def smoke(a: argparse.Namespace, log: Log, shared: list[str]) -> list[str] | None:
    """A few steps with one evaluation: the flags that work here, or None when training cannot run."""
    for extra in ([], ["--no-amp"], ["--no-amp", "--no-channels-last"]):
        out = Path("/tmp/gpu-smoke")
        shutil.rmtree(out, ignore_errors=True)
        rc = run_cmd([PY, "train.py", *shared, *extra, "--out", str(out), "--limit", "4096", "--steps", "40",
                      "--log-every", "20"], log, 180, train_env(8), Path("/tmp/gpu-smoke.log"))
        if rc == 0:
            return extra
    return None


def launch(a: argparse.Namespace, log: Log, shared: list[str], budget_min: float) -> dict[str, subprocess.Popen]:
    procs = {}
    threads = max(1, (os.cpu_count() or 4) // len(a.runs))
    for name in a.runs:
        folder = a.runs_dir / name
        m = re.fullmatch(r"(.+)-s(\d+)", name)
        recipe, seed = (m.group(1), m.group(2)) if m else (name, "0")
        length = (["--epochs", str(a.epochs)] if a.epochs else
                  ["--epochs", "10000", "--time-budget", f"{budget_min:.2f}"])
        cmd = [PY, "train.py", *shared, *RUNS[recipe], "--seed", seed, "--out", str(folder), *length, "--overwrite"]
        log(f"start {name}: {' '.join(cmd)}")
        folder.parent.mkdir(parents=True, exist_ok=True)
        procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=train_env(threads), stdout=open(f"/tmp/{name}.log", "w"),
                                       stderr=subprocess.STDOUT)
    return procs


def wait_all(procs: dict[str, subprocess.Popen], log: Log, until: float) -> None:
    """Wait for the runs until `until` (seconds since start), then stop what is left (its checkpoints stay)."""
    while any(p.poll() is None for p in procs.values()) and log.left(until) > 0:
        time.sleep(5)
    for name, p in procs.items():
        if p.poll() is None:
            log(f"{name} still running at its deadline: stopped")
            p.kill()
            p.wait()
        log(f"{name}: exit {p.returncode}\n" + Path(f"/tmp/{name}.log").read_text()[-1500:])


def summary(a: argparse.Namespace) -> dict:
    """Per run: epochs, steps, wall time, the images/s logged and the evaluations (the curve and the 10k one)."""
    res = {}
    for name in a.runs:
        folder = a.runs_dir / name
        rows = []
        if (folder / "metrics.jsonl").is_file():
            rows = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines() if x.strip()]
        ips = [r["img_per_s"] for r in rows if "img_per_s" in r]
        opts = json.loads((folder / "training_options.json").read_text()) if (
            folder / "training_options.json").is_file() else {}
        ev = json.loads((folder / "eval.json").read_text())["metrics"] if (folder / "eval.json").is_file() else {}
        res[name] = {"finished": (folder / "config.json").is_file(), "epochs": opts.get("epochs"),
                     "steps": opts.get("steps_done"), "wall_time_s": opts.get("wall_time_s"),
                     "hardware": opts.get("hardware"),
                     "img_per_s_median": sorted(ips)[len(ips) // 2] if ips else None,
                     "curve": [{k: r[k] for k in ("step", "fid", "recall", "precision", "time_s") if k in r}
                               for r in rows if "fid" in r],
                     "eval_10k": ev,
                     "options": {k: opts[k] for k in OPTION_KEYS if k in opts},
                     "steps_per_epoch": opts["steps_done"] // opts["epochs"] if opts.get("epochs") else None}
    return res


def pack(a: argparse.Namespace, log: Callable[[str], None], tar_path: Path = Path("/tmp/results.tar")) -> None:
    """The results in one tar of at most LIMIT_BYTES, split into parts that travel, most useful first.

    Every run's small files (config, card, metrics, evaluation, samples, logs) always go; then the best run's
    weights and its newest checkpoint (so that ``train.py --resume`` can continue it elsewhere); then the
    other runs' weights, best first, and the progress GIFs, while they fit.
    """
    items = _pack_items(a)
    total, no_g = 0, set()
    with tarfile.open(tar_path, "w") as tar:
        for arcname, path, optional in items:
            size, run = path.stat().st_size, arcname.split("/")[0]
            if optional and (total + size > LIMIT_BYTES or run in no_g):  # a D without its G is no use
                log(f"left out {arcname} ({size / 2**20:.1f} MiB): over the size limit")
                if path.name == "generator.safetensors":
                    no_g.add(run)
                continue
            tar.add(path, arcname=arcname)
            total += size
    data = tar_path.read_bytes()
    for i in range(0, len(data), PART_BYTES):
        (a.out / f"results.tar.{i // PART_BYTES:02d}").write_bytes(data[i:i + PART_BYTES])
    log(f"packed {len(data) / 2**20:.1f} MiB in {(len(data) + PART_BYTES - 1) // PART_BYTES} part(s)")


def _fid(folder: Path) -> float:
    """A run's 10k FID, else its last in-training FID, else infinity (for ranking the runs)."""
    try:
        return json.loads((folder / "eval.json").read_text())["metrics"]["fid"]
    except (OSError, KeyError, ValueError):
        rows = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()
                if '"fid"' in x] if (folder / "metrics.jsonl").is_file() else []
        return rows[-1]["fid"] if rows else float("inf")


def _pack_items(a: argparse.Namespace) -> list[tuple[str, Path, bool]]:
    """(name in the tar, file, optional) in the order they are packed."""
    big = {"generator.safetensors", "discriminator.safetensors", "progress.gif"}
    runs = sorted((n for n in a.runs if (a.runs_dir / n).is_dir()), key=lambda n: _fid(a.runs_dir / n))
    small, best, rest, gifs = [], [], [], []
    for rank, name in enumerate(runs):
        folder = a.runs_dir / name
        for f in sorted(folder.iterdir(), key=lambda f: (f.name != "generator.safetensors", f.name)):
            if f.is_file() and f.name not in big:
                small.append((f"{name}/{f.name}", f, False))
            elif f.name in big and not a.quick:
                (gifs if f.suffix == ".gif" else best if rank == 0 else rest).append((f"{name}/{f.name}", f, True))
        if (folder / "best" / "best.json").is_file():
            small.append((f"{name}/best.json", folder / "best" / "best.json", False))
        ckpts = sorted(p for p in (folder / "ckpts").glob("ckpt-*.pt"))
        if rank == 0 and ckpts and not a.quick:
            best.append((f"{name}/ckpts/{ckpts[-1].name}", ckpts[-1], True))
    logs = [(f"logs/{Path(p).name}", Path(p), False) for p in
            ("/tmp/gpu-smoke.log", "/tmp/gpu_speed.log", *(f"/tmp/{n}.log" for n in a.runs)) if Path(p).is_file()]
    return small + logs + best + rest + gifs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="folder with the four Fashion-MNIST .gz files")
    p.add_argument("--out", type=Path, required=True, help="where the packed results go")
    p.add_argument("--deadline", type=float, default=570, help="seconds from start by which everything is packed")
    p.add_argument("--runs", nargs="+", default=list(RUNS)[:4],
                   help=f"recipes ({', '.join(RUNS)}), each optionally with -sN for seed N")
    p.add_argument("--epochs", type=int, default=0, help="a fixed length for every run (0: all the time there is)")
    p.add_argument("--quick", action="store_true", help="no smoke run, no benchmark, no weights in the pack")
    p.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "gpu")
    p.add_argument("--device", default="cuda", help="cuda (the point of this script) or cpu (to try it out)")
    p.add_argument("--eval-every", type=int, default=10, help="epochs between the runs' own 5k evaluations")
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    log = Log(a.out / "gpu_train.log")
    try:
        _phases(a, log)
    except Exception as e:  # whatever happened, what exists goes back
        log(f"error: {type(e).__name__}: {e}")
    finally:
        (a.out / "summary.json").write_text(json.dumps(summary(a), indent=1))
        pack(a, log)
    return 0


def _phases(a: argparse.Namespace, log: Log) -> None:
    info = subprocess.run([PY, "-c", "import torch, os; print(torch.__version__, torch.version.cuda, "
                           "torch.cuda.get_device_name(0), os.cpu_count(), 'CPUs')"],
                          capture_output=True, text=True)
    log(f"python {platform.python_version()}; torch: {info.stdout.strip()} {info.stderr.strip()[-300:]}")
    # gan.evaluate reads the test set from the standard place; point it at the carried files
    std = Path("/usr/share/datasets/fashion-mnist")
    if not std.exists():
        try:
            std.parent.mkdir(parents=True, exist_ok=True)
            std.symlink_to(a.data.resolve())
        except OSError as e:
            log(f"note: could not link {std} ({e}); the 10k evaluations may fail")
    shared = ["--data-dir", str(a.data.resolve()), "--device", a.device, "--no-extras", "--eval-every",
              str(a.eval_every), "--eval-samples", "5000", "--log-every", "200", "--sample-every", "2000",
              "--ckpt-every", "2000"]
    extra = [] if a.quick else smoke(a, log, shared)
    if extra is None:
        log("the smoke run failed with every flag set: no training")
        return
    shared += extra
    if not a.quick:
        run_cmd([PY, "benchmarks/train_speed.py", "--devices", a.device, "--gpu-batch-sizes", "128", "--gpu-steps", "96",
                 "--rounds", "1", "--losses", "rpgan", "--images", "60000", "--json",
                 str(a.out / "gpu_speed.json")], log, 60, train_env(8), Path("/tmp/gpu_speed.log"))
    budget_min = (log.left(a.deadline) - RESERVE_S) / 60
    log(f"training budget {budget_min:.2f} min per run, {len(a.runs)} runs side by side")
    if budget_min < 0.5 and not a.epochs:
        log("too little time left to train")
        return
    wait_all(launch(a, log, shared, budget_min), log, a.deadline - RESERVE_S + 60)
    evals = {}
    for name in a.runs:
        if (a.runs_dir / name / "config.json").is_file():
            cmd = [PY, "-m", "gan.evaluate", "--model", str(a.runs_dir / name), "--write"]
            log(f"$ {' '.join(cmd)}")
            evals[name] = subprocess.Popen(cmd, cwd=ROOT, env=train_env(4), stdout=open(f"/tmp/{name}.eval", "w"),
                                           stderr=subprocess.STDOUT)
    while any(p.poll() is None for p in evals.values()) and log.left(a.deadline) > 45:
        time.sleep(2)
    for name, pr in evals.items():
        if pr.poll() is None:
            pr.kill()
        log(f"eval {name}: exit {pr.returncode}\n" + Path(f"/tmp/{name}.eval").read_text()[-1200:])


if __name__ == "__main__":
    sys.exit(main())
