"""The training loop through train.py's main(): weights change, the model folder, determinism, resume, options."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gan.checkpoint
import gan.train.step
from gan import GAN
from gan.data import DEBIAN_FASHION_MNIST, FASHION_MNIST_CLASSES, load_dataset
from gan.train import TrainConfig, build_models

from conftest import (MODEL_FOLDER_FILES, assert_same_tensors, read_jsonl, run_main, tensors, tiny_args)


def test_few_steps_change_weights_and_write_the_model_folder(fake_fashion: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run_main(tiny_args(fake_fashion, out, "--sample-every", "1", steps=3)) == 0

    missing = [f for f in MODEL_FOLDER_FILES if not (out / f).is_file()]
    assert not missing, f"model folder lacks {missing}"
    model = GAN.from_pretrained(str(out))
    assert model.num_classes == 10 and model.class_names == FASHION_MNIST_CLASSES and model.z_dim == 16
    x = model.generate(4, seed=0, labels=[0, 1, 2, 3])
    assert x.shape == (4, 1, 28, 28) and torch.isfinite(x).all() and x.min() >= -1 and x.max() <= 1

    # the weights moved away from the seeded initialisation
    cfg = TrainConfig(data_dir=str(fake_fashion), g_width=8, d_width=8, z_dim=16)
    torch.manual_seed(cfg.seed)
    G0, D0 = build_models(cfg, load_dataset("fashion-mnist", data_dir=fake_fashion))
    d_now = tensors(out / "discriminator.safetensors")
    moved = [k for k, v in D0.state_dict().items() if v.is_floating_point() and k in d_now and not torch.equal(v, d_now[k])]
    assert len(moved) >= len(list(D0.parameters())) // 2, f"only {moved} of D changed"
    g_now = tensors(out / "generator.safetensors")
    assert not torch.equal(G0.to_img.weight, g_now["to_img.weight"])

    rows = read_jsonl(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(np.isfinite([r["d_loss"], r["g_loss"], r["d_real"], r["d_fake"]]).all() for r in rows)
    assert all(0 <= r["d_real"] <= 1 and 0 <= r["d_fake"] <= 1 and r["img_per_s"] > 0 for r in rows)
    options = json.loads((out / "training_options.json").read_text())
    assert options["steps_done"] == 3 and options["seed"] == 0 and options["num_train_images"] == 128
    assert options["batch_size"] == 32 and options["device"] == "cpu"
    config = json.loads((out / "config.json").read_text())
    assert config["generator"]["num_classes"] == 10 and config["dataset"] == "fashion-mnist"
    with Image.open(out / "progress.gif") as gif:
        assert gif.n_frames == 4  # steps 0, 1, 2, 3
    with Image.open(out / "samples.png") as im:
        assert im.width > 100 and im.height > 100
    assert (out / "README.md").read_text().strip()


def test_same_seed_gives_identical_weights(fake_fashion: Path, tmp_path: Path) -> None:
    runs = {}
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        runs[name] = tmp_path / name
        assert run_main(tiny_args(fake_fashion, runs[name], "--seed", seed, steps=3)) == 0
    for f in ("generator.safetensors", "discriminator.safetensors"):
        assert_same_tensors(runs["a"] / f, runs["b"] / f)
    ga, gc = tensors(runs["a"] / "generator.safetensors"), tensors(runs["c"] / "generator.safetensors")
    assert not torch.equal(ga["to_img.weight"], gc["to_img.weight"]), "--seed has no effect"


def test_the_ema_setting_changes_only_gs_average_not_the_game(fake_fashion: Path, tmp_path: Path) -> None:
    """The ablation compares EMA rows with their base seed by seed: G and D must train exactly alike."""
    runs = {}
    for name, extra in (("decay", ("--ema-beta", "0.999")), ("halflife", ("--ema-halflife-kimg", "0.005"))):
        runs[name] = tmp_path / name
        assert run_main(tiny_args(fake_fashion, runs[name], "--seed", "3", *extra, steps=4)) == 0
    assert_same_tensors(runs["decay"] / "discriminator.safetensors", runs["halflife"] / "discriminator.safetensors")
    losses = [[(r["d_loss"], r["g_loss"]) for r in read_jsonl(runs[n] / "metrics.jsonl") if "d_loss" in r]
              for n in runs]
    assert losses[0] == losses[1] and len(losses[0]) == 4
    ga, gb = (tensors(runs[n] / "generator.safetensors") for n in runs)  # the shipped G is the average
    assert not torch.equal(ga["to_img.weight"], gb["to_img.weight"]), "--ema-halflife-kimg has no effect"


def _interrupt_after_checkpoint(monkeypatch: pytest.MonkeyPatch, at_step: int) -> None:
    """Make the run stop like Ctrl-C right after it wrote the checkpoint of `at_step`."""
    real = gan.checkpoint.save_checkpoint

    def save_then_interrupt(state: dict, folder: Path, step: int, **kw) -> Path:  # noqa: ANN003
        path = real(state, folder, step, **kw)
        if step == at_step:
            raise KeyboardInterrupt
        return path
    monkeypatch.setattr(gan.checkpoint, "save_checkpoint", save_then_interrupt)


def test_resume_continues_from_the_saved_step_and_matches_an_uninterrupted_run(
        fake_fashion: Path, reference_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    args = tiny_args(fake_fashion, out, "--ckpt-every", "2", steps=6)
    with monkeypatch.context() as m:
        _interrupt_after_checkpoint(m, at_step=4)
        assert run_main(args) == 130
    assert "--resume" in capsys.readouterr().err
    assert not (out / "config.json").exists()
    assert [p.name for p in gan.checkpoint.list_checkpoints(out / "ckpts")] == ["ckpt-00000002.pt", "ckpt-00000004.pt"]

    # an unfinished run is not restarted by accident
    assert run_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "unfinished run" in err and "--resume" in err and len(err.splitlines()) == 1

    assert run_main(args + ["--resume"]) == 0
    out_text = capsys.readouterr().out
    assert "resumed from" in out_text and "ckpt-00000004.pt at step 4/6" in out_text
    for f in ("generator.safetensors", "discriminator.safetensors"):
        assert_same_tensors(reference_run / f, out / f)
    assert [r["step"] for r in read_jsonl(out / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]
    ref_rows, rows = read_jsonl(reference_run / "metrics.jsonl"), read_jsonl(out / "metrics.jsonl")
    assert [r["d_loss"] for r in rows] == [r["d_loss"] for r in ref_rows]


@pytest.mark.parametrize("resume", [True, False], ids=["resume", "restart"])
def test_a_run_killed_before_its_first_checkpoint_starts_over_cleanly(
        resume: bool, fake_fashion: Path, reference_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    args = tiny_args(fake_fashion, out, "--ckpt-every", "2", steps=6)
    real, calls = gan.train.step.ema_update, []

    def ema_then_interrupt(*a) -> None:  # noqa: ANN002
        calls.append(1)
        if len(calls) == 2:  # during step 2, after step 1 was logged, before the first checkpoint
            raise KeyboardInterrupt
        real(*a)
    with monkeypatch.context() as m:
        m.setattr(gan.train.step, "ema_update", ema_then_interrupt)
        assert run_main(args) == 130
    assert not gan.checkpoint.list_checkpoints(out / "ckpts")
    assert [r["step"] for r in read_jsonl(out / "metrics.jsonl")] == [1]
    capsys.readouterr()
    assert run_main(args + (["--resume"] if resume else [])) == 0
    if resume:
        assert "no checkpoint" in capsys.readouterr().out
    assert [r["step"] for r in read_jsonl(out / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6], "rows of the killed attempt"
    for f in ("generator.safetensors", "discriminator.safetensors"):
        assert_same_tensors(reference_run / f, out / f)


def test_a_finished_run_continued_longer_drops_the_evaluation_of_its_old_weights(
        fake_fashion: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run_main(tiny_args(fake_fashion, out, steps=2)) == 0
    (out / "eval.json").write_text(json.dumps({"fid": 99.25, "n_samples": 10000}))  # gan.evaluate --write
    assert run_main(tiny_args(fake_fashion, out, "--resume", steps=4)) == 0
    assert json.loads((out / "training_options.json").read_text())["steps_done"] == 4
    assert not (out / "eval.json").exists(), "eval.json described the 2-step weights"
    card = (out / "README.md").read_text()
    assert "99.25" not in card and "Not evaluated yet" in card


def test_resume_reports_the_step(fake_fashion: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    args = tiny_args(fake_fashion, out, "--ckpt-every", "2", steps=4)
    with monkeypatch.context() as m:
        _interrupt_after_checkpoint(m, at_step=2)
        assert run_main(args) == 130
    capsys.readouterr()
    assert run_main(args + ["--resume"]) == 0
    assert "at step 2/4" in capsys.readouterr().out
    ckpt = gan.checkpoint.load_checkpoint(gan.checkpoint.list_checkpoints(out / "ckpts")[-1])
    assert ckpt["step"] == 4


def test_resume_with_different_options_is_refused(fake_fashion: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_after_checkpoint(m, at_step=2)
        assert run_main(tiny_args(fake_fashion, out, "--ckpt-every", "2", steps=4)) == 130
    capsys.readouterr()
    assert run_main(tiny_args(fake_fashion, out, "--ckpt-every", "2", "--seed", "5", "--resume", steps=4)) == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and "seed" in err


def test_a_finished_folder_is_not_overwritten(fake_fashion: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    assert run_main(tiny_args(fake_fashion, out, steps=1)) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    assert run_main(tiny_args(fake_fashion, out, "--seed", "3", steps=1)) == 2
    err = capsys.readouterr().err.strip()
    assert "already holds a finished model" in err and "--overwrite" in err and len(err.splitlines()) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert run_main(tiny_args(fake_fashion, out, "--seed", "3", "--overwrite", steps=1)) == 0
    assert (out / "generator.safetensors").read_bytes() != before["generator.safetensors"]
    assert [r["step"] for r in read_jsonl(out / "metrics.jsonl")] == [1], "--overwrite kept old metrics rows"


@pytest.mark.parametrize("options", [
    ["--loss", "ns"],
    ["--loss", "hinge"],
    ["--loss", "wgan-gp"],
    ["--loss", "ns", "--r1", "1.0"],
    ["--loss", "hinge", "--r1", "0.5", "--augment", "color,translation,cutout"],
    ["--loss", "rpgan", "--r1", "0.5", "--r2", "0.5"],
    ["--lr-schedule", "cosine", "--lr-warmup", "1"],
    ["--ema-halflife-kimg", "0.5"],
    ["--augment", ""],
    ["--augment", "cutout"],
    ["--no-ema"],
    ["--no-spectral-norm"],
    ["--no-conditional"],
    ["--no-channels-last"],
    ["--cpu-amp"],
    ["--cpu-amp", "--reg-every", "1"],
], ids=lambda o: " ".join(o).replace("--", "") or "none")
def test_training_options_run(fake_fashion: Path, tmp_path: Path, options: list[str]) -> None:
    out = tmp_path / "run"
    assert run_main(tiny_args(fake_fashion, out, *options, steps=1)) == 0
    rows = read_jsonl(out / "metrics.jsonl")
    assert rows and all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in rows)
    model = GAN.from_pretrained(str(out))
    cfg = model.config()
    assert cfg["discriminator"]["spectral_norm"] == ("--no-spectral-norm" not in options)
    assert model.num_classes == (0 if "--no-conditional" in options else 10)
    if "--no-spectral-norm" in options:
        assert not any("parametrizations" in k for k in tensors(out / "discriminator.safetensors"))
    assert torch.isfinite(model.generate(2, seed=0)).all()


def test_d_steps_two_updates_g_every_second_step(fake_fashion: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run_main(tiny_args(fake_fashion, out, "--d-steps", "2", "--loss", "hinge", steps=4)) == 0
    g_losses = [r["g_loss"] for r in read_jsonl(out / "metrics.jsonl")]
    assert g_losses[0] == 0.0 and g_losses[2] == 0.0, "G was updated on a D-only step"
    assert g_losses[1] != 0.0 and g_losses[3] != 0.0, "G was never updated"


def _write_pngs(folder: Path, n: int, seed: int, size: tuple[int, int] = (40, 52), mode: str = "RGB") -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(arr).convert(mode).save(folder / f"img{i:03d}.png")


def test_folder_dataset_with_class_subfolders(tmp_path: Path) -> None:
    data = tmp_path / "images"
    for c, name in enumerate(["boots", "coats", "hats"]):
        _write_pngs(data / name, 8, seed=c, mode="RGB" if c != 1 else "L")  # mixed colour modes
    (data / "notes.txt").write_text("not an image: ignored")
    out = tmp_path / "run"
    args = tiny_args(data, out, "--dataset", "folder", "--resolution", "32", "--channels", "3", steps=2)
    assert run_main(args) == 0
    model = GAN.from_pretrained(str(out))
    assert model.class_names == ["boots", "coats", "hats"] and model.num_classes == 3
    assert model.config()["generator"]["resolution"] == 32 and model.config()["generator"]["channels"] == 3
    assert model.config()["dataset"] == "folder"
    x = model.generate(3, seed=0, labels=[0, 1, 2])
    assert x.shape == (3, 3, 32, 32)
    options = json.loads((out / "training_options.json").read_text())
    assert options["num_train_images"] == 24


def test_flat_folder_trains_unconditional_and_asks_for_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "flat"
    _write_pngs(data, 12, seed=0, size=(30, 30))
    args = tiny_args(data, tmp_path / "a", "--dataset", "folder", "--resolution", "28", "--channels", "1", steps=1)
    assert run_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "--no-conditional" in err and len(err.splitlines()) == 1
    out = tmp_path / "b"
    args = tiny_args(data, out, "--dataset", "folder", "--resolution", "28", "--channels", "1", "--no-conditional",
                     steps=1)
    assert run_main(args) == 0
    model = GAN.from_pretrained(str(out))
    assert model.num_classes == 0
    assert model.generate(2, seed=0).shape == (2, 1, 28, 28)


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_torchvision_dataset_without_data_or_network_fails_clearly(
        dataset: str, tmp_path: Path, no_network: None, capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_main(tiny_args(empty, tmp_path / "run", "--dataset", dataset, steps=1)) == 2  # no retry loop
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, f"expected one line, got:\n{err}"
    assert err.startswith("error: ") and dataset in err and "--data-dir" in err and "internet" in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists(), "a failed data load must not leave an empty model folder"


@pytest.mark.skipif(not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_from_the_debian_package(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = tiny_args(tmp_path / "nothing-here", out, steps=1)
    del args[:2]  # no --data-dir: the Debian package is the source
    assert run_main(args) == 0
    model = GAN.from_pretrained(str(out))
    assert model.class_names == FASHION_MNIST_CLASSES
    options = json.loads((out / "training_options.json").read_text())
    assert options["data_dir"] is None and options["num_train_images"] == 128


def test_output_folder_copy_still_loads(reference_run: Path, tmp_path: Path) -> None:
    """The model folder is self-contained: a copy elsewhere (as in checkpoints/ or on the Hub) loads."""
    dst = tmp_path / "copy"
    shutil.copytree(reference_run, dst, ignore=shutil.ignore_patterns("ckpts", "progress"))
    a, b = GAN.from_pretrained(str(reference_run)), GAN.from_pretrained(str(dst))
    assert torch.equal(a.generate(3, seed=1), b.generate(3, seed=1))


def test_lr_schedule_and_ema_halflife_follow_the_step(fake_fashion: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    """Warm-up then cosine decay, logged per step; a resumed run continues the schedule where it stopped."""
    args = ("--lr-schedule", "cosine", "--lr-warmup", "2", "--lr-final", "0.1", "--ckpt-every", "3")
    out = tmp_path / "run"
    assert run_main(tiny_args(fake_fashion, out, *args, steps=6)) == 0
    lrs = [r["lr_g"] for r in read_jsonl(out / "metrics.jsonl")]
    base = 2e-4
    assert lrs[0] == pytest.approx(base / 2) and lrs[1] == pytest.approx(base)  # warm-up
    assert lrs[2] == pytest.approx(base) and lrs[2] > lrs[3] > lrs[4] > lrs[5]  # then a cosine decay ...
    assert lrs[5] == pytest.approx(base * 0.1)  # ... to 10% at the last step
    final = tensors(out / "generator.safetensors")
    (out / "ckpts" / "ckpt-00000006.pt").unlink()  # as if killed after the step-3 checkpoint
    assert run_main(tiny_args(fake_fashion, out, *args, "--resume", steps=6)) == 0
    assert [r["lr_g"] for r in read_jsonl(out / "metrics.jsonl")] == lrs
    resumed = tensors(out / "generator.safetensors")
    assert all(torch.equal(final[k], resumed[k]) for k in final)
    capsys.readouterr()
    # continuing the finished run to a longer one stretches the decay: say so
    assert run_main(tiny_args(fake_fashion, out, *args, "--resume", steps=8)) == 0
    assert "now spans 8 steps instead of 6" in capsys.readouterr().out


def test_schedule_functions() -> None:
    from gan.train.schedules import ema_beta, lr_factor
    assert [lr_factor("constant", s, 10) for s in (0, 5, 9)] == [1.0, 1.0, 1.0]
    assert lr_factor("linear", 0, 11, final=0.5) == 1.0 and lr_factor("linear", 10, 11, final=0.5) == 0.5
    assert lr_factor("cosine", 0, 11, warmup=0, final=0.0) == 1.0
    assert lr_factor("cosine", 10, 11, final=0.0) == pytest.approx(0.0)
    assert [lr_factor("cosine", s, 10, warmup=4) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        lr_factor("step", 5, 10)
    # a half-life of 10 kimg at 1000 images per step: 10 steps halve the old weights' share
    b = ema_beta(10_000, beta=0.999, halflife_kimg=10.0, images_per_step=1000)
    assert b ** 10 == pytest.approx(0.5)
    assert ema_beta(10_000, beta=0.999) == 0.999 and ema_beta(0, beta=0.999) == pytest.approx(0.1)


def test_rpgan_loss_is_relativistic() -> None:
    from gan.losses import d_loss_fn, g_loss_fn, r1_penalty
    real, fake = torch.tensor([2.0, 1.0]), torch.tensor([-1.0, 0.0])
    d, g = d_loss_fn("rpgan"), g_loss_fn("rpgan")
    assert d(real, fake) < d(fake, real)  # D is rewarded for ranking each real above its paired fake
    assert g(fake, real) == pytest.approx(float(d(fake, real)))  # G's loss is D's with the roles swapped
    assert d(real + 5, fake + 5) == pytest.approx(float(d(real, fake)))  # only differences count
    x = torch.randn(3, 1, 4, 4, requires_grad=True)
    assert r1_penalty((x * 2).sum(dim=(1, 2, 3)), x).item() == pytest.approx(4.0 * 16)


@pytest.mark.parametrize("extras", [True, False])
def test_extras_run_after_a_full_fashion_mnist_run_unless_turned_off(
        extras: bool, fake_fashion: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gan.train.outputs
    calls: list[tuple] = []  # the finisher always renders the card; the extras only after a full run
    monkeypatch.setattr(gan.train.outputs, "finish", lambda folder, extras=None: calls.append((folder, extras)))
    args = tiny_args(fake_fashion, tmp_path / "run", *([] if extras else ["--no-extras"]), steps=1)
    i = args.index("--limit")
    assert run_main(args[:i] + args[i + 2:]) == 0  # all 320 images: a full run, not a smoke run
    assert calls == [(tmp_path / "run", None if extras else ())]


def _fixed_penalties(monkeypatch: pytest.MonkeyPatch, calls: list[int]) -> None:
    """R1 = 1 and R2 = 2 as constants (no gradient), recording the D-step count of each call."""
    real = gan.train.step.train_step
    state = {"step": 0}

    def counting_step(run):  # noqa: ANN001, ANN202
        state["step"] = run.step
        return real(run)

    def fixed(logits: torch.Tensor, images: torch.Tensor, n_real: int) -> tuple[torch.Tensor, torch.Tensor]:
        assert images.requires_grad and images.size(0) == 2 * n_real == logits.size(0)
        calls.append(state["step"])
        return torch.tensor(1.0), torch.tensor(2.0)
    monkeypatch.setattr(gan.train.step, "r1_r2_penalties", fixed)
    monkeypatch.setattr(gan.train.loop, "train_step", counting_step)


def test_lazy_penalty_runs_every_k_steps_weighted_by_k(fake_fashion: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """--reg-every 3: R1/R2 on steps 0, 3, 6 only, each weighted by 3 (StyleGAN2's lazy regularisation)."""
    calls: list[int] = []
    with monkeypatch.context() as m:
        _fixed_penalties(m, calls)
        lazy = tmp_path / "lazy"
        assert run_main(tiny_args(fake_fashion, lazy, "--r1", "0.1", "--r2", "0.3", "--reg-every", "3", steps=7)) == 0
    assert calls == [0, 3, 6]
    plain = tmp_path / "plain"  # the same game without penalties: the constants add to D's loss, not its gradient
    assert run_main(tiny_args(fake_fashion, plain, "--r1", "0", "--r2", "0", steps=7)) == 0
    rows = zip(read_jsonl(lazy / "metrics.jsonl"), read_jsonl(plain / "metrics.jsonl"))
    added = [a["d_loss"] - b["d_loss"] for a, b in rows]
    weight = 3 * 0.5 * (0.1 * 1.0 + 0.3 * 2.0)  # k * gamma/2 * (R1 + R2 with their weights)
    assert added == pytest.approx([weight, 0, 0, weight, 0, 0, weight], abs=1e-5)


def test_every_step_penalty_and_no_penalty_without_weights(fake_fashion: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    for options, expected in ((["--reg-every", "1"], [0, 1, 2]), (["--r1", "0", "--r2", "0"], []),
                              (["--r1", "0", "--r2", "0.1", "--reg-every", "2"], [0, 2])):
        calls: list[int] = []
        with monkeypatch.context() as m:
            _fixed_penalties(m, calls)
            assert run_main(tiny_args(fake_fashion, tmp_path / "_".join(options), *options, steps=3)) == 0
        assert calls == expected, options


def test_resume_keeps_the_lazy_penalty_schedule(fake_fashion: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed after step 4 (not a multiple of 3): the resumed run regularises on step 6, as the uninterrupted one."""
    ref, out = tmp_path / "ref", tmp_path / "run"
    args = ("--reg-every", "3", "--ckpt-every", "2")
    assert run_main(tiny_args(fake_fashion, ref, *args, steps=8)) == 0
    with monkeypatch.context() as m:
        _interrupt_after_checkpoint(m, at_step=4)
        assert run_main(tiny_args(fake_fashion, out, *args, steps=8)) == 130
    assert run_main(tiny_args(fake_fashion, out, *args, "--resume", steps=8)) == 0
    for f in ("generator.safetensors", "discriminator.safetensors"):
        assert_same_tensors(ref / f, out / f)
    d_losses = [[r["d_loss"] for r in read_jsonl(f / "metrics.jsonl")] for f in (ref, out)]
    assert d_losses[0] == d_losses[1] and len(d_losses[0]) == 8


@pytest.mark.parametrize("value", ["0", "-2"])
def test_reg_every_must_be_positive(value: str, fake_fashion: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture) -> None:
    assert run_main(tiny_args(fake_fashion, tmp_path / "run", "--reg-every", value)) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --reg-every must be >= 1, got {value}"
    assert not (tmp_path / "run").exists()


def test_one_pass_penalties_match_separate_ones_and_d_scores_each_image_alone() -> None:
    """D has no batch-dependent layer, so real and generated images can share one pass (and one input gradient)."""
    from gan.losses import r1_penalty, r1_r2_penalties
    from gan.models import Discriminator, DiscriminatorConfig
    from gan.train.schedules import penalty_weight
    torch.manual_seed(0)
    D = Discriminator(DiscriminatorConfig(width=8, num_classes=10)).eval()
    real, fake, y = torch.randn(4, 1, 28, 28), torch.randn(4, 1, 28, 28), torch.arange(4)
    x = torch.cat([real, fake]).requires_grad_(True)
    logits = D(x, torch.cat([y, y]))
    torch.testing.assert_close(logits, torch.cat([D(real, y), D(fake, y)]))
    r1, r2 = r1_r2_penalties(logits, x, 4)
    for images, want in ((real, r1), (fake, r2)):
        images = images.clone().requires_grad_(True)
        torch.testing.assert_close(want, r1_penalty(D(images, y), images))
    assert [penalty_weight(s, 4) for s in range(9)] == [4, 0, 0, 0, 4, 0, 0, 0, 4]
    assert [penalty_weight(s, 1) for s in range(3)] == [1, 1, 1]


def test_cpu_amp_turns_on_bf16_autocast_on_the_cpu(fake_fashion: Path, tmp_path: Path) -> None:
    runs = {name: tmp_path / name for name in ("fp32", "bf16")}
    assert run_main(tiny_args(fake_fashion, runs["fp32"], "--no-cpu-amp", steps=2)) == 0
    assert run_main(tiny_args(fake_fashion, runs["bf16"], "--cpu-amp", steps=2)) == 0
    a, b = (tensors(runs[n] / "discriminator.safetensors") for n in runs)
    assert any(not torch.equal(a[k], b[k]) for k in a), "--cpu-amp changed nothing"
    assert json.loads((runs["bf16"] / "training_options.json").read_text())["cpu_amp"] is True


def test_lr_cooldown_without_a_budget_is_warmup_stable_decay_and_resume_keeps_it(
        fake_fashion: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """--lr-cooldown 0.5 over 8 steps: 2 warm-up steps, the base rate, then a straight line to --lr-final."""
    args = ("--lr-cooldown", "0.5", "--lr-warmup", "2", "--lr-final", "0.1", "--ckpt-every", "3")
    out = tmp_path / "run"
    assert run_main(tiny_args(fake_fashion, out, *args, steps=8)) == 0
    lrs = [r["lr_g"] / 2e-4 for r in read_jsonl(out / "metrics.jsonl")]
    assert lrs == pytest.approx([0.5, 1.0, 1.0, 1.0, 1.0, 0.7, 0.4, 0.1])
    final = tensors(out / "generator.safetensors")
    (out / "ckpts" / "ckpt-00000008.pt").unlink()  # as if killed after the step-6 checkpoint, in the decay
    assert run_main(tiny_args(fake_fashion, out, *args, "--resume", steps=8)) == 0
    assert [r["lr_g"] / 2e-4 for r in read_jsonl(out / "metrics.jsonl")] == lrs
    assert all(torch.equal(final[k], v) for k, v in tensors(out / "generator.safetensors").items())
    capsys.readouterr()
    # a longer run moves the cool-down: say what the rate does at the step it resumes from
    assert run_main(tiny_args(fake_fashion, out, *args, "--resume", steps=16)) == 0
    assert "now spans 16 steps instead of 8, so the rate at step 8 goes from 0.1x to 1x" in capsys.readouterr().out
