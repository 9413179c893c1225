"""Shared file rules (gan.fileio): atomic writes, file hashes, the user cache folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from gan.fileio import atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text, cache_dir, sha256_file


def test_atomic_writes_replace_the_file_and_leave_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "eval.json"
    path.write_text("old")
    atomic_write_json(path, {"fid": 1.5})
    assert json.loads(path.read_text()) == {"fid": 1.5} and path.read_text().endswith("}\n")
    atomic_write_json(path, {"a": [1, 2]}, compact=True)
    assert path.read_text() == '{"a":[1,2]}\n'
    assert atomic_write_text(tmp_path / "t.md", "é").read_bytes() == "é".encode()
    assert atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.bin", "eval.json", "t.md"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    path = tmp_path / "generator.safetensors"
    path.write_bytes(b"good")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half")
            assert tmp.name == ".generator.safetensors.tmp" and tmp.parent == tmp_path
            raise RuntimeError("disk full")
    assert path.read_bytes() == b"good" and [p.name for p in tmp_path.iterdir()] == [path.name]
    with pytest.raises(TypeError):
        atomic_write_json(path, {"not json": object()})
    assert path.read_bytes() == b"good" and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000  # larger than one read chunk
    path = atomic_write_bytes(tmp_path / "x", data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert sha256_file(path, chunk_size=7) == hashlib.sha256(data).hexdigest()


def test_cache_dir_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAN_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir("metric_references") == tmp_path / "mine" / "metric_references"
    monkeypatch.delenv("GAN_CACHE_DIR")
    assert cache_dir() == tmp_path / "xdg" / "fashion-gan"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir("x") == tmp_path / "home" / ".cache" / "fashion-gan" / "x"
