"""The ablation script: each row adds exactly one change, pins every option it measures, and runs end to end."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, subprocess_env

SCRIPT = ROOT / "benchmarks" / "ablation.py"
CHAIN = ["plain", "sn", "hinge", "ema", "augment", "cond", "cosine"]  # each adds one trick to the row before
# every option an ablation row measures: each row must set it, so a new train.py default cannot change a row
MEASURED = {"--conditional", "--loss", "--spectral-norm", "--ema", "--augment", "--lr-schedule"}


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


def test_each_row_adds_one_change_and_pins_what_it_measures() -> None:
    rows = {name: (seed, _options(flags)) for name, _label, seed, flags in _ablation().ROWS}
    for name, (_seed, opts) in rows.items():
        assert MEASURED <= set(opts), f"row {name} leaves {MEASURED - set(opts)} to train.py's defaults"
    assert rows["plain"][1]["--lr-schedule"] == "constant" and rows["plain"][1]["--loss"] == "ns"
    for before, after in zip(CHAIN, CHAIN[1:]):
        a, b = rows[before][1], rows[after][1]
        changed = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
        assert len(changed) == 1, f"{before} -> {after} changes {sorted(changed)}, not one option"
    for name in [n for n in rows if n.endswith("-s1")]:
        base = name.removesuffix("-s1")
        assert rows[name][1] == rows[base][1] and rows[name][0] != rows[base][0]


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
    cond_line = next(line for line in text.splitlines() if line.startswith("| cond |"))
    assert "not run yet" not in cond_line and float(cond_line.split("|")[3]) > 0  # FID of the row
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
