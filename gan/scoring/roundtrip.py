"""What happens to a 28x28 image on its way to the Score tab, in one place.

The critic's training augmentation (``gan.scoring.refine``) and ``benchmarks/critic.py`` both use these
functions, so the critic is trained on exactly the round trips it is measured on:

* ``upload``: the image saved as a PNG, possibly upscaled (``/generate`` serves 224x224 nearest-neighbour
  PNGs), then the app's own preprocessing (``gan.images.preprocess``: trim to content, resize the longer
  side to 28, pad, stretch levels).  PNG is lossless, so the PNG bytes are skipped.
* ``photo``: a photo-like round trip: the garment dark on a light, slightly noisy page, upscaled, tinted,
  rotated by a few degrees, padded onto a larger canvas, saved as JPEG (quality 70..90), decoded with the
  app's upload decoder and preprocessed like any upload.

    x_rt = round_trip(x, "photo", seed=0)        # x (B, 1, 28, 28) in [-1, 1] -> the same shape and range
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from PIL import Image

from ..images import ImageInputError, load_and_preprocess, preprocess

Mode = Literal["clean", "upload", "photo"]
MODES: tuple[str, ...] = ("clean", "upload", "photo")
JPEG_QUALITY = (70, 90)  # inclusive range of the photo round trip's JPEG quality
MAX_ANGLE = 8.0  # degrees
UPLOAD_SCALES = (1, 2, 4, 8)  # nearest-neighbour upscales of a plain upload (8: what /generate serves)


@dataclass(frozen=True)
class PhotoParams:
    """One draw of the photo-like round trip's random choices."""

    size: int  # longer side of the upscaled garment, pixels
    resample: int  # PIL resampling filter of the upscale
    page: float  # background (page) brightness, 0..255
    ink: float  # brightness of the darkest garment pixel
    tint: tuple[float, float, float]  # per-channel gain (colour cast)
    angle: float  # rotation, degrees
    pad: tuple[int, int, int, int]  # left, top, right, bottom margins, pixels
    noise: float  # std of the page's Gaussian grain
    quality: int  # JPEG quality


def sample_photo_params(rng: np.random.Generator) -> PhotoParams:
    """Random photo-round-trip parameters (upscale 56..224 px, tint +-12%, rotation +-8 deg, JPEG 70..90)."""
    size = int(rng.integers(56, 225))
    pad = tuple(int(v) for v in rng.integers(0, max(2, size // 3), size=4))
    return PhotoParams(
        size=size, resample=int(rng.choice([Image.Resampling.BILINEAR, Image.Resampling.BICUBIC,
                                            Image.Resampling.LANCZOS])),
        page=float(rng.uniform(200.0, 250.0)), ink=float(rng.uniform(0.0, 50.0)),
        tint=tuple(float(v) for v in 1.0 + rng.uniform(-0.12, 0.12, size=3)),  # type: ignore[arg-type]
        angle=float(rng.uniform(-MAX_ANGLE, MAX_ANGLE)), pad=pad, noise=float(rng.uniform(0.0, 3.0)),
        quality=int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)))


def photo_image(img: np.ndarray, p: PhotoParams, rng: np.random.Generator | None = None) -> Image.Image:
    """A grayscale uint8 image (H, W) (0 = black background) as a photo-like RGB picture (before JPEG)."""
    g = img.astype(np.float32) / 255.0  # 1 = garment, 0 = background
    dark = p.page - g * (p.page - p.ink)  # dark garment on a light page
    h, w = g.shape
    bw, bh = max(1, round(w * p.size / max(h, w))), max(1, round(h * p.size / max(h, w)))  # longer side p.size
    big = Image.fromarray(dark.astype(np.float32), mode="F").resize((bw, bh), p.resample)
    page = np.full((bh + p.pad[1] + p.pad[3], bw + p.pad[0] + p.pad[2]), p.page, np.float32)
    page[p.pad[1]:p.pad[1] + bh, p.pad[0]:p.pad[0] + bw] = np.asarray(big)
    if p.noise > 0:
        rng = rng or np.random.default_rng(0)
        page += rng.normal(0.0, p.noise, page.shape).astype(np.float32)
    gray = Image.fromarray(np.clip(np.round(page), 0, 255).astype(np.uint8))
    gray = gray.rotate(p.angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=int(round(p.page)))
    rgb = np.asarray(gray, np.float32)[..., None] * np.asarray(p.tint, np.float32)
    return Image.fromarray(np.clip(np.round(rgb), 0, 255).astype(np.uint8), mode="RGB")


def photo_jpeg(img: np.ndarray, rng: np.random.Generator) -> bytes:
    """The photo-like round trip of one grayscale uint8 image (H, W), as the JPEG bytes a user would upload."""
    p = sample_photo_params(rng)
    buf = io.BytesIO()
    photo_image(img, p, rng).save(buf, format="JPEG", quality=p.quality)
    return buf.getvalue()


def upload_image(img28: np.ndarray, scale: int) -> Image.Image:
    """A 28x28 uint8 image as a PNG upload would decode: grayscale, upscaled `scale` times (nearest)."""
    im = Image.fromarray(img28)
    return im if scale == 1 else im.resize((28 * scale, 28 * scale), Image.Resampling.NEAREST)


def _one(img28: np.ndarray, mode: str, rng: np.random.Generator) -> np.ndarray | None:
    """One image through a round trip and the app's preprocessing: (28, 28) float in [-1, 1], or None if blank."""
    try:
        if mode == "photo":
            pre = load_and_preprocess(photo_jpeg(img28, rng))
        else:
            pre = preprocess(upload_image(img28, int(rng.choice(UPLOAD_SCALES))))
    except ImageInputError:  # e.g. an all-black sample: nothing stands out from the background
        return None
    return pre.tensor[0, 0].numpy()


def round_trip(x: torch.Tensor, mode: Mode | str, *, seed: int = 0) -> torch.Tensor:
    """Images x (B, 1, 28, 28) in [-1, 1] after a round trip ("clean": unchanged), the same shape and range.

    An image that the app would refuse as blank after the round trip is passed through unchanged.
    """
    if mode not in MODES:
        raise ValueError(f"round-trip mode {mode!r} is not one of {', '.join(MODES)}")
    if x.dim() != 4 or x.shape[1:] != (1, 28, 28):
        raise ValueError(f"x has shape {tuple(x.shape)}; round trips take (B, 1, 28, 28) images in [-1, 1]")
    if mode == "clean":
        return x.clone()
    rng = np.random.default_rng(seed)
    u8 = x.detach().cpu().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)[:, 0].numpy()
    out = x.detach().cpu().clone()
    for i in range(len(u8)):
        y = _one(u8[i], mode, rng)
        if y is not None:
            out[i, 0] = torch.from_numpy(y)
    return out
