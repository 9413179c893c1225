"""The Score tab's example images (assets/examples/*.png): where they are, their captions, and how they are made.

    python -m gan.app write-examples [MODEL_DIR] [--out assets/examples] [--data-dir DIR]   # (gan.app.cli)
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from .. import latent as L
from ..pretrained import GAN


# assets/examples/ in a checkout; an installed package carries them as gan/examples/
_CHECKOUT_EXAMPLES = Path(__file__).resolve().parents[2] / "assets" / "examples"
EXAMPLES_DIR = (_CHECKOUT_EXAMPLES if _CHECKOUT_EXAMPLES.is_dir()
                else Path(__file__).resolve().parents[1] / "examples")


def example_images() -> list[str]:
    """Paths of the bundled example images (assets/examples/*.png), sorted."""
    return sorted(str(p) for p in EXAMPLES_DIR.glob("*.png")) if EXAMPLES_DIR.is_dir() else []


def example_gallery() -> list[tuple[str, str]]:
    """(path, caption) of the example images, captioned from their file names."""
    items = []
    for p in example_images():
        stem = Path(p).stem
        kind = stem.split("_", 1)[0]
        what = re.sub(r"_(test\d+|seed\d+|zoo\d+)$", "", stem.split("_", 1)[1] if "_" in stem else stem).replace("_", " ")
        caption = {"real": f"real: {what}", "generated": f"generated: {what}",
                   "photo": f"photo-like: {what.removeprefix('like ')}", "not": "not a garment",
                   "other": f"another GAN: {what.removeprefix('gan ')}"}.get(kind, stem)
        items.append((p, caption))
    return items


def write_examples(folder: str | Path, model: GAN, *, data_dir: str | None = None) -> list[Path]:
    """Small PNGs for the Score tab: real test images, generated ones, a dark-on-light 'photo', an odd one."""
    from ..data import FASHION_MNIST_CLASSES, load_dataset
    from ..latent import slug
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    test = load_dataset("fashion-mnist", split="test", data_dir=data_dir)
    written = []
    for c in (0, 3, 7, 8):  # T-shirt/top, Dress, Sneaker, Bag: first test image of each
        i = int((test.labels == c).nonzero()[0])
        p = folder / f"real_{slug(FASHION_MNIST_CLASSES[c])}_test{i}.png"
        Image.fromarray(test.images[i, 0].numpy()).save(p)
        written.append(p)
    labels = [1, 4, 5, 9] if model.num_classes else None  # Trouser, Coat, Sandal, Ankle boot
    x = model.generate(4, seed=2024, labels=labels)
    for j in range(4):
        tag = slug(model.class_names[labels[j]]) if labels else str(j)
        p = folder / f"generated_{tag}_seed2024.png"
        L.to_pil(x[j], 1).save(p)
        written.append(p)
    # a real garment as a photo would show it: dark object on a light, larger canvas
    i = int((test.labels == 9).nonzero()[1])
    dark = Image.fromarray(255 - test.images[i, 0].numpy()).resize((112, 112), Image.Resampling.LANCZOS)
    canvas = Image.new("L", (160, 128), 245)
    canvas.paste(dark, (30, 8))
    p = folder / f"photo_like_ankle_boot_on_white_test{i}.png"
    canvas.save(p)
    written.append(p)
    # something that is not a garment at all: the OOD check should flag it
    yy, xx = np.mgrid[0:28, 0:28]
    checker = (((yy // 4) + (xx // 4)) % 2 * 255).astype(np.uint8)
    p = folder / "not_fashion_checkerboard.png"
    Image.fromarray(checker).save(p)
    written.append(p)
    return written + _other_generators(folder)


OTHER_EXAMPLES = ("mlp-gan", "dcgan-convT", "wgan-gp")  # zoo families shown as "another GAN" examples


def _other_generators(folder: Path) -> list[Path]:
    """The first test-split sample of a few zoo families (gan.zoo), when the checkout has the zoo's samples."""
    from ..zoo import ZooMissing, load_zoo
    try:
        zoo = load_zoo(families=list(OTHER_EXAMPLES))
    except (ZooMissing, ValueError):
        return []
    out = []
    for name in OTHER_EXAMPLES:
        p = folder / f"other_gan_{name.replace('-', '_').lower()}_zoo0.png"
        Image.fromarray(zoo[name].test[0, 0].numpy()).save(p)
        out.append(p)
    return out
