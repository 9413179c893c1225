"""The Project tab's example images: real test garments and a photo-like product shot (assets/examples/).

    from gan.app.project_examples import write_product_shot
    write_product_shot("assets/examples")      # the JPEG product shot, made from a real test pullover
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .examples import EXAMPLES_DIR

PRODUCT_SHOT_CLASS = 2  # Pullover
PRODUCT_SHOT_QUALITY = 85


def project_examples() -> list[tuple[str, str]]:
    """(path, caption) of the Project tab's examples: the real test garments, then the photo-like shots."""
    if not EXAMPLES_DIR.is_dir():
        return []
    real = sorted(EXAMPLES_DIR.glob("real_*.png"))
    photo = sorted([*EXAMPLES_DIR.glob("photo_*.png"), *EXAMPLES_DIR.glob("photo_*.jpg")])
    out = []
    for p in [*real, *photo]:
        words = p.stem.rsplit("_test", 1)[0].split("_", 1)
        kind, what = words[0], (words[1] if len(words) > 1 else "").replace("_", " ")
        caption = f"real: {what}" if kind == "real" else f"photo-like: {what.removeprefix('like ')}"
        out.append((str(p), caption))
    return out


def write_product_shot(folder: str | Path, *, data_dir: str | None = None) -> Path:
    """A real test pullover as a product photo: dark on a light, grainy page, tinted, tilted, saved as JPEG."""
    from PIL import Image

    from ..data import load_dataset
    from ..scoring.roundtrip import PhotoParams, photo_image
    test = load_dataset("fashion-mnist", split="test", data_dir=data_dir, download=False)
    i = int((test.labels == PRODUCT_SHOT_CLASS).nonzero()[2])
    p = PhotoParams(size=180, resample=int(Image.Resampling.BICUBIC), page=238.0, ink=25.0, tint=(1.06, 1.0, 0.9),
                    angle=-4.0, pad=(40, 24, 56, 30), noise=2.0, quality=PRODUCT_SHOT_QUALITY)
    im = photo_image(test.images[i, 0].numpy(), p, np.random.default_rng(0))
    out = Path(folder) / f"photo_like_pullover_product_shot_test{i}.jpg"
    im.save(out, format="JPEG", quality=PRODUCT_SHOT_QUALITY)
    return out
