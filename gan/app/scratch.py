"""Per-request scratch folders for the files the app serves, pruned after an hour.

Gradio copies every file a handler returns into its own cache, and its ``delete_cache`` removes those
copies (the files it tracks in ``Blocks.temp_file_sets``), never the originals the app wrote here: this
module prunes them on the same schedule, ``DELETE_CACHE`` (app.py passes it to ``gr.Blocks``).
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


def scratch_dir() -> Path:
    """A fresh folder for one request's output files (GAN_APP_SCRATCH, default $TMPDIR/gan-app).

    Folders older than an hour are pruned, at most every 15 minutes.  The root must lie under the
    system temp folder or the working directory: Gradio only copies output files from there.
    """
    root = Path(os.environ.get("GAN_APP_SCRATCH", Path(tempfile.gettempdir()) / "gan-app"))
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    with _PRUNE_LOCK:
        due = now - _PRUNE["last"] > DELETE_CACHE[0]
        if due:
            _PRUNE["last"] = now
    if due:
        for old in root.iterdir():
            try:
                if now - old.stat().st_mtime > DELETE_CACHE[1]:
                    for f in old.iterdir():
                        f.unlink(missing_ok=True)
                    old.rmdir()
            except OSError:
                pass  # another request is pruning or using it
    d = root / uuid.uuid4().hex[:16]
    d.mkdir()
    return d


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
