"""The app's scratch folders: a fresh one per request, and folders older than Gradio's cache age pruned."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from PIL import Image

from gan.app import scratch


def test_old_folders_go_and_fresh_ones_stay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAN_APP_SCRATCH", str(tmp_path))
    monkeypatch.setitem(scratch._PRUNE, "last", 0.0)  # a prune is due
    every, age = scratch.DELETE_CACHE
    old, fresh = tmp_path / "old", tmp_path / "fresh"
    for d in (old, fresh):
        d.mkdir()
        (d / "image.png").write_bytes(b"png")
    then = time.time() - age - 60
    os.utime(old, (then, then))
    new = scratch.scratch_dir()
    assert new.is_dir() and new.parent == tmp_path
    assert not old.exists() and (fresh / "image.png").is_file()
    os.utime(fresh, (then, then))
    scratch.scratch_dir()  # within `every` seconds of the last prune: nothing is pruned
    assert fresh.exists() and every >= 60


def test_each_file_gets_its_own_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAN_APP_SCRATCH", str(tmp_path))
    a, b = scratch.png_file(Image.new("L", (4, 4))), scratch.png_file(Image.new("L", (4, 4)))
    assert a != b and Path(a).is_file() and Path(b).is_file()
    files = scratch.gallery_files([(Image.new("L", (4, 4)), "x"), (Image.new("L", (4, 4)), "y")])
    assert [c for _, c in files] == ["x", "y"] and Path(files[0][0]).parent == Path(files[1][0]).parent
