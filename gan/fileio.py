"""File rules shared by every writer: atomic writes, SHA-256 of files, and the user cache folder.

An atomic write goes to a hidden temp file in the target's folder (``.NAME.tmp``), is fsync'ed, then
renamed over the target with ``os.replace``, and the folder is fsync'ed: a crash leaves either the old
file or the new one, never a torn one.  The temp name is fixed per target, so a crashed write leaves at
most one stale temp file, which the next write replaces.

    atomic_write_json(folder / "eval.json", results)
    with atomic_path(folder / "generator.safetensors") as tmp:   # for writers that want a path
        save_file(state, str(tmp))
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CACHE_ENV = "GAN_CACHE_DIR"
CACHE_NAME = "fashion-gan"


def temp_path(path: str | Path) -> Path:
    """The temp file an atomic write of path goes through: .NAME.tmp in the same folder."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path to write; on success it is fsync'ed and renamed over path, on error removed."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write data to path atomically (temp file in the same folder, fsync, rename); return path."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return path


def atomic_write_text(path: str | Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write text to path atomically; return path."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 2, compact: bool = False) -> Path:
    """Write obj as JSON (a trailing newline; compact=True drops the spaces) to path atomically; return path."""
    text = json.dumps(obj, separators=(",", ":")) if compact else json.dumps(obj, indent=indent)
    return atomic_write_text(path, text + "\n")


def sha256_file(path: str | Path, *, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            h.update(block)
    return h.hexdigest()


def cache_dir(*parts: str) -> Path:
    """A folder under the user cache: $GAN_CACHE_DIR, else $XDG_CACHE_HOME/fashion-gan, else ~/.cache/fashion-gan."""
    root = os.environ.get(CACHE_ENV)
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = str(Path(xdg) / CACHE_NAME) if xdg else str(Path("~/.cache").expanduser() / CACHE_NAME)
    return Path(root).expanduser().joinpath(*parts)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: str | Path) -> None:
    """fsync a folder so a rename in it survives a power loss (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
