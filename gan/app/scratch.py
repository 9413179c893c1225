"""Per-request scratch folders for the files the app serves, pruned after an hour.

Gradio copies every file a handler returns into its own cache, and its ``delete_cache`` removes those
copies (the files it tracks in ``Blocks.temp_file_sets``), never the originals the app wrote here: this
module prunes them on the same schedule, ``DELETE_CACHE`` (app.py passes it to ``gr.Blocks``).

``served_dir()`` folders live under ``served_root()``, which the app registers as a Gradio static path:
Gradio serves a file there as it is, without hashing and copying it into its cache (about 1.5 ms of each
/generate call).  Only files the app wrote for a response go there, each in its own fresh folder, never
changed after the handler returns it; they are pruned on the same schedule.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

from PIL import Image

DELETE_CACHE = (900, 3600)  # (every, age) in seconds: Gradio's cached copies and the originals here
_PRUNE = {"last": 0.0}
_PRUNE_LOCK = threading.Lock()


SERVED = "served"  # the scratch root's subfolder for files Gradio serves in place (a static path)


def _root() -> Path:
    return Path(os.environ.get("GAN_APP_SCRATCH", Path(tempfile.gettempdir()) / "gan-app"))


def served_root() -> Path:
    """The folder of served_dir()'s folders; the app registers it with ``gr.set_static_paths``."""
    return _root() / SERVED


def _prune(root: Path, now: float) -> None:
    """Remove the per-request folders under root (and under its served root) older than DELETE_CACHE's age."""
    for old in root.iterdir():
        if old.name == SERVED:
            _prune(old, now)
            continue
        try:
            if now - old.stat().st_mtime > DELETE_CACHE[1]:
                for f in old.iterdir():
                    f.unlink(missing_ok=True)
                old.rmdir()
        except OSError:
            pass  # another request is pruning or using it


def scratch_dir(*, served: bool = False) -> Path:
    """A fresh folder for one request's output files (GAN_APP_SCRATCH, default $TMPDIR/gan-app).

    served: the folder lies under served_root(), whose files Gradio serves without copying them.
    Folders older than an hour are pruned, at most every 15 minutes.  The root must lie under the
    system temp folder or the working directory: Gradio only copies output files from there.
    """
    root = _root()
    parent = root / SERVED if served else root
    parent.mkdir(parents=True, exist_ok=True)
    now = time.time()
    with _PRUNE_LOCK:
        due = now - _PRUNE["last"] > DELETE_CACHE[0]
        if due:
            _PRUNE["last"] = now
    if due:
        _prune(root, now)
    d = parent / uuid.uuid4().hex[:16]
    d.mkdir()
    return d


def served_dir() -> Path:
    """A fresh folder under served_root() for one response's files (see the module's docstring)."""
    return scratch_dir(served=True)


def save_png(image: Image.Image, name: str = "image.png", folder: Path | None = None) -> Path:
    """Write a PIL image as a PNG into a fresh scratch folder; returns its path.

    The app returns such paths instead of PIL images for every image it serves as a file: Gradio
    copies a file into its cache atomically, but writes a PIL output in place under a content hash,
    so two concurrent requests producing the same image (the same seed, the same example) could
    serve a half-written file.
    """
    path = (folder or scratch_dir()) / name
    image.save(path, format="PNG")
    return path


def png_file(image: Image.Image) -> str:
    """A PIL image served as a PNG file path (save_png into a fresh scratch folder)."""
    return str(save_png(image))


def gallery_files(items: list[tuple[Image.Image, str]]) -> list[tuple[str, str]]:
    """Gallery items as (PNG path, caption), all in one scratch folder."""
    if not items:
        return []
    folder = scratch_dir()
    return [(str(save_png(im, f"{i:02d}.png", folder)), cap) for i, (im, cap) in enumerate(items)]
