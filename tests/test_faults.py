"""Training faults: SIGKILL at random points (also mid-checkpoint-write), corrupted checkpoints, NaN/inf losses.

The promise under test: a killed run continued with ``--resume`` ends bitwise-equal to an uninterrupted run with
the same seed (on the CPU, one thread: every kernel is deterministic there and the checkpoint holds the weights,
both optimizers, the step, the RNG state and the learning-rate scale; the data order is a function of seed and
epoch).  A damaged checkpoint is refused by its checksum and the previous one is used.  Non-finite losses skip
the batch and halve the learning rates; too many in a row stop the run with a message naming the step.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import gan.checkpoint as ckpt
import gan.train.run
from gan.checkpoint import MAGIC, CheckpointError, list_checkpoints, load_checkpoint, load_latest, save_checkpoint

from conftest import ROOT, assert_same_tensors, error_lines, read_jsonl, run_main, run_train_py, subprocess_env, tensors, tiny_args

FAULT_STEPS = 12


def fault_args(data: Path, out: Path, *extra: str) -> list[str]:
    """A 12-step run with a checkpoint every 2 steps and a progress grid every 5."""
    return tiny_args(data, out, "--ckpt-every", "2", "--sample-every", "5", *extra, steps=FAULT_STEPS)


@pytest.fixture(scope="module")
def subprocess_reference(fake_fashion: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run, in a child process like the killed ones."""
    out = tmp_path_factory.mktemp("fault-reference") / "run"
    res = run_train_py(fault_args(fake_fashion, out))
    assert res.returncode == 0, res.stderr[-2000:]
    return out


def _start(args: list[str], log: Path) -> subprocess.Popen:
    f = open(log, "ab")
    try:
        return subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT, env=subprocess_env(),
                                stdout=f, stderr=subprocess.STDOUT)
    finally:
        f.close()


def _rows(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except OSError:
        return 0


def _kill_when(proc: subprocess.Popen, ready, *, timeout: float = 240) -> bool:  # noqa: ANN001
    """SIGKILL proc as soon as ready() is true; False if proc exited first."""
    t_end = time.time() + timeout
    while time.time() < t_end:
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.0005)
    proc.kill()
    raise AssertionError("the training run made no progress before the timeout")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigkill_at_random_points_then_resume_equals_uninterrupted(
        seed: int, fake_fashion: Path, subprocess_reference: Path, tmp_path: Path) -> None:
    rng = random.Random(seed)
    out, log = tmp_path / "run", tmp_path / "train.log"
    # two kills per run: one in the first half, one in the second (or during the final folder write)
    targets = sorted([rng.randint(1, FAULT_STEPS // 2), rng.randint(FAULT_STEPS // 2 + 1, FAULT_STEPS)])
    kills = 0
    for i, target in enumerate(targets):
        delay = rng.uniform(0, 0.15)
        proc = _start(fault_args(fake_fashion, out, *(["--resume"] if i else [])), log)
        marked = {}

        def ready() -> bool:
            if _rows(out / "metrics.jsonl") >= target and "t" not in marked:
                marked["t"] = time.time()
            return "t" in marked and time.time() - marked["t"] >= delay
        killed = _kill_when(proc, ready)
        kills += killed
        newest = list_checkpoints(out / "ckpts")
        print(f"seed {seed}: kill after step {target} + {delay:.3f} s: {'killed' if killed else 'finished first'}; "
              f"newest checkpoint {newest[-1].name if newest else None}")
    assert kills >= 1, f"no kill landed (targets {targets}); the test did not test anything"
    res = run_train_py(fault_args(fake_fashion, out, "--resume"))
    assert res.returncode == 0, log.read_text()[-2000:] + res.stderr[-2000:]
    for f in ("generator.safetensors", "discriminator.safetensors"):
        assert_same_tensors(subprocess_reference / f, out / f)
    assert [r["step"] for r in read_jsonl(out / "metrics.jsonl")] == list(range(1, FAULT_STEPS + 1))


@pytest.mark.slow
def test_sigkill_during_a_checkpoint_write(fake_fashion: Path, subprocess_reference: Path, tmp_path: Path) -> None:
    out, log = tmp_path / "run", tmp_path / "train.log"
    ckpts = out / "ckpts"

    def temp_files() -> list[str]:
        try:
            return [n for n in os.listdir(ckpts) if n.endswith(".tmp")]
        except FileNotFoundError:
            return []

    # watch for a temp checkpoint file and kill the writer while it exists; retry if the write won the race
    caught = None
    for attempt in range(4):
        proc = _start(fault_args(fake_fashion, out, *(["--resume"] if attempt else [])), log)
        seen: list[str] = []

        def ready() -> bool:
            names = temp_files()
            # skip the first checkpoint so there is a previous good one to fall back on
            names = [n for n in names if n != ".ckpt-00000002.pt.tmp"]
            seen[:] = names
            return bool(names)
        _kill_when(proc, ready)
        leftover = [n for n in temp_files() if n in seen]
        if leftover:
            caught = leftover[0]
            break
        if (out / "config.json").exists():
            for p in out.iterdir():  # finished before we caught a write: start over
                if p.is_file():
                    p.unlink()
            import shutil
            shutil.rmtree(ckpts, ignore_errors=True)
    assert caught, "never caught a checkpoint mid-write in 4 attempts"
    print(f"killed while {caught} was being written (attempt {attempt + 1})")

    final_name = caught[1:-len(".tmp")]  # .ckpt-00000006.pt.tmp -> ckpt-00000006.pt
    assert not (ckpts / final_name).exists(), "a half-written checkpoint appeared under its final name"
    good = list_checkpoints(ckpts)
    assert good and caught not in [p.name for p in good], "temp files must never be listed as checkpoints"
    state, path = load_latest(ckpts)
    assert path == good[-1] and state["step"] < int(final_name[5:13])

    res = run_train_py(fault_args(fake_fashion, out, "--resume"))
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"at step {state['step']}/{FAULT_STEPS}" in res.stdout
    for f in ("generator.safetensors", "discriminator.safetensors"):
        assert_same_tensors(subprocess_reference / f, out / f)


# ---- damaged checkpoints (in-process: faster, same code path) ----------------------------------------------
def _interrupted_at_4(fake_fashion: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A 6-step run stopped right after its step-4 checkpoint; returns its arguments."""
    args = tiny_args(fake_fashion, out, "--ckpt-every", "2", steps=6)
    real = ckpt.save_checkpoint

    def save_then_stop(state: dict, folder: Path, step: int, **kw) -> Path:  # noqa: ANN003
        path = real(state, folder, step, **kw)
        if step == 4:
            raise KeyboardInterrupt
        return path
    with monkeypatch.context() as m:
        m.setattr(ckpt, "save_checkpoint", save_then_stop)
        assert run_main(args) == 130
    return args


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _flip_payload_bit(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[len(data) * 2 // 3] ^= 0x10
    p.write_bytes(bytes(data))


def _flip_header_bit(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[3] ^= 0x01
    p.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, message", [
    (_truncate, "corrupted or truncated"),
    (_flip_payload_bit, "corrupted or truncated"),
    (_flip_header_bit, "bad header"),
], ids=["truncated", "bit-flip-payload", "bit-flip-header"])
def test_damaged_checkpoint_falls_back_to_the_previous_one(
        damage, message: str, fake_fashion: Path, reference_run: Path, tmp_path: Path,  # noqa: ANN001
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    args = _interrupted_at_4(fake_fashion, out, monkeypatch)
    newest = out / "ckpts" / "ckpt-00000004.pt"
    damage(newest)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(newest)
    capsys.readouterr()

    assert run_main(args + ["--resume"]) == 0
    printed = capsys.readouterr().out
    assert f"{newest} is" in printed and message in printed and "trying the previous checkpoint" in printed
    assert "ckpt-00000002.pt at step 2/6" in printed
    for f in ("generator.safetensors", "discriminator.safetensors"):
        assert_same_tensors(reference_run / f, out / f)


def test_all_checkpoints_damaged_is_a_clear_error(fake_fashion: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    args = _interrupted_at_4(fake_fashion, out, monkeypatch)
    for p in list_checkpoints(out / "ckpts"):
        _truncate(p)
    capsys.readouterr()
    assert run_main(args + ["--resume"]) == 2
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "no usable checkpoint" in err[0]
    assert "ckpt-00000002.pt" in err[0] and "ckpt-00000004.pt" in err[0]
    assert len(list_checkpoints(out / "ckpts")) == 2, "damaged checkpoints must be kept for inspection"


def test_a_crash_mid_write_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_checkpoint({"step": 1, "w": torch.ones(3)}, tmp_path, 1)

    def disk_full(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError):
        save_checkpoint({"step": 2, "w": torch.zeros(3)}, tmp_path, 2)
    monkeypatch.undo()
    state, path = load_latest(tmp_path)
    assert path.name == "ckpt-00000001.pt" and state["step"] == 1
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-00000001.pt"]


class _Planted:
    """Unpickling this runs exec(): what a malicious 'weights' file would do."""

    def __init__(self, marker: Path) -> None:
        self.code = f"open({str(marker)!r}, 'w').write('pwned')"

    def __reduce__(self):  # noqa: ANN204
        return (exec, (self.code,))


def test_a_malicious_pickle_in_a_checkpoint_is_refused(tmp_path: Path) -> None:
    """Even with a valid header and checksum, a checkpoint cannot run code: it is loaded with weights_only."""
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    torch.save({"step": 1, "payload": _Planted(marker)}, buf)
    pickle.loads(pickle.dumps(_Planted(tmp_path / "control")))  # the plant works when unpickled unsafely
    assert (tmp_path / "control").exists()
    payload = buf.getvalue()
    path = tmp_path / "ckpt-00000001.pt"
    path.write_bytes(MAGIC + hashlib.sha256(payload).digest() + payload)
    with pytest.raises(CheckpointError, match="could not be loaded safely"):
        load_checkpoint(path)
    assert not marker.exists(), "loading a checkpoint ran code"


def test_keep_prunes_old_checkpoints(tmp_path: Path) -> None:
    for step in (2, 4, 6):
        save_checkpoint({"step": step}, tmp_path, step, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-00000004.pt", "ckpt-00000006.pt"]
    assert not any(p.suffix == ".tmp" for p in tmp_path.iterdir())


# ---- NaN / inf losses --------------------------------------------------------------------------------------
def _nan_d_loss_on(monkeypatch: pytest.MonkeyPatch, bad_calls) -> None:  # noqa: ANN001
    """Make the discriminator loss non-finite on the given (0-based) D-step calls."""
    real_factory = gan.train.run.d_loss_fn

    def factory(name: str):  # noqa: ANN202
        fn, calls = real_factory(name), [0]

        def loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
            i = calls[0]
            calls[0] += 1
            value = fn(real, fake)
            return value * float("nan") if bad_calls(i) else value
        return loss
    monkeypatch.setattr(gan.train.run, "d_loss_fn", factory)


def test_transient_nonfinite_losses_skip_the_batch_and_halve_the_lr(
        fake_fashion: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    _nan_d_loss_on(monkeypatch, lambda i: i in (2, 3))
    assert run_main(tiny_args(fake_fashion, out, "--ckpt-every", "1", "--lr-d", "1e-3", steps=6)) == 0
    printed = capsys.readouterr().out
    assert "non-finite loss at step 2" in printed and "learning rates now x0.5" in printed
    assert "non-finite loss at step 3" in printed and "learning rates now x0.25" in printed
    state = load_checkpoint(list_checkpoints(out / "ckpts")[-1])
    assert state["step"] == 6 and state["lr_scale"] == 0.25
    assert state["opt_D"]["param_groups"][0]["lr"] == pytest.approx(1e-3 * 0.25)
    assert state["opt_G"]["param_groups"][0]["lr"] == pytest.approx(2e-4 * 0.25)
    assert all(torch.isfinite(t).all() for t in tensors(out / "generator.safetensors").values())
    assert all(torch.isfinite(t).all() for t in tensors(out / "discriminator.safetensors").values())
    steps = [r["step"] for r in read_jsonl(out / "metrics.jsonl")]
    assert 3 not in steps and 4 not in steps and steps[-1] == 6, "skipped batches must not be logged as steps"


def test_persistent_nonfinite_losses_stop_with_the_step_and_keep_the_last_good_checkpoint(
        fake_fashion: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    _nan_d_loss_on(monkeypatch, lambda i: i >= 3)
    args = tiny_args(fake_fashion, out, "--ckpt-every", "1", "--max-nonfinite", "3", steps=10)
    assert run_main(args) == 2
    captured = capsys.readouterr()
    err = error_lines(captured.err)
    assert len(err) == 1 and "diverged" in err[0] and "3 consecutive non-finite losses ending at step 5" in err[0]
    assert str(out / "ckpts") in err[0]
    assert not (out / "config.json").exists(), "a diverged run must not look finished"
    state, path = load_latest(out / "ckpts")
    assert path.name == "ckpt-00000003.pt" and state["step"] == 3
    assert all(torch.isfinite(t).all() for t in state["G"].values() if t.is_floating_point())


def test_a_huge_learning_rate_is_caught_from_the_cli(fake_fashion: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    """--lr-d 1e30 without spectral norm blows D up after one step; the guard stops the run cleanly."""
    out = tmp_path / "run"
    args = tiny_args(fake_fashion, out, "--lr-d", "1e30", "--no-spectral-norm", "--loss", "ns", "--ckpt-every", "1",
                     steps=20)
    assert run_main(args) == 2
    captured = capsys.readouterr()
    err = error_lines(captured.err)
    assert len(err) == 1 and "consecutive non-finite losses ending at step" in err[0] and "--lr-d" in err[0]
    assert captured.out.count("non-finite loss at step") == 5  # the default --max-nonfinite
    assert list_checkpoints(out / "ckpts"), "the last checkpoint before the divergence is kept"
    assert not (out / "config.json").exists()
