"""Safe decoding of uploaded images and the preprocessing that turns any picture into a Fashion-MNIST input.

Uploads are hostile until proven otherwise.  ``load_image`` accepts a file path, raw bytes, a PIL image,
a numpy array or (via ``from_editor``) a Gradio ImageEditor value, and either returns a decoded PIL image
in mode "L" or "RGBA" or raises ``ImageInputError`` with a short message that names the problem.  It never
lets another exception escape, and it never decodes pixels before the size checks pass:

* ``MAX_UPLOAD_BYTES`` (10 MB): files and byte strings are measured before they are read or parsed.
* ``MAX_PIXELS`` (25 megapixels): width x height is read from the header (PIL opens lazily) and checked
  before any pixel is decoded.  PIL's own guard ``Image.MAX_IMAGE_PIXELS`` is set to the same value and
  its ``DecompressionBombWarning`` is turned into an error process-wide, so no other code path in this
  process decodes a bigger image either.
* ``MIN_SIDE`` (8 pixels): an image whose *longer* side is shorter than this (1x1, 5x7) is refused;
  thin strips such as 5000x3 are accepted and come out as a thin line.
* Only raster formats with well-trodden decoders are opened (``ALLOWED_FORMATS``): PNG/APNG, JPEG (and
  MPO, which phones write), GIF, WebP, BMP, TIFF.  EPS (which would run Ghostscript), SVG, PDF, HEIC, ...
  are refused by content sniffing, whatever the file name says.

``preprocess`` then mimics the Fashion-MNIST pipeline (Xiao et al. 2017: trim, resize the longest edge
to 28, extend to a square, center, negate) so that D and the classifier see what they were trained on.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

MAX_UPLOAD_BYTES = 10_000_000  # 10 MB: larger files are refused before they are read
MAX_PIXELS = 25_000_000  # 25 megapixels: larger images are refused from their header, before decoding
MIN_SIDE = 8  # the longer side must have at least this many pixels
ALLOWED_FORMATS = ("PNG", "JPEG", "MPO", "GIF", "WEBP", "BMP", "TIFF")
CONTENT_THRESHOLD = 0.05 * 255  # trim: a pixel is content when it differs from the background by > 5%
FORMAT_MAX_BACKGROUND = 0.25 * 255  # a 28x28 image whose border is darker than this is taken as it is

Image.init()  # register every plugin now: open(formats=...) looks them up and MPO is not preloaded
_OPENABLE = tuple(f for f in ALLOWED_FORMATS if f in Image.OPEN)

# PIL's own decompression-bomb guard at our limit (it raises above 2x, warns above 1x: make that an error too)
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)

_FORMAT_NAMES = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "GIF": "GIF", "WEBP": "WebP", "BMP": "BMP",
                 "TIFF": "TIFF"}
_MIME_TO_FORMAT = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP",
                   "image/bmp": "BMP", "image/tiff": "TIFF"}


class ImageInputError(ValueError):
    """An upload that cannot be used as an image; the message names the problem in a few words."""


@dataclass
class Preprocessed:
    """What D sees: ``tensor`` (1, 1, S, S) in [-1, 1], the same pixels as ``image28`` (PIL "L", S x S)."""

    tensor: torch.Tensor
    image28: Image.Image
    inverted: bool
    notes: list[str] = field(default_factory=list)


# ---- loading ------------------------------------------------------------------------------------
def load_image(src: str | Path | bytes | bytearray | Image.Image | np.ndarray) -> Image.Image:
    """Decode an upload (path, bytes, PIL image or numpy array) into a PIL image in mode "L" or "RGBA".

    Applies the EXIF orientation, takes the first frame of animated GIF/WebP/APNG and multi-page TIFF,
    scales 16-bit, 32-bit integer and float pixels to 8 bits, converts 1-bit to "L" and palette, CMYK,
    YCbCr, RGB and LA images to "RGBA" (alpha is kept: ``preprocess`` flattens it).  What was done is
    listed in ``image.info["notes"]``.  Raises ``ImageInputError`` and nothing else.
    """
    try:
        if isinstance(src, Image.Image):
            return _from_pil(src, notes=[])
        if isinstance(src, np.ndarray):
            return _from_array(src)
        if isinstance(src, (bytes, bytearray, memoryview)):
            return _decode(bytes(src))
        if isinstance(src, (str, Path)):
            return _decode(_read_file(Path(src)))
        raise ImageInputError(f"unsupported input type {type(src).__name__} (pass a file path, bytes, a PIL "
                              f"image or a numpy array)")
    except ImageInputError:
        raise
    except MemoryError:
        raise ImageInputError("image too large to decode in memory") from None
    except Exception as e:  # any decoder failure on a hostile file is the file's fault, not ours
        raise ImageInputError(f"unreadable image ({type(e).__name__})") from None


def from_editor(value: Any) -> Image.Image | None:
    """A Gradio ImageEditor/Sketchpad value (dict with "composite"/"layers"/"background") as a PIL image.

    Uses "composite" when present, otherwise stacks "background" and "layers" itself.  Returns None when
    the value holds no image at all (nothing uploaded or drawn yet); raises ``ImageInputError`` for bad data.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        return load_image(value)
    if value.get("composite") is not None:
        return load_image(value["composite"])
    parts = [value.get("background")] + list(value.get("layers") or [])
    images = [load_image(p).convert("RGBA") for p in parts if p is not None]
    if not images:
        return None
    base = images[0]
    for layer in images[1:]:
        if layer.size != base.size:
            layer = layer.resize(base.size, Image.Resampling.NEAREST)
        base = Image.alpha_composite(base, layer)
    base.info["notes"] = ["stacked the editor's background and layers"]
    return base


def _read_file(path: Path) -> bytes:
    try:
        size = path.stat().st_size
    except OSError:
        raise ImageInputError(f"file not found: {path.name}") from None
    if not path.is_file():
        raise ImageInputError(f"not a file: {path.name}")
    _check_bytes(size)
    with open(path, "rb") as f:
        data = f.read(MAX_UPLOAD_BYTES + 1)  # the file may have grown since stat()
    _check_bytes(len(data))
    return data


def _check_bytes(n: int) -> None:
    if n == 0:
        raise ImageInputError("empty file")
    if n > MAX_UPLOAD_BYTES:
        raise ImageInputError(f"file too large: {n / 1e6:.1f} MB (limit {MAX_UPLOAD_BYTES / 1e6:g} MB)")


def _check_size(w: int, h: int) -> None:
    if w * h > MAX_PIXELS:
        raise ImageInputError(f"image too large: {w}x{h} pixels (limit {MAX_PIXELS / 1e6:g} MP)")
    if max(w, h) < MIN_SIDE:
        raise ImageInputError(f"image too small: {w}x{h} pixels (need at least {MIN_SIDE} pixels on the longer side)")


def sniff(data: bytes) -> str:
    """Best-guess MIME type of a byte string from its magic number (for error messages and format checks)."""
    head = data[:64]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:2] == b"BM":
        return "image/bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "image/avif" if brand in (b"avif", b"avis") else "image/heic" if brand[:3] in (b"hei", b"hev", b"mif") \
            else "video/mp4"
    if head.startswith(b"%PDF"):
        return "application/pdf"
    if head.startswith(b"%!PS") or head.startswith(b"\xc5\xd0\xd3\xc6"):
        return "application/postscript"
    if head.startswith(b"PK\x03\x04"):
        return "application/zip"
    if head.startswith(b"\x1f\x8b"):
        return "application/gzip"
    if head.startswith(b"\x00\x00\x01\x00"):
        return "image/x-icon"
    if head.startswith(b"8BPS"):
        return "image/vnd.adobe.photoshop"
    try:
        text = data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        text = data[:4095].decode("utf-8", errors="ignore") if len(data) > 4096 else ""
    if text and sum(c.isprintable() or c in "\r\n\t" for c in text) >= 0.95 * len(text):
        low = text.lower()
        if "<svg" in low:
            return "image/svg+xml"
        if "<html" in low or "<!doctype html" in low:
            return "text/html"
        return "text/plain"
    return "application/octet-stream"


def _decode(data: bytes) -> Image.Image:
    _check_bytes(len(data))
    mime = sniff(data)
    fmt = _MIME_TO_FORMAT.get(mime)
    if fmt is None:
        if mime.startswith("image/"):
            raise ImageInputError(f"unsupported image type {mime} (use PNG, JPEG, GIF, WebP, BMP or TIFF)")
        raise ImageInputError(f"not an image (file type {mime})")
    name = _FORMAT_NAMES[fmt]
    try:
        im = Image.open(io.BytesIO(data), formats=_OPENABLE)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageInputError(f"image too large: {_header_size(data, mime, str(e))} "
                              f"(limit {MAX_PIXELS / 1e6:g} MP)") from None
    except Exception:
        raise ImageInputError(f"truncated or corrupted {name}") from None
    with im:
        name = _FORMAT_NAMES.get(im.format or "", name)
        _check_size(*im.size)
        notes = [f"decoded {name} {im.size[0]}x{im.size[1]} {im.mode}"]
        try:
            if getattr(im, "is_animated", False):
                notes.append(f"animated {name}: using the first frame")
                im.seek(0)
            try:
                frame = ImageOps.exif_transpose(im)
                orientation = im.getexif().get(0x0112, 1)
                if orientation not in (1, None):
                    notes.append(f"applied EXIF orientation {orientation}")
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise
            except Exception:
                frame = im.copy()  # unreadable EXIF: ignore it (pixel errors surface again here)
                notes.append("ignored unreadable EXIF data")
        except ImageInputError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageInputError(f"image too large: {im.size[0]}x{im.size[1]} pixels "
                                  f"(limit {MAX_PIXELS / 1e6:g} MP)") from None
        except Exception:
            raise ImageInputError(f"truncated or corrupted {name}") from None
    return _from_pil(frame, notes=notes)


def _header_size(data: bytes, mime: str, message: str) -> str:
    """'WxH pixels' from a PNG/GIF/BMP header, else the pixel count in PIL's message (nothing is decoded)."""
    import re
    import struct
    try:
        if mime == "image/png":
            return "%dx%d pixels" % struct.unpack(">II", data[16:24])
        if mime == "image/gif":
            return "%dx%d pixels" % struct.unpack("<HH", data[6:10])
        if mime == "image/bmp":
            w, h = struct.unpack("<ii", data[18:26])
            return f"{w}x{abs(h)} pixels"
    except struct.error:
        pass
    m = re.search(r"\((\d+) pixels\)", message)
    return f"{int(m.group(1)) / 1e6:.0f} MP" if m else "over the pixel limit"


def _from_pil(im: Image.Image, *, notes: list[str]) -> Image.Image:
    """Bring any PIL mode to "L" or "RGBA" (8 bits per channel)."""
    _check_size(*im.size)
    notes = list(notes) or list(im.info.get("notes", []))
    mode = im.mode
    if mode == "L":
        out = im.copy()
    elif mode == "1":
        out = im.convert("L")
        notes.append("1-bit image converted to grayscale")
    elif mode.startswith("I") or mode == "F":
        out = Image.fromarray(_to_uint8(np.asarray(im), notes))
    elif mode in ("RGBA", "LA", "PA", "P", "RGBa", "La"):
        if mode == "La":
            im = im.convert("LA")
        elif mode == "RGBa":
            im = im.convert("RGBA")
        out = im.convert("RGBA")
        if mode == "P" and "transparency" not in im.info:
            notes.append("palette image converted to RGB")
    else:  # RGB, CMYK, YCbCr, LAB, HSV, RGBX, ...
        out = im.convert("RGB").convert("RGBA")
        if mode != "RGB":
            notes.append(f"{mode} converted to RGB")
    out.info = {"notes": notes}
    return out


def _to_uint8(a: np.ndarray, notes: list[str]) -> np.ndarray:
    """Scale one channel of any numeric dtype to uint8 [0, 255] (rules documented in ``_from_array``)."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if a.dtype.kind == "u" and a.dtype.itemsize == 2:
        notes.append("16-bit image scaled to 8 bits")
        return np.round(a.astype(np.float32) / 257.0).astype(np.uint8)
    is_float = a.dtype.kind == "f"
    a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(a.min()), float(a.max())
    if is_float and 0.0 <= lo and hi <= 1.0:
        scaled = a * 255.0
        notes.append("float image in [0, 1] scaled to 8 bits")
    elif is_float and lo >= -1.0 and hi <= 1.0 and lo < 0.0:
        scaled = (a + 1.0) * 127.5
        notes.append("float image in [-1, 1] scaled to 8 bits")
    elif lo >= 0.0 and hi <= 255.0:
        scaled = a
    elif lo >= 0.0 and hi <= 65535.0:
        scaled = a / 257.0
        notes.append("16-bit range scaled to 8 bits")
    else:
        scaled = (a - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(a)
        notes.append(f"values in [{lo:.3g}, {hi:.3g}] stretched to 8 bits")
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def _from_array(arr: np.ndarray) -> Image.Image:
    """numpy (H, W), (H, W, 1), (H, W, 2), (H, W, 3) or (H, W, 4) of any numeric dtype -> "L" or "RGBA".

    uint8 is taken as is, bool as 0/255, uint16 is divided by 257; floats in [0, 1] are scaled by 255,
    in [-1, 1] (this project's tensors) mapped to [0, 255], in [0, 255] rounded; anything else is
    stretched from its min..max.  NaN and infinities become 0.
    """
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (2, 3, 4)):
        raise ImageInputError(f"unsupported array shape {tuple(arr.shape)} (expected (H, W) or (H, W, 1|2|3|4))")
    if arr.dtype.kind not in "biuf":
        raise ImageInputError(f"unsupported array dtype {arr.dtype}")
    h, w = arr.shape[:2]
    _check_size(w, h)
    notes = [f"array {w}x{h}" + (f"x{arr.shape[2]}" if arr.ndim == 3 else "") + f" {arr.dtype}"]
    a8 = _to_uint8(arr, notes)
    img = Image.fromarray(np.ascontiguousarray(a8))  # uint8 (H, W[, 2|3|4]) -> L, LA, RGB or RGBA
    if img.mode != "L":
        img = img.convert("RGBA")
    img.info = {"notes": notes}
    return img


# ---- preprocessing ------------------------------------------------------------------------------
def _flat_gray(img: Image.Image, notes: list[str]) -> np.ndarray:
    """Steps (1) and (2) of ``preprocess``: float grayscale (H, W) in [0, 255] of an "L" or "RGBA" image, its
    transparency flattened onto the background that contrasts with the visible content (noted in notes)."""
    if img.mode != "RGBA":
        return np.asarray(img, dtype=np.float32)
    alpha = np.asarray(img)[:, :, 3].astype(np.float32) / 255.0
    gray = np.asarray(img.convert("RGB").convert("L"), dtype=np.float32)
    if alpha.min() < 1.0:
        if alpha.max() == 0.0:
            raise ImageInputError("image is blank after preprocessing (fully transparent)")
        content = float((gray * alpha).sum() / alpha.sum())  # alpha-weighted brightness of what is visible
        fill = 0.0 if content > 127.5 else 255.0
        gray = alpha * gray + (1.0 - alpha) * fill
        notes.append(f"flattened transparency onto {'black' if fill == 0.0 else 'white'}")
    return gray


def preprocess(img: Image.Image, *, size: int = 28) -> Preprocessed:
    """Turn a loaded image into D's input (1, 1, size, size) in [-1, 1], as Fashion-MNIST was made.

    An image already in Fashion-MNIST's format (``fashion_format``: size x size or a pixel-repeated copy,
    grayscale, light object on a dark background) is taken exactly as it is.  Anything else goes through
    these steps (each one that changes something is recorded in ``notes``):

    1. Flatten transparency: transparent pixels become the background.  The fill is chosen to contrast
       with the opaque content: black under light content, white under dark content (a dark-on-light
       drawing or cut-out photo then goes through step 3 like a photo on white paper).
    2. Grayscale with ITU-R 601 luma (PIL "L", the same weights as ``gan.data.adapt``).
    3. Background and polarity: the background level is the median of the 1-pixel border; content is
       every pixel that differs from it by more than max(5% of full scale, 4 robust sigmas of the border
       noise).  If the content is on average darker than the background (a garment photographed on
       white, a pencil sketch) the image is inverted (``inverted=True``), because Fashion-MNIST has light
       objects on black.  Levels are then stretched so the background maps to 0 and the brightest
       content pixel to 255.
    4. Trim to the bounding box of the content (Fashion-MNIST's "trim edges close to the corner colour").
    5. Resize the longer side to ``size`` with Lanczos (antialiased) resampling, keeping the aspect ratio;
       skipped when the content already has that size, so a Fashion-MNIST image passes through unchanged.
    6. Pad to ``size`` x ``size`` with black, content centered (bounding-box center, as Fashion-MNIST).

    Raises ``ImageInputError("image is blank after preprocessing ...")`` when nothing stands out from
    the background (a uniform image, an empty sketch).
    """
    if img.mode not in ("L", "RGBA"):
        img = load_image(img)
    notes = list(img.info.get("notes", []))
    gray = _flat_gray(img, notes)  # (1) + (2)
    same = fashion_format(gray, size) if img.mode == "L" or _opaque_gray(img) else None
    if same is not None:
        if same.shape != gray.shape:
            notes.append(f"{gray.shape[1]}x{gray.shape[0]} pixel-repeated copy of a {size}x{size} image: read as "
                         f"that image")
        tensor = torch.from_numpy(same).float().div(127.5).sub(1.0).view(1, 1, size, size)
        return Preprocessed(tensor=tensor, image28=Image.fromarray(same), inverted=False, notes=notes)
    # (3) background level, content mask, polarity, levels
    border = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    bg = float(np.median(border))
    noise = 1.4826 * float(np.median(np.abs(border - bg)))
    thr = max(CONTENT_THRESHOLD, 4.0 * noise)
    mask = np.abs(gray - bg) > thr
    if not mask.any():
        raise ImageInputError("image is blank after preprocessing (nothing stands out from the background)")
    inverted = float(gray[mask].mean()) < bg
    signed = (bg - gray) if inverted else (gray - bg)  # content > 0, background 0
    if inverted:
        notes.append(f"inverted: dark object on a light background (background level {bg:.0f})")
    peak = float(signed[mask].max())
    if peak <= 0.0:
        raise ImageInputError("image is blank after preprocessing (nothing stands out from the background)")
    levels = np.clip(signed / peak, 0.0, 1.0) * 255.0
    if bg != 0.0 or peak != 255.0:
        notes.append(f"levels stretched: background {bg:.0f} -> 0, content peak -> 255")
    # (4) trim to content
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    crop = levels[y0:y1, x0:x1]
    h, w = crop.shape
    if (h, w) != gray.shape:
        notes.append(f"cropped to content: {w}x{h} at ({x0}, {y0})")
    # (5) resize the longer side to `size`
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if (nw, nh) != (w, h):
        crop = np.asarray(Image.fromarray(crop.astype(np.float32)).resize((nw, nh), Image.Resampling.LANCZOS))
        notes.append(f"resized {w}x{h} -> {nw}x{nh}")
    small = np.clip(np.round(crop), 0, 255).astype(np.uint8)
    if not small.any():
        raise ImageInputError("image is blank after preprocessing (content vanished when resized)")
    # (6) pad to size x size, centered
    out = np.zeros((size, size), dtype=np.uint8)
    oy, ox = (size - nh + 1) // 2, (size - nw + 1) // 2  # odd margins: one more pixel before, as Fashion-MNIST
    out[oy:oy + nh, ox:ox + nw] = small
    tensor = torch.from_numpy(out).float().div(127.5).sub(1.0).view(1, 1, size, size)  # (1, 1, S, S) in [-1, 1]
    return Preprocessed(tensor=tensor, image28=Image.fromarray(out), inverted=inverted, notes=notes)


def fashion_format(gray: np.ndarray, size: int = 28) -> np.ndarray | None:
    """The (size, size) uint8 image when gray (H, W) already is one in Fashion-MNIST's format, else None.

    That is: size x size, or a pixel-repeated (nearest-neighbour) copy at an integer scale, with a dark
    background (the median of the 1-pixel border at most FORMAT_MAX_BACKGROUND) and a lighter object.  Such an
    image, a data set image or a generator's sample saved as PNG, is what D was trained on, so it is
    taken exactly as it is: no level stretch, trim or resampling that would change its pixels (and the
    traces by which the detector tells generated images).
    """
    h, w = gray.shape
    if h != w or h % size or np.any(gray != np.round(gray)):
        return None
    k = h // size
    small = gray[::k, ::k]
    if k > 1 and not np.array_equal(np.repeat(np.repeat(small, k, 0), k, 1), gray):
        return None
    border = np.concatenate([small[0], small[-1], small[1:-1, 0], small[1:-1, -1]])
    bg = float(np.median(border))
    content = np.abs(small - bg) > CONTENT_THRESHOLD
    if bg > FORMAT_MAX_BACKGROUND or not content.any() or float(small[content].mean()) <= bg:
        return None
    return small.astype(np.uint8)


def _opaque_gray(img: Image.Image) -> bool:
    """An RGBA image that is fully opaque and has no colour (R = G = B everywhere)."""
    a = np.asarray(img)
    return bool((a[:, :, 3] == 255).all() and (a[:, :, 0] == a[:, :, 1]).all() and (a[:, :, 1] == a[:, :, 2]).all())


def load_and_preprocess(src: Any, *, size: int = 28) -> Preprocessed:
    """``preprocess(load_image(src))``, also accepting an ImageEditor dict; raises ``ImageInputError`` only."""
    img = from_editor(src) if isinstance(src, dict) else load_image(src)
    if img is None:
        raise ImageInputError("no image: upload or draw one")
    try:
        return preprocess(img, size=size)
    except ImageInputError:
        raise
    except Exception as e:
        raise ImageInputError(f"could not preprocess the image ({type(e).__name__})") from None
