"""Data loading: IDX files, where Fashion-MNIST is looked for, image folders, resizing and channel conversion."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gan.data
from gan.data import (DEBIAN_FASHION_MNIST, FASHION_MNIST_CLASSES, DataError, ImageData, adapt, load_dataset,
                      load_fashion_mnist, load_image_folder, read_idx, to_float, to_uint8)

from conftest import FAKE_TEST_IMAGES, FAKE_TRAIN_IMAGES, make_fake_fashion_mnist, write_idx


def test_fake_fashion_mnist_loads_from_data_dir(fake_fashion: Path) -> None:
    data = load_dataset("fashion-mnist", data_dir=fake_fashion)
    assert data.images.shape == (FAKE_TRAIN_IMAGES, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels.shape == (FAKE_TRAIN_IMAGES,) and data.labels.dtype == torch.int64
    assert set(data.labels.tolist()) == set(range(10))
    assert data.class_names == FASHION_MNIST_CLASSES and data.source == str(fake_fashion)
    test = load_dataset("fashion-mnist", split="test", data_dir=fake_fashion)
    assert len(test) == FAKE_TEST_IMAGES


def test_data_dir_comes_before_the_debian_package(fake_fashion: Path) -> None:
    """--data-dir wins even when the system copy exists (it is the user's explicit choice)."""
    assert len(load_fashion_mnist("train", fake_fashion, download=False)) == FAKE_TRAIN_IMAGES


def test_torchvision_raw_layout_and_uncompressed_files(tmp_path: Path) -> None:
    raw = tmp_path / "FashionMNIST" / "raw"
    make_fake_fashion_mnist(raw, n_train=30, n_test=10)
    for p in raw.glob("*.gz"):  # torchvision keeps the files unpacked
        p.with_suffix("").write_bytes(gzip.decompress(p.read_bytes()))
        p.unlink()
    data = load_fashion_mnist("train", tmp_path, download=False)
    assert len(data) == 30 and data.images.shape[1:] == (1, 28, 28)


@pytest.mark.skipif(not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_real_debian_fashion_mnist() -> None:
    train = load_dataset("fashion-mnist")
    test = load_dataset("fashion-mnist", split="test")
    assert train.images.shape == (60000, 1, 28, 28) and len(test) == 10000
    assert torch.bincount(train.labels).tolist() == [6000] * 10
    assert 60 < train.images.float().mean() < 90, "Fashion-MNIST's mean pixel is about 73"


def test_missing_fashion_mnist_without_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gan.data, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    with pytest.raises(DataError) as e:
        load_fashion_mnist("train", tmp_path, download=False)
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path) in msg and "(1)" in msg and "(2)" in msg and "(3)" in msg


def test_read_idx_rejects_bad_files(tmp_path: Path) -> None:
    good = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    write_idx(tmp_path / "ok-idx3-ubyte", good)
    assert np.array_equal(read_idx(tmp_path / "ok-idx3-ubyte"), good)
    write_idx(tmp_path / "ok.gz", good)
    truncated = tmp_path / "truncated-idx3-ubyte"
    truncated.write_bytes((tmp_path / "ok-idx3-ubyte").read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated"):
        read_idx(truncated)
    (tmp_path / "text").write_bytes(b"hello world, not an IDX file")
    with pytest.raises(DataError, match="not an unsigned-byte IDX file"):
        read_idx(tmp_path / "text")
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(DataError, match="cannot read IDX file"):
        read_idx(tmp_path / "bad.gz")


def test_mismatched_image_and_label_counts(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((5, 28, 28), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros((4,), np.uint8))
    with pytest.raises(DataError, match="5 images but .* 4 labels"):
        load_fashion_mnist("train", tmp_path, download=False)


def test_float_uint8_round_trip() -> None:
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    f = to_float(x)
    assert f.min() == -1 and f.max() == 1
    assert torch.equal(to_uint8(f), x)
    assert to_uint8(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]


def test_adapt_resolution_and_channels() -> None:
    data = ImageData(torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8), torch.zeros(3, dtype=torch.long))
    rgb32 = adapt(data, resolution=32, channels=3)
    assert rgb32.images.shape == (3, 3, 32, 32) and rgb32.images.dtype == torch.uint8
    assert torch.equal(rgb32.images[:, 0], rgb32.images[:, 1])
    back = adapt(ImageData(adapt(data, channels=3).images, data.labels), channels=1)
    assert (back.images.int() - data.images.int()).abs().max() <= 1, "RGB of a gray image must map back to it"
    assert adapt(data, resolution=64).images.shape == (3, 1, 64, 64)
    assert data.subset(2).images.shape[0] == 2
    with pytest.raises(ValueError, match="--limit must be >= 1"):
        data.subset(0)


def test_image_folder_classes_resizing_and_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for name, color, size in (("cats", (255, 0, 0), (50, 40)), ("dogs", (0, 0, 255), (40, 60))):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.new("RGB", size, color).save(tmp_path / name / f"{i}.png")
    Image.new("P", (33, 33)).save(tmp_path / "dogs" / "palette.gif")
    (tmp_path / "dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    data = load_image_folder(tmp_path, 32, 3)
    assert data.class_names == ["cats", "dogs"]
    assert data.images.shape == (7, 3, 32, 32)
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert data.images[0, 0].float().mean() > 250 and data.images[0, 2].float().mean() < 5  # red stays red
    assert "skipped 1 unreadable images" in capsys.readouterr().out
    gray = load_image_folder(tmp_path, 28, 1)
    assert gray.images.shape == (7, 1, 28, 28)


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is not a folder"):
        load_image_folder(tmp_path / "missing", 32, 3)
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match="no images"):
        load_image_folder(tmp_path, 32, 3)
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(DataError, match="none of the 1 images"):
        load_image_folder(tmp_path, 32, 3)
    with pytest.raises(DataError, match="needs --data-dir"):
        load_dataset("folder")
    with pytest.raises(DataError, match="unknown dataset 'svhn'"):
        load_dataset("svhn")
