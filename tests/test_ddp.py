"""torchrun with 2 CPU processes (gloo): the run finishes, only rank 0 writes, the model loads, ranks agree."""

from __future__ import annotations

import json
import os
import math
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan import GAN

from conftest import MODEL_FOLDER_FILES, ROOT, read_jsonl, subprocess_env, tiny_args

# Each rank runs train.py's main() from its own working directory with a relative --out, so anything a rank
# writes lands in its own folder: rank 1's folder must stay empty.  A spy on build_models keeps each rank's
# G and D so the test can compare the ranks' weights after training.
RANK_WRAPPER = """
import os, sys
from pathlib import Path
rank = int(os.environ["RANK"])
work = Path(sys.argv[1])
(work / f"rank{rank}").mkdir()
os.chdir(work / f"rank{rank}")
sys.path.insert(0, sys.argv[2])
import torch
import gan.train.run as T
models = {}
real_build = T.build_models
def build_models(cfg, data):
    models["G"], models["D"] = real_build(cfg, data)
    models["n"] = len(data)
    return models["G"], models["D"]
T.build_models = build_models
import train
rc = train.main(sys.argv[3:])
torch.save({"G": models["G"].state_dict(), "D": models["D"].state_dict(), "n": models["n"]},
           work / f"weights-rank{rank}.pt")
sys.exit(rc)
"""


@pytest.mark.slow
def test_torchrun_two_cpu_processes(fake_fashion: Path, tmp_path: Path) -> None:
    wrapper = tmp_path / "rank_wrapper.py"
    wrapper.write_text(RANK_WRAPPER)
    args = tiny_args(fake_fashion, Path("run"), "--ckpt-every", "2", steps=4)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(wrapper),
           str(tmp_path), str(ROOT), *args]
    res = subprocess.run(cmd, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=400)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]

    out = tmp_path / "rank0" / "run"
    missing = [f for f in MODEL_FOLDER_FILES if not (out / f).is_file()]
    assert not missing, f"rank 0 did not write {missing}"
    written_by_rank1 = [str(p.relative_to(tmp_path)) for p in (tmp_path / "rank1").rglob("*")]
    assert written_by_rank1 == [], f"rank 1 wrote {written_by_rank1}"

    options = json.loads((out / "training_options.json").read_text())
    assert options["world_size"] == 2 and options["steps_done"] == 4
    assert options["images_seen"] == 4 * 32 * 2
    model = GAN.from_pretrained(str(out))
    assert model.generate(2, seed=0, labels=[1, 2]).shape == (2, 1, 28, 28)

    # gradients are averaged every step, so both ranks hold the same weights at the end
    w0, w1 = (torch.load(tmp_path / f"weights-rank{r}.pt", weights_only=True) for r in (0, 1))
    assert w0["n"] == w1["n"] == 128
    for net in ("G", "D"):
        params = [k for k in w0[net] if "running_" not in k and "num_batches_tracked" not in k]
        differ = [k for k in params if not torch.equal(w0[net][k], w1[net][k])]
        assert not differ, f"{net} weights differ between the ranks: {differ}"
    # the D weights the ranks agree on are the ones rank 0 shipped (spectral-norm buffers included)
    shipped = GAN.from_pretrained(str(out)).discriminator.state_dict()
    assert all(torch.equal(shipped[k], w1["D"][k]) for k in shipped)


# ---- in-training evaluation under DDP (issue 13: rank 0 evaluated alone while torchmetrics synced over the
# default group, and the other rank waited in a different collective: a silent hang) ------------------------
DDP_TIMEOUT_S = int(os.environ.get("GAN_TEST_DDP_TIMEOUT", "240"))  # a hang shows up as a subprocess timeout well before CI's limit


def _eval_args(data: Path, out: Path, *extra: str) -> list[str]:
    """Tiny options with evaluation on: 2 steps an epoch with 2 ranks, FID every epoch on 64 samples."""
    args = tiny_args(data, out, "--eval-every", "1", "--eval-samples", "64", "--ckpt-every", "2", *extra)
    i = args.index("--steps")
    return args[:i] + args[i + 2:]  # epochs, not steps: evaluation is scheduled in epochs


def _assert_evaluated_run(out: Path, epochs: int, world: int) -> None:
    rows = read_jsonl(out / "metrics.jsonl")
    evals = [r for r in rows if "fid" in r]
    assert [r["step"] for r in evals] == [2 * (e + 1) for e in range(epochs)], rows
    assert all(math.isfinite(r["fid"]) for r in evals)
    times = [r["time_s"] for r in evals]  # each evaluation says when in training it was made (time-to-quality)
    assert times == sorted(times) and times[0] > 0
    missing = [f for f in MODEL_FOLDER_FILES if not (out / f).is_file()]
    assert not missing, f"the model folder lacks {missing}"
    assert (out / "best" / "config.json").is_file() and (out / "best" / "best.json").is_file()
    options = json.loads((out / "training_options.json").read_text())
    assert options["world_size"] == world and options["steps_done"] == 2 * epochs


@pytest.mark.slow
def test_torchrun_two_processes_with_evaluation_and_resume(fake_fashion: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    base = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            str(ROOT / "train.py")]
    for epochs, extra in ((2, ()), (3, ("--resume",))):
        res = subprocess.run([*base, *_eval_args(fake_fashion, out, "--epochs", str(epochs), *extra)], cwd=ROOT,
                             env=subprocess_env(), capture_output=True, text=True, timeout=DDP_TIMEOUT_S)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        _assert_evaluated_run(out, epochs, world=2)
    assert "resumed from" in res.stdout


@pytest.mark.slow
def test_torchrun_two_nodes_c10d_rendezvous(fake_fashion: Path, tmp_path: Path) -> None:
    """The README's two-machine example on one machine: --nnodes=2, one process per node, c10d on localhost."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "run"
    procs = []
    for node in (0, 1):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
               f"--node_rank={node}", "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}",
               f"--rdzv_id=test-{port}", str(ROOT / "train.py"), *_eval_args(fake_fashion, out, "--epochs", "2")]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    try:
        outputs = [p.communicate(timeout=DDP_TIMEOUT_S)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, text in zip(procs, outputs):
        assert p.returncode == 0, text[-3000:]
    _assert_evaluated_run(out, 2, world=2)


MISMATCH_SCRIPT = """
import sys, time
sys.path.insert(0, sys.argv[1])
from gan.train.distributed import barrier, setup_distributed, teardown
from gan.train.options import TrainingError
d = setup_distributed("cpu", timeout_s=3)
if d.rank == 0:
    try:
        barrier(d, "evaluation", 7)  # rank 1 never comes: a future mismatch of collectives
    except TrainingError as e:
        print("error:", e, flush=True)
        sys.exit(2)
    sys.exit(0)
time.sleep(12)  # rank 1 is somewhere else, and stays there
"""


@pytest.mark.slow
def test_mismatched_collective_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    script = tmp_path / "mismatch.py"
    script.write_text(MISMATCH_SCRIPT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), str(ROOT)]
    res = subprocess.run(cmd, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    text = res.stdout + res.stderr
    assert res.returncode != 0, text[-3000:]
    assert "rank 0/2: collective 'evaluation' at step 7 failed after waiting up to 3 s" in text, text[-3000:]
    assert "--ddp-timeout" in text
