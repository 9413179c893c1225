"""The ablation script: each row adds exactly one change, pins every option it measures, and runs end to end."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, subprocess_env
from gan.train.options import TrainConfig

SCRIPT = ROOT / "benchmarks" / "ablation.py"
CHAIN = ["plain", "sn", "hinge", "ema", "augment", "cond"]  # each adds one trick to the row before
# every option an ablation row measures: each row must set it, so a new train.py default cannot change a row
MEASURED = {"--conditional", "--loss", "--r1", "--r2", "--spectral-norm", "--ema", "--augment", "--lr-schedule"}
TOGETHER = {"--r1": "--loss", "--r2": "--loss", "--d-width": "--g-width"}  # one change: the objective, the width


def _ablation():
    spec = importlib.util.spec_from_file_location("ablation_script", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _options(flags: list[str]) -> dict[str, str]:
    """train.py flags as {option: value}; --x / --no-x become {--x: 'on' / 'off'}."""
    out, i = {}, 0
    while i < len(flags):
        f = flags[i]
        if i + 1 < len(flags) and not flags[i + 1].startswith("--"):
            out[f] = flags[i + 1]
            i += 2
        else:
            out[f.replace("--no-", "--")] = "off" if f.startswith("--no-") else "on"
            i += 1
    return out


def test_each_row_adds_one_change_to_its_base_and_pins_what_it_measures() -> None:
    mod = _ablation()
    recipes = mod.RECIPES
    for r in recipes.values():
        opts = _options(r.flags)
        assert MEASURED <= set(opts), f"row {r.name} leaves {MEASURED - set(opts)} to train.py's defaults"
        if r.base:
            base = _options(recipes[r.base].flags)
            changed = {TOGETHER.get(k, k) for k in opts.keys() | base.keys() if opts.get(k) != base.get(k)}
            assert len(changed) == 1, f"{r.base} -> {r.name} changes {sorted(changed)}, not one thing"
    assert [name for name, r in recipes.items() if not r.base] == ["plain"]
    assert [recipes[n].base for n in CHAIN[1:]] == CHAIN[:-1]
    plain = _options(recipes["plain"].flags)
    assert plain["--lr-schedule"] == "constant" and plain["--loss"] == "ns" and plain["--conditional"] == "off"
    # the row labelled the shipped recipe must be what `python train.py` runs by default
    shipped, defaults = _options(recipes[mod.SHIPPED].flags), TrainConfig()
    assert "shipped recipe" in recipes[mod.SHIPPED].label
    assert [r.name for r in recipes.values() if "the shipped recipe" in r.label] == [mod.SHIPPED]
    assert shipped["--loss"] == defaults.loss and shipped["--augment"] == defaults.augment
    assert float(shipped["--r1"]) == defaults.r1 and float(shipped["--r2"]) == defaults.r2
    assert shipped["--lr-schedule"] == defaults.lr_schedule
    assert all((shipped[f"--{k.replace('_', '-')}"] == "on") == getattr(defaults, k)
               for k in ("conditional", "spectral_norm", "ema"))
    assert shipped.get("--g-width", str(defaults.g_width)) == str(defaults.g_width)
    # every recipe runs with every seed; seed 0 of every recipe comes first, so a partial run has the whole chain
    assert set(mod.RUNS) == {mod.run_name(r, s) for r in recipes for s in mod.SEEDS} and len(mod.SEEDS) >= 2
    assert list(mod.RUNS)[:len(recipes)] == list(recipes)


def test_summary_calls_a_change_real_only_beyond_the_seed_spread() -> None:
    mod = _ablation()
    assert mod.verdict([10.0, 11.0], [12.0, 14.0]).startswith("**yes, better**")
    assert mod.verdict([15.0, 16.0], [12.0, 14.0]).startswith("**yes, worse**")
    assert mod.verdict([11.0, 13.0], [12.0, 14.0]).startswith("no")  # the seeds overlap
    assert mod.verdict([5.0], [12.0, 14.0]).startswith("not known")  # one seed cannot show the spread
    # a paired row (only the EMA differs) trains the same G and D per seed: compared seed by seed
    assert mod.verdict([11.0, 13.0], [12.0, 14.0], paired=True).startswith("**yes, better**")
    assert mod.verdict([11.0, 15.0], [12.0, 14.0], paired=True).startswith("no")

    def res(fid: float) -> dict:
        return {"metrics": {"fid": fid, "recall": 0.1, "precision": 0.5}}
    results = {"plain": res(30.0), "plain-s1": res(34.0), "sn": res(20.0), "sn-s1": res(22.0), "hinge": res(25.0)}
    lines = {line.split("|")[1].strip(): line for line in mod.summary(results)}
    assert "| 20.00 / 22.00 | 21.00 | plain | -11.00 (0.66x) | **yes, better**" in lines["sn"]
    # a row with one seed is compared with the same seed of its base, not with the base's mean
    assert "| 25.00 / - | 25.00 | sn | +5.00 (1.25x), seed 0 only | not known: one seed" in lines["hinge"]
    assert "not run yet" in lines["ema"]


@pytest.mark.slow
def test_ablation_script_trains_reports_and_plots(fake_fashion: Path, tmp_path: Path) -> None:
    report, plot = tmp_path / "ablation.md", tmp_path / "ttq.png"
    cmd = [sys.executable, str(SCRIPT), "--rows", "cond", "--epochs", "1", "--batch-size", "32", "--n", "64",
           "--eval-samples", "32", "--out", str(tmp_path / "runs"), "--report", str(report), "--plot", str(plot),
           "--", "--data-dir", str(fake_fashion), "--limit", "128", "--g-width", "8", "--d-width", "8",
           "--z-dim", "16", "--device", "cpu"]
    res = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    text = report.read_text()
    summary_line, run_line = [line for line in text.splitlines() if line.startswith("| cond |")]
    seed0, seed1 = summary_line.split("|")[3].split("/")  # the summary: FID of seed 0; seed 1 was not asked for
    assert float(seed0) > 0 and seed1.strip() == "-"
    assert float(run_line.split("|")[3]) == pytest.approx(float(seed0), abs=0.01)  # every run's table, same FID
    assert "| plain | seeds' plain recipe" in text and "not run yet" in text  # rows not asked for are listed
    assert plot.stat().st_size > 0  # the cond row is one of the time-to-quality curves
    report.write_text("# Ablation\n\nintro\n" + text + "\nreading\n")  # human text around the markers
    again = subprocess.run([sys.executable, str(SCRIPT), "--report-only", "--out", str(tmp_path / "runs"),
                            "--epochs", "1", "--batch-size", "32", "--n", "64", "--report", str(report), "--plot", str(plot)],
                           env=subprocess_env(), capture_output=True, text=True, timeout=300)
    # the finished row is reused, not retrained, and the text around the table is kept
    assert again.returncode == 0 and report.read_text() == "# Ablation\n\nintro\n" + text + "\nreading\n"
    with pytest.raises(subprocess.CalledProcessError):
        subprocess.run([sys.executable, str(SCRIPT), "--rows", "nonsense", "--report-only"], env=subprocess_env(),
                       capture_output=True, check=True, timeout=120)
