"""train.py --init-from: a run starts from a trained model folder's weights, fresh optimisers, and says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import run_main, tensors, tiny_args
from gan.fileio import sha256_file
from gan.train.options import TrainConfig
from gan.train.run import build_run, init_from, load_data
from gan.train.distributed import Dist


@pytest.fixture(scope="module")
def finished(fake_fashion: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("init") / "base"
    assert run_main(tiny_args(fake_fashion, out, steps=3)) == 0
    return out


def _run(fake_fashion: Path, out: Path, *extra: str):  # noqa: ANN202 (a Run)
    args = vars(__import__("train").build_parser().parse_args(tiny_args(fake_fashion, out, *extra)))
    for k in ("push_to_hub", "private", "hub_revision"):
        args.pop(k)
    cfg = TrainConfig(**args)
    d = Dist()
    data, batch, spe, total = load_data(cfg, d, None)
    return build_run(cfg, d, torch.device("cpu"), data, batch, spe, total)


def test_init_from_loads_g_ema_into_g_and_g_ema_and_d_into_d(fake_fashion: Path, finished: Path,
                                                             tmp_path: Path) -> None:
    run = _run(fake_fashion, tmp_path / "x")
    g_file, d_file = tensors(finished / "generator.safetensors"), tensors(finished / "discriminator.safetensors")
    assert not torch.equal(run.G.state_dict()["fc.0.weight"], g_file["fc.0.weight"])  # a fresh run differs
    init_from(run, str(finished))
    for net in (run.G, run.G_ema):
        for k, v in net.state_dict().items():
            assert torch.equal(v, g_file[k]), k
    for k, v in run.D.state_dict().items():
        assert torch.equal(v, d_file[k]), k
    assert not run.opt_G.state and not run.opt_D.state  # the optimisers start fresh


def test_a_warm_started_run_trains_from_the_folder_and_records_it(fake_fashion: Path, finished: Path,
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "warm"
    assert run_main(tiny_args(fake_fashion, out, "--init-from", str(finished), steps=2)) == 0
    opts = json.loads((out / "training_options.json").read_text())
    assert opts["init_from"] == str(finished) and opts["steps_done"] == 2
    base = opts["base_model"]  # the lineage: the source, its generator's hash, its own training record
    assert base["generator_sha256"] == sha256_file(finished / "generator.safetensors")
    assert base["steps_done"] == 3 and base["source"] == str(finished)
    card = (out / "README.md").read_text()
    assert "initialised from" in card and f"started from the weights of `{finished}` (" in card
    # two steps from the base's weights stay close to them; a run from scratch does not
    base = tensors(finished / "discriminator.safetensors")
    warm = tensors(out / "discriminator.safetensors")
    cold_out = tmp_path / "cold"
    assert run_main(tiny_args(fake_fashion, cold_out, "--seed", "5", steps=2)) == 0
    cold = tensors(cold_out / "discriminator.safetensors")
    k = "head.weight" if "head.weight" in base else next(iter(base))
    assert (warm[k] - base[k]).abs().mean() < (cold[k] - base[k]).abs().mean()


def test_init_from_with_other_widths_or_a_missing_folder_is_a_clear_error(
        fake_fashion: Path, finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run_main(tiny_args(fake_fashion, tmp_path / "w", "--init-from", str(finished),
                              "--g-width", "16")) == 2
    err = capsys.readouterr().err
    assert "--init-from" in err and "generator.width" in err and "Traceback" not in err
    assert run_main(tiny_args(fake_fashion, tmp_path / "m", "--init-from", str(tmp_path / "nowhere"))) == 2
    assert "--init-from" in capsys.readouterr().err
    assert not (tmp_path / "w" / "config.json").exists()


def test_resume_takes_the_checkpoint_over_init_from(fake_fashion: Path, finished: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    assert run_main(tiny_args(fake_fashion, out, "--init-from", str(finished), "--ckpt-every", "1", steps=2)) == 0
    after_two = tensors(out / "generator.safetensors")
    # continuing to 3 steps starts from step 2's checkpoint, not from the base folder again
    assert run_main(tiny_args(fake_fashion, out, "--init-from", str(finished), "--resume", steps=3)) == 0
    opts = json.loads((out / "training_options.json").read_text())
    assert opts["steps_done"] == 3 and opts["base_model"]["steps_done"] == 3  # the lineage survives --resume
    assert not all(torch.equal(after_two[k], v) for k, v in tensors(out / "generator.safetensors").items())


def test_resume_with_changed_schedule_is_recorded_in_options_and_card(fake_fashion: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    """A --resume that changes what is trained (the length, the schedule) is kept in training_options.json and said
    on the card; where files go or how often to log is not recorded."""
    out = tmp_path / "r"
    assert run_main(tiny_args(fake_fashion, out, "--ckpt-every", "1", steps=2)) == 0
    assert "resumes" not in json.loads((out / "training_options.json").read_text())
    capsys.readouterr()
    assert run_main(tiny_args(fake_fashion, out, "--resume", "--lr-schedule", "linear", "--lr-final", "0.5",
                              "--log-every", "3", "--ckpt-every", "1", steps=3)) == 0
    # the old run's own schedule (constant) against the new one (linear, at its last step: 0.5x)
    assert "at step 2 goes from 1x to 0.5x the base rate" in capsys.readouterr().out
    assert run_main(tiny_args(fake_fashion, out, "--resume", "--lr-schedule", "linear", "--lr-final", "0.5",
                              steps=4)) == 0
    opts = json.loads((out / "training_options.json").read_text())
    assert opts["resumes"] == [
        {"step": 2, "changed": {"steps": [2, 3], "lr_schedule": ["constant", "linear"], "lr_final": [0.1, 0.5]}},
        {"step": 3, "changed": {"steps": [3, 4]}}]
    card = (out / "README.md").read_text()
    assert "resumed with changed options" in card and "learning-rate schedule constant → linear" in card
    # 128 images in batches of 32: 4 steps an epoch
    assert "at step 2 (epoch 0.5)" in card and "at step 3 (epoch 0.75)" in card
    assert "log" not in card.split("resumed with changed options")[1].split("\n")[0]
