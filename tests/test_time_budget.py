"""train.py --time-budget and tools/gpu_train.py's packing: a run that must end by a deadline ends cleanly,
says how far it got, can be continued, and the most useful results travel first."""

from __future__ import annotations

import argparse
import importlib.util
import json
import tarfile
from pathlib import Path

import pytest

from conftest import ROOT, run_main, tiny_args


def _epoch_args(data: Path, out: Path, *extra: str) -> list[str]:
    """tiny_args, but the length in epochs (128 images, batch 32: 4 steps an epoch)."""
    args = tiny_args(data, out)
    i = args.index("--steps")
    return args[:i] + args[i + 2:] + list(extra)


def test_time_budget_stops_at_an_epoch_end_records_it_and_resume_continues(fake_fashion: Path,
                                                                           tmp_path: Path) -> None:
    out = tmp_path / "run"
    # a budget already spent when the first epoch ends: the run stops there instead of after 50 epochs
    assert run_main(_epoch_args(fake_fashion, out, "--epochs", "50", "--time-budget", "0.000001")) == 0
    opts = json.loads((out / "training_options.json").read_text())
    assert (opts["epochs"], opts["steps_done"]) == (1, 4)
    assert (out / "config.json").is_file() and (out / "ckpts" / "ckpt-00000004.pt").is_file()
    # the recorded length is what --resume continues from
    assert run_main(_epoch_args(fake_fashion, out, "--epochs", "3", "--resume")) == 0
    opts = json.loads((out / "training_options.json").read_text())
    assert (opts["epochs"], opts["steps_done"]) == (3, 12)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "d_loss" in r] == list(range(1, 13))  # no step lost or repeated


def test_time_budget_with_steps_records_the_steps_and_a_large_budget_changes_nothing(fake_fashion: Path,
                                                                                     tmp_path: Path) -> None:
    out = tmp_path / "steps"
    assert run_main(tiny_args(fake_fashion, out, "--time-budget", "0.000001", steps=10)) == 0
    opts = json.loads((out / "training_options.json").read_text())
    assert (opts["steps"], opts["steps_done"]) == (4, 4)
    out2 = tmp_path / "long"
    assert run_main(tiny_args(fake_fashion, out2, "--time-budget", "600", steps=6)) == 0
    assert json.loads((out2 / "training_options.json").read_text())["steps_done"] == 6


def test_negative_time_budget_is_a_clear_error(fake_fashion: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    assert run_main(tiny_args(fake_fashion, tmp_path / "x", "--time-budget", "-1")) != 0
    assert "--time-budget must be >= 0" in capsys.readouterr().err


def _gpu_train():
    spec = importlib.util.spec_from_file_location("gpu_train", ROOT / "tools" / "gpu_train.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fake_run(folder: Path, fid: float, g_bytes: int, ckpt_bytes: int = 0) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "eval.json").write_text(json.dumps({"metrics": {"fid": fid}}))
    (folder / "generator.safetensors").write_bytes(b"g" * g_bytes)
    (folder / "discriminator.safetensors").write_bytes(b"d" * (g_bytes // 4))
    if ckpt_bytes:
        (folder / "ckpts").mkdir()
        (folder / "ckpts" / "ckpt-00000010.pt").write_bytes(b"c" * ckpt_bytes)


def test_the_pack_keeps_every_runs_figures_and_the_best_runs_weights_and_checkpoint_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mod = _gpu_train()
    runs = tmp_path / "runs"
    _fake_run(runs / "worse", fid=2.0, g_bytes=4000, ckpt_bytes=100)
    _fake_run(runs / "best", fid=1.0, g_bytes=4000, ckpt_bytes=9000)
    monkeypatch.setattr(mod, "LIMIT_BYTES", 16000)  # room for the best run's files, not for the other's G
    monkeypatch.setattr(mod, "PART_BYTES", 5000)
    out = tmp_path / "out"
    out.mkdir()
    a = argparse.Namespace(runs=["worse", "best"], runs_dir=runs, out=out, quick=False)
    mod.pack(a, lambda msg: None, tar_path=tmp_path / "results.tar")
    parts = sorted(out.glob("results.tar.*"))
    assert len(parts) > 1 and all(p.stat().st_size <= 5000 for p in parts)
    whole = tmp_path / "joined.tar"
    whole.write_bytes(b"".join(p.read_bytes() for p in parts))
    with tarfile.open(whole) as tar:
        names = tar.getnames()
    assert {"best/generator.safetensors", "best/discriminator.safetensors", "best/ckpts/ckpt-00000010.pt",
            "best/eval.json", "worse/eval.json", "worse/config.json"} <= set(names)
    # the worse run's G does not fit, and its D alone would be no use
    assert "worse/generator.safetensors" not in names and "worse/discriminator.safetensors" not in names
