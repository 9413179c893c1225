"""Training checkpoints: atomic, integrity-checked, loadable without unpickling arbitrary code.

File layout: 8-byte magic, 32-byte SHA-256 of the payload, then the payload (a ``torch.save`` zip of
tensors, numbers, strings, lists and dicts only).  Loading verifies the hash and uses
``torch.load(weights_only=True)``, so a truncated, corrupted or malicious file is refused with a clear
message.  Writes go to a temp file that is fsync'ed and then renamed over the target, so a crash
mid-write leaves the previous checkpoint intact.  The last ``keep`` checkpoints are kept.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import torch

from .fileio import atomic_write_bytes

MAGIC = b"GANCKPT1"
_NAME = re.compile(r"^ckpt-(\d{8})\.pt$")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, corrupted or not ours."""


def save_checkpoint(state: dict, folder: str | Path, step: int, *, keep: int = 2) -> Path:
    """Atomically write state to folder/ckpt-{step}.pt and prune all but the newest `keep`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    path = atomic_write_bytes(folder / f"ckpt-{step:08d}.pt", MAGIC + hashlib.sha256(payload).digest() + payload)
    for stale in folder.glob(".ckpt-*.pt.tmp"):  # left by a process killed mid-write
        stale.unlink(missing_ok=True)
    for old in list_checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Checkpoint files in folder, oldest first (temp files are ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Verify and load one checkpoint; raise CheckpointError naming the file on any problem."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from None
    if len(data) < 40 or data[:8] != MAGIC:
        raise CheckpointError(f"{path} is not a gan training checkpoint (bad header; truncated or foreign file)")
    digest, payload = data[8:40], data[40:]
    if hashlib.sha256(payload).digest() != digest:
        raise CheckpointError(f"{path} is corrupted or truncated (checksum mismatch)")
    try:
        return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path} could not be loaded safely: {type(e).__name__}: {str(e)[:200]}") from None


def load_latest(folder: str | Path, map_location: str | torch.device = "cpu") -> tuple[dict, Path] | None:
    """Newest loadable checkpoint in folder, falling back to older ones with a warning; None if none exist."""
    errors = []
    for path in reversed(list_checkpoints(folder)):
        try:
            return load_checkpoint(path, map_location), path
        except CheckpointError as e:
            print(f"warning: {e}; trying the previous checkpoint")
            errors.append(str(e))
    if errors:
        raise CheckpointError("no usable checkpoint: " + " | ".join(errors))
    return None

