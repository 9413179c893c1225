"""Shared test fixtures: a tiny fake Fashion-MNIST, tiny training options, and helpers to run train.py.

Every test runs on the CPU with one thread per process (the tiny models gain nothing from more, and it keeps
bitwise comparisons between processes stable).
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

torch.set_num_threads(1)

# A finished model folder, as train.py writes it (the contract between train.py, checkpoints/, the Hub and the app).
MODEL_FOLDER_FILES = ("config.json", "generator.safetensors", "discriminator.safetensors", "README.md",
                      "samples.png", "progress.gif", "curves.png", "metrics.jsonl", "training_options.json")
FAKE_TRAIN_IMAGES = 320
FAKE_TEST_IMAGES = 64


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an unsigned-byte IDX file (gzip-compressed when the name ends in .gz)."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def make_fake_fashion_mnist(folder: Path, n_train: int = FAKE_TRAIN_IMAGES, n_test: int = FAKE_TEST_IMAGES) -> Path:
    """Four gzip IDX files shaped like Fashion-MNIST: each class is a bright blob at its own place on black."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:28, 0:28]
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        rng.shuffle(labels)
        cy, cx = 6 + 4 * (labels // 4), 6 + 5 * (labels % 4)  # class -> centre of the blob
        blob = np.exp(-((yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2) / 18.0)
        images = np.clip(blob * 230 + rng.normal(0, 12, (n, 28, 28)), 0, 255).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


@pytest.fixture(scope="session")
def fake_fashion(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a tiny fake Fashion-MNIST (320 train, 64 test images) as gzip IDX files."""
    return make_fake_fashion_mnist(tmp_path_factory.mktemp("fake-fashion-mnist"))


def tiny_args(data_dir: Path, out: Path, *extra: str, steps: int = 2) -> list[str]:
    """train.py arguments for a run of a few seconds: tiny data, tiny models, no FID."""
    return ["--data-dir", str(data_dir), "--out", str(out), "--limit", "128", "--batch-size", "32",
            "--g-width", "8", "--d-width", "8", "--z-dim", "16", "--steps", str(steps), "--eval-every", "0",
            "--device", "cpu", "--sample-every", "500", "--ckpt-every", "500", "--log-every", "1", *extra]


def run_main(argv: list[str]) -> int:
    """Run train.py's main() in this process (the CLI entry point without the interpreter start-up)."""
    import train
    return train.main(argv)


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a child python: one thread, no colour, no network downloads."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": str(ROOT), **extra}
    return env


def run_train_py(args: list[str], *, env: dict[str, str] | None = None, timeout: float = 300,
                 module: list[str] | None = None) -> subprocess.CompletedProcess:
    """Run `python train.py ARGS` (or `python -m MODULE ... train.py ARGS`) in a child process."""
    cmd = [sys.executable, *(module or []), str(ROOT / "train.py"), *args]
    return subprocess.run(cmd, cwd=ROOT, env=env or subprocess_env(), capture_output=True, text=True,
                          timeout=timeout)


def tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file."""
    return load_file(str(path))


def assert_same_tensors(a: Path, b: Path) -> None:
    """Bitwise equality of two safetensors files' tensors, naming the first difference."""
    ta, tb = tensors(a), tensors(b)
    assert ta.keys() == tb.keys(), f"{a} and {b} hold different tensors"
    for k in ta:
        assert torch.equal(ta[k], tb[k]), f"{k} differs between {a} and {b} (max abs diff " \
                                          f"{(ta[k].float() - tb[k].float()).abs().max().item():.3g})"


def error_lines(stderr: str) -> list[str]:
    """The `error: ...` lines of train.py's stderr (the tqdm bar also writes there); none may be a traceback."""
    assert "Traceback" not in stderr, stderr[-3000:]
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSON-lines file."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every outgoing connection fail at once, like a machine without internet."""
    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError("network disabled by the test")
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


# A dead proxy makes urllib (torchvision's downloader) fail at once in a child process.
OFFLINE_ENV = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
               "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": ""}


@pytest.fixture(scope="session")
def reference_run(fake_fashion: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted 6-step run with checkpoints every 2 steps (for resume comparisons)."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert run_main(tiny_args(fake_fashion, out, "--ckpt-every", "2", steps=6)) == 0
    return out


# ---- the launched app, shared by the app tests (test_app_api, test_app_security, test_browser) ----------
@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory):
    """`python app.py` on a tiny random conditional GAN (two directions; no calibration, eval.json or card)."""
    from app_server import make_tiny_model, start_app
    tmp = tmp_path_factory.mktemp("app")
    srv = start_app(make_tiny_model(tmp / "model"), log=tmp / "server.log",
                    env={"GAN_APP_SCRATCH": str(tmp / "scratch")})
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def shipped_app_server(tmp_path_factory: pytest.TempPathFactory):
    """`python app.py` serving the shipped model in checkpoints/ (what a reader of the README runs)."""
    from app_server import ROOT, start_app
    tmp = tmp_path_factory.mktemp("shipped-app")
    srv = start_app(ROOT / "checkpoints", log=tmp / "server.log", env={"GAN_APP_SCRATCH": str(tmp / "scratch")})
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def critic_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random conditional GAN folder with a critic refined in a few seconds (for the critic's app tests).

    The random generator's output layer is scaled so that its samples have contrast (dark, speckled images):
    a plain tiny random G draws uniform grey, which the app's preprocessing rightly refuses as blank.
    """
    from app_server import make_tiny_model
    from gan import GAN
    from gan.scoring import write_critic
    folder = make_tiny_model(tmp_path_factory.mktemp("critic-app") / "model")
    model = GAN.from_pretrained(str(folder))
    with torch.no_grad():
        model.generator.to_img.weight.mul_(3000.0)
        model.generator.to_img.bias.fill_(-1.0)
    model.save_pretrained(folder)
    write_critic(folder, steps=40, batch_size=32, eval_every=20, patience=2, n_val=128, n_test=128,
                 n_test_round_trip=32, pool=32, n_train=1000, candidates=("refine",))
    return folder


@pytest.fixture(scope="session")
def critic_app_server(critic_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """`python app.py` on the tiny model with a critic (the Score tab's answer comes from the critic)."""
    from app_server import start_app
    tmp = tmp_path_factory.mktemp("critic-app-server")
    srv = start_app(critic_model_dir, log=tmp / "server.log", env={"GAN_APP_SCRATCH": str(tmp / "scratch")})
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def app_client(app_server):
    """A gradio_client.Client connected to the shared app."""
    gradio_client = pytest.importorskip("gradio_client")
    client = gradio_client.Client(app_server.url, verbose=False)
    yield client
    client.close()


@pytest.fixture
def server(app_server):
    """The shared app server under its short name (test_browser.py defines its own)."""
    return app_server


@pytest.fixture
def client(app_client):
    """The shared gradio_client under its short name."""
    return app_client


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium for the browser tests (their modules skip when it or playwright is missing)."""
    from app_server import CHROMIUM, CHROMIUM_ARGS
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
