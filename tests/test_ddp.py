"""torchrun with 2 CPU processes (gloo): the run finishes, only rank 0 writes, the model loads, ranks agree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan import GAN

from conftest import MODEL_FOLDER_FILES, ROOT, subprocess_env, tiny_args

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
import gan.training as T
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
