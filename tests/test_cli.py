"""train.py's command line: --help lists every option with its default; bad input is one clear line and exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan.train import TrainConfig, config_fields

from conftest import OFFLINE_ENV, ROOT, error_lines, run_main, run_train_py, subprocess_env, tiny_args


def test_help_lists_every_option_with_its_default() -> None:
    res = run_train_py(["--help"])
    assert res.returncode == 0 and res.stderr == ""
    text = res.stdout
    for f in config_fields():
        flag = "--" + f.name.replace("_", "-")
        assert flag in text, f"{flag} is missing from --help"
    for flag in ("--dataset", "--data-dir", "--out", "--epochs", "--batch-size", "--seed", "--limit", "--device",
                 "--resume", "--conditional", "--no-conditional", "--loss", "--push-to-hub"):
        assert flag in text
    import train
    for action in train.build_parser()._actions:
        if action.dest != "help":
            assert action.help and "(default: " in action.help, f"{action.option_strings} has no default in --help"
    assert "(default: 'fashion-mnist')" in text and "(default: 128)" in text and "(default: 'rpgan')" in text


@pytest.mark.parametrize("argv, penalties", [
    ([], (0.05, 0.05)),  # the default objective is R3GAN's: RpGAN with R1 and R2
    (["--loss", "hinge"], (0.0, 0.0)),  # other losses get no penalty unless asked: the previous shipped recipe
    (["--loss", "hinge", "--r1", "0.5"], (0.5, 0.0)),
    (["--r1", "0", "--r2", "0.2"], (0.0, 0.2)),
])
def test_penalty_weights_follow_the_loss_unless_given(argv: list[str], penalties: tuple[float, float]) -> None:
    import train
    args = vars(train.build_parser().parse_args(argv))
    cfg = TrainConfig(**{f.name: args[f.name] for f in config_fields()})
    assert (cfg.r1, cfg.r2) == penalties


@pytest.mark.parametrize("argv, needle", [
    (["--dataset", "imagenet"], "--dataset 'imagenet' is unknown; choose one of fashion-mnist, mnist, cifar10, folder"),
    (["--loss", "lsgan"], "--loss 'lsgan' is unknown; choose one of ns, hinge, wgan-gp"),
    (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["--steps", "-3"], "--steps must be >= 1, got -3"),
    (["--resolution", "30"], "--resolution 30 is not supported; use 28, 32 or 64"),
    (["--channels", "2"], "--channels 2 is not supported"),
    (["--ema-beta", "1.5"], "--ema-beta must be in [0, 1), got 1.5"),
    (["--augment", "blur"], "--augment: unknown augmentation ['blur']"),
    (["--lr-d", "0"], "--lr-d must be > 0"),
    (["--device", "tpu"], "--device tpu is not supported; use auto, cpu or cuda[:N]"),
    (["--dataset", "folder"], "--dataset folder needs --data-dir PATH"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_arguments_give_one_clear_line(argv: list[str], needle: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    assert run_main(["--out", str(out), "--eval-every", "0", *argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert needle in lines[0]
    assert not (out / "config.json").exists() and not (out / "ckpts").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run_main(["--out", str(tmp_path / "run"), "--device", "cuda"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["error: --device cuda: no CUDA GPU is available here; use --device cpu or auto"]
    assert not (tmp_path / "run").exists(), "nothing is written before the options are checked"


def test_argparse_type_errors_exit_2(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as e:
        run_main(["--batch-size", "many"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    error_lines(err)  # no traceback
    assert "error: argument --batch-size: invalid int value: 'many'" in err


def test_bad_arguments_in_a_real_process(tmp_path: Path) -> None:
    """The same checks from a shell: exit status 2, one line on stderr, no traceback."""
    procs = {
        "resolution": subprocess.Popen([sys.executable, str(ROOT / "train.py"), "--resolution", "30", "--out",
                                        str(tmp_path / "a")], env=subprocess_env(), cwd=ROOT, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE),
        "type": subprocess.Popen([sys.executable, str(ROOT / "train.py"), "--batch-size", "0x"], env=subprocess_env(),
                                 cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE),
    }
    results = {k: (p.communicate(timeout=300), p.returncode) for k, p in procs.items()}
    (out, err), rc = results["resolution"]
    assert rc == 2 and out == "" and err.strip().splitlines() == [
        "error: --resolution 30 is not supported; use 28, 32 or 64"]
    (out, err), rc = results["type"]
    assert rc == 2 and "Traceback" not in err
    assert "error: argument --batch-size: invalid int value: '0x'" in err.strip().splitlines()[-1]


MISSING_DATA_WRAPPER = """
import pathlib, sys
import gan.data
gan.data.DEBIAN_FASHION_MNIST = pathlib.Path(sys.argv[1])  # as if dataset-fashion-mnist were not installed
import train
sys.exit(train.main(sys.argv[2:]))
"""


def test_missing_fashion_mnist_lists_the_three_ways_to_fix_it(tmp_path: Path) -> None:
    empty, no_debian = tmp_path / "empty", tmp_path / "no-debian"
    empty.mkdir()
    no_debian.mkdir()
    env = subprocess_env(**OFFLINE_ENV, GAN_FASHION_MNIST_SYSTEM_DIR=str(no_debian))
    res = subprocess.run([sys.executable, "-c", MISSING_DATA_WRAPPER, str(no_debian), "--data-dir", str(empty),
                          "--out", str(tmp_path / "run"), "--eval-every", "0"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    line = lines[0]
    assert line.startswith("error: Fashion-MNIST not found") and "Traceback" not in res.stderr
    assert str(empty) in line and str(no_debian) in line, "the message names the places it looked"
    assert "(1) pass --data-dir" in line
    assert "(2) apt-get install dataset-fashion-mnist" in line
    assert "(3) connect to the internet" in line


def test_missing_fashion_mnist_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None,
                                          capsys: pytest.CaptureFixture) -> None:
    import gan.data
    monkeypatch.setattr(gan.data, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    (tmp_path / "empty").mkdir()
    assert run_main(tiny_args(tmp_path / "empty", tmp_path / "run", steps=1)) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "Fashion-MNIST not found" in lines[0] and "torchvision download" in lines[0]
    assert all(f"({i})" in lines[0] for i in (1, 2, 3))
