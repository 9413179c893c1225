"""The app's one path from an upload (file path, drawing, array) to what D sees, via gan.images.

Every tab that takes a picture (Score, Project, an Interpolate endpoint) goes through
``preprocess_upload`` / ``preprocess_uploads``: gan.images does the hardened decoding (size and format
checks before any pixel is decoded) and the Fashion-MNIST preprocessing; errors name the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..images import ImageInputError, Preprocessed, load_and_preprocess


def input_name(src: Any, i: int, names: list[str] | None) -> str:
    """Display name of the i-th input: the given name, else the file name, else 'image i+1'."""
    if names and i < len(names):
        return names[i]
    if isinstance(src, (str, Path)):
        return Path(src).name
    return f"image {i + 1}"


def preprocess_uploads(inputs: list[Any], names: list[str] | None = None
                       ) -> tuple[list[tuple[str, Preprocessed]], list[tuple[str, str]]]:
    """Preprocess each input; returns ([(name, Preprocessed)], [(name, why it failed)]), never raises."""
    ok: list[tuple[str, Preprocessed]] = []
    failed: list[tuple[str, str]] = []
    for i, src in enumerate(inputs):
        name = input_name(src, i, names)
        try:
            ok.append((name, load_and_preprocess(src)))
        except ImageInputError as e:
            failed.append((name, str(e)))
    return ok, failed


def preprocess_upload(src: Any, name: str | None = None) -> Preprocessed:
    """One input as D sees it, or ImageInputError naming the file and its problem."""
    ok, failed = preprocess_uploads([src], [name] if name else None)
    if failed:
        raise ImageInputError("; ".join(f"{n}: {m}" for n, m in failed))
    return ok[0][1]
