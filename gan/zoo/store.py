"""The zoo's samples on disk: one compressed .npz of uint8 images per family, and zoo.json with the recipes.

    zoo = load_zoo()                       # {family: ZooSamples}, from assets/zoo of the checkout
    zoo["dcgan-convT"].train               # (N, 1, 28, 28) uint8: the detector may learn from these
    zoo["dcgan-convT"].test                # (M, 1, 28, 28) uint8: only ever measured

Samples, not weights, are kept: they are what the detector learns from and what the benchmark measures,
and they are small (2,500 images of 784 bytes per family).  ``python -m gan.zoo`` makes them again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..fileio import atomic_path, atomic_write_json, sha256_file

ZOO_DIR = Path(__file__).resolve().parent.parent.parent / "assets" / "zoo"  # the checkout's assets/zoo
SEALED_DIR = ZOO_DIR / "sealed"  # families nothing learns from (families.SEALED): measured only
ZOO_JSON = "zoo.json"
TEST_SHARE = 0.2  # the last 20% of each family's shuffled samples are its test split
SPLIT_SEED = 12_345


class ZooMissing(FileNotFoundError):
    """The zoo's samples are not where they were looked for."""


@dataclass
class ZooSamples:
    """One family's samples: a training split and a test split, uint8 (N, 1, 28, 28)."""

    name: str
    train: torch.Tensor
    test: torch.Tensor
    info: dict


def write_family(folder: str | Path, name: str, samples: torch.Tensor, info: dict) -> Path:
    """Save samples (N, 28, 28) uint8 as folder/name.npz and record info (with the file's SHA-256) in zoo.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.npz"
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, images=samples.numpy().astype(np.uint8))
    meta = _read_meta(folder) if (folder / ZOO_JSON).is_file() else {"version": 1, "families": {}}
    meta["families"][name] = {**info, "file": path.name, "sha256": sha256_file(path), "n": int(samples.size(0))}
    atomic_write_json(folder / ZOO_JSON, meta)
    return path


def _read_meta(folder: Path) -> dict:
    meta = json.loads((folder / ZOO_JSON).read_text())
    if not isinstance(meta, dict) or not isinstance(meta.get("families"), dict):
        raise ValueError(f"{folder / ZOO_JSON} has no 'families' table")
    return meta


def split(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) of a family's samples: a fixed shuffle, the last TEST_SHARE of it for test."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(len(images))
    n_test = int(round(TEST_SHARE * len(images)))
    return images[perm[:-n_test]], images[perm[-n_test:]]


def load_zoo(folder: str | Path | None = None, *, families: list[str] | None = None) -> dict[str, ZooSamples]:
    """Every family's samples in folder (default: the checkout's assets/zoo), checked against zoo.json."""
    folder = Path(folder) if folder is not None else ZOO_DIR
    if not (folder / ZOO_JSON).is_file():
        raise ZooMissing(f"no zoo samples in {folder} ({ZOO_JSON} missing); make them with: python -m gan.zoo "
                         f"--out {folder}")
    meta = _read_meta(folder)
    names = families if families is not None else sorted(meta["families"])
    out = {}
    for name in names:
        info = meta["families"].get(name)
        if info is None:
            raise ZooMissing(f"the zoo in {folder} has no family {name!r}; it has {', '.join(sorted(meta['families']))}")
        path = folder / info["file"]
        if sha256_file(path) != info.get("sha256"):
            raise ValueError(f"{path} does not match the SHA-256 in {ZOO_JSON}; make it again: python -m gan.zoo")
        with np.load(path) as z:
            images = z["images"]
        tr, te = split(images)
        out[name] = ZooSamples(name, torch.from_numpy(tr).unsqueeze(1), torch.from_numpy(te).unsqueeze(1), info)
    return out


def write_grid(folder: str | Path, path: str | Path, per_family: int = 12, scale: int = 3) -> Path:
    """A picture of folder's families: per_family test-split samples of each, one family a row (sorted),
    each pixel drawn as scale x scale."""
    from torchvision.utils import save_image
    zoo = load_zoo(folder)
    rows = torch.cat([z.test[:per_family].float() / 255.0 for _, z in sorted(zoo.items())])
    save_image(rows.repeat_interleave(scale, -1).repeat_interleave(scale, -2), str(path), nrow=per_family, padding=0)
    return Path(path)
