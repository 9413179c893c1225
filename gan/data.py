"""Training data as one uint8 tensor (N, C, R, R) plus int64 labels, ready to live on the device.

Sources:
* ``fashion-mnist``: the official IDX files, looked up in ``--data-dir``, then in Debian's
  ``dataset-fashion-mnist`` (/usr/share/datasets/fashion-mnist), then via torchvision's download.
* ``mnist`` and ``cifar10``: torchvision data sets (``--data-dir`` is their root; download if allowed).
* ``folder``: any folder of images (recursively), resized and center-cropped to the resolution, in
  grayscale or RGB.  Labels come from the first-level sub-folder names (``ImageFolder`` layout),
  or are all 0 when the images sit directly in the folder.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

DEBIAN_FASHION_MNIST = Path(os.environ.get("GAN_FASHION_MNIST_SYSTEM_DIR", "/usr/share/datasets/fashion-mnist"))
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DATASETS = ("fashion-mnist", "mnist", "cifar10", "folder")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class DataError(RuntimeError):
    """The requested data set could not be found or read."""


@dataclass
class ImageData:
    """A data set held in memory: images uint8 (N, C, R, R) with 0 = black, labels int64 (N,)."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return self.images.size(0)

    @property
    def channels(self) -> int:
        return self.images.size(1)

    @property
    def resolution(self) -> int:
        return self.images.size(-1)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, n: int | None) -> "ImageData":
        """The first n images (all when n is None)."""
        if n is None:
            return self
        if n < 1:
            raise ValueError(f"--limit must be >= 1, got {n}")
        return ImageData(self.images[:n], self.labels[:n], self.class_names, self.source)

    def to(self, device: torch.device | str) -> "ImageData":
        return ImageData(self.images.to(device), self.labels.to(device), self.class_names, self.source)


def epoch_batches(n_images: int, batch_size: int, world_size: int = 1) -> tuple[int, int]:
    """(per-process batch, steps per epoch) of a data set split over world_size processes: each process takes
    n // world images in full batches of at most batch_size (the rest of an epoch is dropped)."""
    shard = n_images // world_size
    batch = min(batch_size, shard)
    return batch, max(shard // batch, 1)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255]."""
    return images.detach().add(1.0).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


# ---- IDX (MNIST-format) files -----------------------------------------------------------------
def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read IDX file {path}: {e}") from None
    if len(data) < 4:
        raise DataError(f"{path} is not an IDX file (too short)")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file")
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise DataError(f"{path} is truncated: expected {int(np.prod(shape))} values, found {arr.size}")
    return arr.reshape(shape)


def _find_idx(folder: Path, split: str) -> tuple[Path, Path] | None:
    prefix = "train" if split == "train" else "t10k"
    found = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        for sub in ("", "FashionMNIST/raw", "raw"):
            cands = [folder / sub / f"{prefix}-{kind}{ext}" for ext in ("", ".gz")]
            hit = next((c for c in cands if c.is_file()), None)
            if hit:
                found.append(hit)
                break
    return (found[0], found[1]) if len(found) == 2 else None


def load_fashion_mnist(split: str = "train", data_dir: str | Path | None = None, *,
                       download: bool = True) -> ImageData:
    """Fashion-MNIST from data_dir, then Debian's package, then torchvision's download."""
    tried = []
    for folder in ([Path(data_dir)] if data_dir else []) + [DEBIAN_FASHION_MNIST]:
        files = _find_idx(folder, split)
        if files:
            return _idx_data(*files, source=str(files[0].parent))
        tried.append(str(folder))
    if download:
        root = Path(data_dir) if data_dir else Path(os.environ.get("GAN_DATA_CACHE", "~/.cache/gan-data")).expanduser()
        try:
            import torchvision
            torchvision.datasets.FashionMNIST(str(root), train=split == "train", download=True)
            files = _find_idx(root, split)
            if files:
                return _idx_data(*files, source=str(files[0].parent))
        except Exception as e:  # network errors come in many types
            tried.append(f"torchvision download into {root} ({type(e).__name__}: {_one_line(e, 120)})")
    raise DataError(
        "Fashion-MNIST not found. Tried: " + "; ".join(tried) + ". Fix it one of three ways: "
        "(1) pass --data-dir DIR holding {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]; "
        "(2) apt-get install dataset-fashion-mnist (Debian/Ubuntu); "
        "(3) connect to the internet so torchvision can download it.")


def _one_line(e: BaseException, limit: int) -> str:
    """An exception's message on one line (torchvision's download errors span several), cut to limit chars."""
    return " ".join(str(e).split())[:limit]


def _idx_data(img_path: Path, lbl_path: Path, source: str) -> ImageData:
    images = torch.from_numpy(read_idx(img_path).copy()).unsqueeze(1)  # (N, 1, 28, 28) uint8
    labels = torch.from_numpy(read_idx(lbl_path).astype(np.int64))
    if images.size(0) != labels.size(0):
        raise DataError(f"{img_path} has {images.size(0)} images but {lbl_path} has {labels.size(0)} labels")
    return ImageData(images, labels, list(FASHION_MNIST_CLASSES), source)


def _torchvision_data(name: str, split: str, data_dir: str | Path | None, download: bool) -> ImageData:
    import torchvision
    root = Path(data_dir) if data_dir else Path(os.environ.get("GAN_DATA_CACHE", "~/.cache/gan-data")).expanduser()
    cls = {"mnist": torchvision.datasets.MNIST, "cifar10": torchvision.datasets.CIFAR10}[name]
    try:
        ds = cls(str(root), train=split == "train", download=download)
    except Exception as e:
        raise DataError(f"{name} not found under {root} and could not be downloaded ({type(e).__name__}: "
                        f"{_one_line(e, 160)}); pass --data-dir with the torchvision {cls.__name__} layout, "
                        f"or connect to the internet") from None
    data = torch.as_tensor(np.asarray(ds.data))
    images = data.unsqueeze(1) if data.dim() == 3 else data.permute(0, 3, 1, 2)
    labels = torch.as_tensor(np.asarray(ds.targets), dtype=torch.long)
    return ImageData(images.contiguous(), labels, list(ds.classes), str(root))


def load_image_folder(folder: str | Path, resolution: int, channels: int) -> ImageData:
    """Every image under folder, resized (shorter side) and center-cropped to resolution."""
    from PIL import Image, ImageOps
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"--data-dir {folder} is not a folder of images")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {folder}")
    subdirs = sorted({p.relative_to(folder).parts[0] for p in files if len(p.relative_to(folder).parts) > 1})
    class_names = subdirs if subdirs and all(len(p.relative_to(folder).parts) > 1 for p in files) else []
    index = {c: i for i, c in enumerate(class_names)}
    mode = "L" if channels == 1 else "RGB"
    import torchvision.transforms.v2.functional as TF
    out, labels, skipped = [], [], []
    for p in files:
        try:
            with Image.open(p) as im:
                im = ImageOps.exif_transpose(im).convert(mode)
                t = TF.pil_to_tensor(im)
        except Exception as e:
            skipped.append(f"{p.name} ({type(e).__name__})")
            continue
        t = TF.resize(t, [resolution], antialias=True)
        out.append(TF.center_crop(t, [resolution, resolution]))
        labels.append(index[p.relative_to(folder).parts[0]] if class_names else 0)
    if not out:
        raise DataError(f"none of the {len(files)} images under {folder} could be read: {', '.join(skipped[:5])}")
    if skipped:
        print(f"warning: skipped {len(skipped)} unreadable images, e.g. {', '.join(skipped[:3])}")
    return ImageData(torch.stack(out), torch.tensor(labels, dtype=torch.long), class_names, str(folder))


def load_dataset(name: str, *, split: str = "train", data_dir: str | Path | None = None,
                 resolution: int | None = None, channels: int | None = None, download: bool = True) -> ImageData:
    """Load a data set by name and bring it to the requested resolution and channel count."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if name == "fashion-mnist":
        data = load_fashion_mnist(split, data_dir, download=download)
    elif name == "folder":
        if not data_dir:
            raise DataError("--dataset folder needs --data-dir PATH (a folder of images)")
        data = load_image_folder(data_dir, resolution or 64, channels or 3)
    else:
        data = _torchvision_data(name, split, data_dir, download)
    return adapt(data, resolution=resolution, channels=channels)


def adapt(data: ImageData, *, resolution: int | None = None, channels: int | None = None) -> ImageData:
    """Resize (bilinear, antialiased) and convert channels (RGB <-> grayscale) when asked."""
    x = data.images
    if channels and channels != x.size(1):
        if channels == 1:  # ITU-R 601 luma, as PIL's "L"
            w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            x = (x.float() * w).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
        elif channels == 3:
            x = x.expand(-1, 3, -1, -1).contiguous()
        else:
            raise DataError(f"channels={channels} is not supported; use 1 or 3")
    if resolution and resolution != x.size(-1):
        chunks = [F.interpolate(c.float(), size=(resolution, resolution), mode="bilinear", antialias=True,
                                align_corners=False).round().clamp(0, 255).to(torch.uint8)
                  for c in x.split(4096)]
        x = torch.cat(chunks)
    return ImageData(x, data.labels, data.class_names, data.source)
