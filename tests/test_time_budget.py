"""train.py --time-budget and tools/gpu_train.py's packing: a run that must end by a deadline ends cleanly,
says how far it got, can be continued, and the most useful results travel first."""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

import gan.checkpoint
import gan.train.budget
from conftest import ROOT, read_jsonl, run_main, tensors, tiny_args


def _epoch_args(data: Path, out: Path, *extra: str) -> list[str]:
    """tiny_args, but the length in epochs (128 images, batch 32: 4 steps an epoch)."""
    args = tiny_args(data, out)
    i = args.index("--steps")
    return args[:i] + args[i + 2:] + list(extra)


def test_time_budget_stops_at_an_epoch_end_records_it_and_resume_continues(fake_fashion: Path,
                                                                           tmp_path: Path) -> None:
    out = tmp_path / "run"
    # --lr-cooldown 0 opts out of the fitted schedule: the older rule, constant rate, stop at an epoch end
    # a budget already spent when the first epoch ends: the run stops there instead of after 50 epochs
    assert run_main(_epoch_args(fake_fashion, out, "--epochs", "50", "--time-budget", "0.000001",
                                "--lr-cooldown", "0")) == 0
    opts = json.loads((out / "training_options.json").read_text())
    assert (opts["epochs"], opts["steps_done"]) == (1, 4) and "time_budget_fit" not in opts
    assert {r["lr_g"] for r in read_jsonl(out / "metrics.jsonl")} == {2e-4}
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
    assert run_main(tiny_args(fake_fashion, out, "--time-budget", "0.000001", "--lr-cooldown", "0", steps=10)) == 0
    opts = json.loads((out / "training_options.json").read_text())
    assert (opts["steps"], opts["steps_done"]) == (4, 4)
    out2 = tmp_path / "long"
    assert run_main(tiny_args(fake_fashion, out2, "--time-budget", "600", "--lr-cooldown", "0", steps=6)) == 0
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


# --- the fitted schedule (gan/train/budget.py) -----------------------------------------------------------------
# The budget's clock is replaced by one that says how long the run has trained from its step alone, so the fit
# is the same in every test run: 0.5 s a step up to step 20, then 1 s a step (the machine gets shared).

def _step_clock(run) -> float:  # noqa: ANN001 (a Run)
    return 0.5 * min(run.step, 20) + 1.0 * max(run.step - 20, 0)


def _budget_args(data: Path, out: Path, *extra: str) -> list[str]:
    """A 30-second budget, at most 1000 epochs of 4 steps; a checkpoint every 4 steps."""
    return _epoch_args(data, out, "--epochs", "1000", "--time-budget", "0.5", "--ckpt-every", "4", *extra)


def test_a_budgeted_run_fits_its_length_refits_when_slower_and_ends_cooled_down(
        fake_fashion: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gan.train.budget, "run_seconds", _step_clock)
    out = tmp_path / "run"
    assert run_main(_budget_args(fake_fashion, out)) == 0
    opts = json.loads((out / "training_options.json").read_text())
    fit = opts["time_budget_fit"]
    # measured from step 4 to 8 at 0.5 s a step: 26 s left = 52 steps, so 60; at 1 s a step from step 24: 40
    assert fit["first_fit"] == {"step": 8, "s_per_step": 0.5, "total": 60}
    assert fit["s_per_step"] == 1.0 and fit["total_steps"] == 40 == opts["steps_done"] == opts["steps"]
    assert fit["cooldown_start"] == 32 and fit["frozen_at"] == 32  # the last 20% of 40 steps
    assert opts["lr_cooldown"] == 0.2 and opts["epochs"] == 10 and opts["images_seen"] == 40 * 32
    lrs = [r["lr_g"] for r in read_jsonl(out / "metrics.jsonl") if "lr_g" in r]
    assert len(lrs) == 40 and set(lrs[:32]) == {2e-4}  # the stable phase
    assert lrs[-1] == pytest.approx(2e-5)  # --lr-final 0.1 at the last step ...
    steps = [a - b for a, b in zip(lrs[32:], lrs[31:-1])]
    assert all(d == pytest.approx(steps[1]) for d in steps[1:]) and steps[1] < 0  # ... in a straight line
    card = (out / "README.md").read_text()
    assert "fitted to a 0.5-minute budget" in card and "40 steps" in card


def _row(r: dict) -> tuple:
    return r["step"], r["lr_g"], r["d_loss"]


@pytest.mark.parametrize("kill_at", [28, 36], ids=["stable-phase", "in-the-cool-down"])
def test_resume_of_a_killed_budgeted_run_continues_the_same_schedule(
        kill_at: int, fake_fashion: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gan.train.budget, "run_seconds", _step_clock)
    ref = tmp_path / "ref"
    assert run_main(_budget_args(fake_fashion, ref)) == 0
    out = tmp_path / "run"
    real = gan.checkpoint.save_checkpoint

    def save_then_interrupt(state: dict, folder: Path, step: int, **kw) -> Path:  # noqa: ANN003
        path = real(state, folder, step, **kw)
        if step == kill_at:
            raise KeyboardInterrupt
        return path
    with monkeypatch.context() as m:
        m.setattr(gan.checkpoint, "save_checkpoint", save_then_interrupt)
        assert run_main(_budget_args(fake_fashion, out)) == 130
    assert run_main(_budget_args(fake_fashion, out, "--resume")) == 0
    rows, ref_rows = read_jsonl(out / "metrics.jsonl"), read_jsonl(ref / "metrics.jsonl")
    assert [_row(r) for r in rows] == [_row(r) for r in ref_rows]
    opts, ref_opts = (json.loads((f / "training_options.json").read_text()) for f in (out, ref))
    assert opts["time_budget_fit"] == ref_opts["time_budget_fit"] and "resumes" not in opts
    g, g_ref = tensors(out / "generator.safetensors"), tensors(ref / "generator.safetensors")
    assert all(torch.equal(g[k], g_ref[k]) for k in g)


def test_a_new_budget_on_resume_plans_again_and_a_budget_larger_than_the_run_cools_down_at_its_end(
        fake_fashion: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    # 10 minutes for 6 steps: the total stays --steps 6, the last 20% (2 steps) decay, the last at lr_final
    assert run_main(tiny_args(fake_fashion, out, "--time-budget", "10", steps=6)) == 0
    lrs = [r["lr_g"] for r in read_jsonl(out / "metrics.jsonl")]
    assert lrs[:5] == [2e-4] * 5 and lrs[5] == pytest.approx(2e-5)
    fit = json.loads((out / "training_options.json").read_text())["time_budget_fit"]
    assert (fit["total_steps"], fit["cap_steps"], fit["cooldown_start"]) == (6, 6, 4)
    # the same budget again finds its plan finished (a run killed while it wrote its folder) ...
    assert run_main(tiny_args(fake_fashion, out, "--time-budget", "10", "--resume", steps=10)) == 0
    assert json.loads((out / "training_options.json").read_text())["steps_done"] == 6
    # ... another budget plans the steps from here to --steps 10
    assert run_main(tiny_args(fake_fashion, out, "--time-budget", "5", "--resume", steps=10)) == 0
    assert "starts a new schedule at step 6" in capsys.readouterr().err
    fit = json.loads((out / "training_options.json").read_text())["time_budget_fit"]
    assert (fit["start_step"], fit["total_steps"], fit["cooldown_start"]) == (6, 10, 8)


def test_the_schedule_is_warmup_stable_decay() -> None:
    from gan.train.schedules import cooldown_start, fit_steps, lr_factor
    f = [lr_factor("constant", s, 10, warmup=2, final=0.1, decay_start=6) for s in range(10)]
    assert f[:2] == [0.5, 1.0] and f[2:7] == [1.0] * 5  # warm-up, then stable up to and at the decay's start
    assert f[7:] == pytest.approx([0.7, 0.4, 0.1])  # a straight line to --lr-final at the last step
    assert lr_factor("constant", 5, 10) == 1.0  # no decay start: constant
    assert lr_factor("linear", 3, 10, final=0.5) == lr_factor("linear", 3, 10, final=0.5, decay_start=0)
    assert lr_factor("cosine", 5, 10, decay_start=6) == 1.0 and lr_factor("cosine", 9, 10, decay_start=6) == 0.1
    assert cooldown_start(100, 0.2) == 80 and cooldown_start(100, 0.2, start=50) == 90
    assert cooldown_start(5, 0.2) == 3 and cooldown_start(5, 0.0) == 5  # at least 2 decay steps; 0 = none
    assert fit_steps(100.0, 0.5) == 200 and fit_steps(-1.0, 0.5) == 0
    # an evaluation of 10 s every 100 steps and one at the end: 10 + 0.6 s a step
    assert fit_steps(100.0, 0.5, eval_period=100, eval_cost_s=10.0) == 150


@pytest.mark.parametrize("argv, needle", [
    (["--lr-cooldown", "1"], "--lr-cooldown must be in [0, 1), got 1.0"),
    (["--lr-schedule", "cosine", "--lr-cooldown", "0.2"], "--lr-cooldown 0.2 needs --lr-schedule constant"),
])
def test_bad_cooldowns_are_clear_errors(argv: list[str], needle: str, fake_fashion: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture) -> None:
    assert run_main(tiny_args(fake_fashion, tmp_path / "x", *argv)) == 2
    assert needle in capsys.readouterr().err


def test_the_cooldown_default_follows_the_budget() -> None:
    from gan.train import TrainConfig
    assert TrainConfig().lr_cooldown == 0.0 and TrainConfig(time_budget=3).lr_cooldown == 0.2
    assert TrainConfig(time_budget=3, lr_schedule="linear").lr_cooldown == 0.0
    assert TrainConfig(time_budget=3, lr_cooldown=0.3).lr_cooldown == 0.3


@pytest.mark.slow
def test_torchrun_ranks_agree_on_the_fitted_total(fake_fashion: Path, tmp_path: Path) -> None:
    """Two gloo ranks with a real 6-second budget: rank 0 fits, both stop at its total (a disagreement would
    leave one rank waiting at a collective until --ddp-timeout), and end with the same weights at lr_final."""
    from conftest import subprocess_env
    from test_ddp import RANK_WRAPPER
    wrapper = tmp_path / "rank_wrapper.py"
    wrapper.write_text(RANK_WRAPPER)
    args = _epoch_args(fake_fashion, Path("run"), "--epochs", "100000", "--time-budget", "0.1",
                       "--ddp-timeout", "60", "--ckpt-every", "50")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(wrapper),
           str(tmp_path), str(ROOT), *args]
    res = subprocess.run(cmd, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = tmp_path / "rank0" / "run"
    opts = json.loads((out / "training_options.json").read_text())
    fit = opts["time_budget_fit"]
    assert fit["fits"] >= 1 and opts["steps_done"] == fit["total_steps"] < fit["cap_steps"]
    assert read_jsonl(out / "metrics.jsonl")[-1]["lr_g"] == pytest.approx(2e-5)
    w0, w1 = (torch.load(tmp_path / f"weights-rank{r}.pt", weights_only=True) for r in (0, 1))
    assert all(torch.equal(w0["G"][k], w1["G"][k]) for k in w0["G"] if "running_" not in k and "num_batches" not in k)


def test_time_to_quality_benchmark_trains_each_budget_and_its_constant_rate_twin(fake_fashion: Path,
                                                                                 tmp_path: Path) -> None:
    """benchmarks/time_to_quality.py: a budgeted run, then the same steps at the constant rate, both evaluated."""
    import shlex
    tiny = tiny_args(fake_fashion, tmp_path / "unused")
    for flag in ("--out", "--steps"):
        i = tiny.index(flag)
        del tiny[i:i + 2]
    spec = importlib.util.spec_from_file_location("time_to_quality", ROOT / "benchmarks" / "time_to_quality.py")
    ttq = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ttq)
    out = tmp_path / "ttq"
    assert ttq.main(["--budgets", "0.03", "--out", str(out), "--threads", "1", "--also-constant", "--n", "40",
                     "--eval-seeds", "0", "--train-args", shlex.join(tiny)]) == 0
    res = {r["run"]: r for r in json.loads((out / "time_to_quality.json").read_text())["results"]}
    assert set(res) == {"b0.03", "b0.03_constant"}
    fit = res["b0.03"]["time_budget_fit"]
    assert fit["budget_min"] == 0.03 and fit["total_steps"] == res["b0.03"]["steps"] > 0
    assert res["b0.03_constant"]["steps"] == res["b0.03"]["steps"] and res["b0.03_constant"]["time_budget_fit"] is None
    assert all(r["fid"] > 0 and 0 <= r["recall"] <= 1 for r in res.values())
    with pytest.raises(SystemExit):
        ttq.main(["--budgets", "-5", "--out", str(out)])
