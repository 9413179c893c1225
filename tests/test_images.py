"""Hostile and odd uploads: each one gives a valid D input or a clean ImageInputError, never another exception."""

from __future__ import annotations

import gc
import io
import struct
import tracemalloc
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan import images as gi
from gan.images import ImageInputError, from_editor, load_and_preprocess, load_image, preprocess


def png_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **kw)
    return buf.getvalue()


def jpeg_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, **kw)
    return buf.getvalue()


def garment_on_white(w: int = 120, h: int = 160) -> Image.Image:
    """A photo-like dark object (a T-shirt-ish blob with texture) on a slightly noisy white background."""
    rng = np.random.default_rng(0)
    a = 245 + rng.normal(0, 2, (h, w))
    yy, xx = np.mgrid[0:h, 0:w]
    body = (abs(xx - w / 2) < w * 0.25) & (yy > h * 0.2) & (yy < h * 0.85)
    sleeves = (abs(xx - w / 2) < w * 0.4) & (yy > h * 0.2) & (yy < h * 0.4)
    a[body | sleeves] = 60 + 20 * np.sin(xx[body | sleeves] / 3)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).convert("RGB")


def bomb_png(w: int, h: int) -> bytes:
    """A valid 1-bit w x h PNG of zeros, compressed row block by row block (a few KB, no big allocation)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    row = b"\x00" + bytes((w + 7) // 8)
    comp, idat = zlib.compressobj(9), []
    for start in range(0, h, 1000):
        idat.append(comp.compress(row * min(1000, h - start)))
    idat.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(idat)) + chunk(b"IEND", b"")


def check_ok(src) -> gi.Preprocessed:
    p = load_and_preprocess(src)
    assert p.tensor.shape == (1, 1, 28, 28) and p.tensor.dtype == torch.float32
    assert p.tensor.min() >= -1 and p.tensor.max() <= 1 and torch.isfinite(p.tensor).all()
    assert p.image28.mode == "L" and p.image28.size == (28, 28)
    assert torch.equal(torch.from_numpy(np.array(p.image28)).float().div(127.5).sub(1).view(1, 1, 28, 28), p.tensor)
    return p


def check_error(src, match: str) -> ImageInputError:
    with pytest.raises(ImageInputError, match=match) as e:
        load_and_preprocess(src)
    assert len(str(e.value)) < 120, str(e.value)
    return e.value


# ---- hostile files ----------------------------------------------------------------------------
def test_text_file_named_png(tmp_path: Path):
    f = tmp_path / "photo.png"
    f.write_text("hello, this is not an image\n")
    check_error(f, r"^not an image \(file type text/plain\)$")


def test_other_non_images_are_named(tmp_path: Path):
    check_error(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", r"not an image \(file type application/pdf\)")
    check_error(b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>',
                r"unsupported image type image/svg\+xml")
    check_error(bytes(range(256)) * 10, r"not an image \(file type application/octet-stream\)")
    check_error(b"%!PS-Adobe-3.0 EPSF-3.0\n", r"application/postscript")  # EPS would run Ghostscript


def test_empty_file(tmp_path: Path):
    f = tmp_path / "empty.png"
    f.write_bytes(b"")
    check_error(f, r"^empty file$")
    check_error(b"", r"^empty file$")


def test_missing_file(tmp_path: Path):
    check_error(tmp_path / "nope.png", r"file not found: nope.png")
    check_error(tmp_path, r"not a file")


def test_truncated_png(tmp_path: Path):
    data = png_bytes(garment_on_white())
    for cut in (len(data) // 2, 40, 20):  # mid-IDAT, inside IHDR's chunk, inside the signature + IHDR
        f = tmp_path / f"cut{cut}.png"
        f.write_bytes(data[:cut])
        check_error(f, r"^truncated or corrupted PNG$")


def test_corrupted_png_bytes():
    data = bytearray(png_bytes(garment_on_white()))
    data[29] ^= 0xFF  # break the IHDR chunk's CRC
    check_error(bytes(data), r"^truncated or corrupted PNG$")


def test_truncated_jpeg(tmp_path: Path):
    data = jpeg_bytes(garment_on_white())
    f = tmp_path / "cut.jpg"
    f.write_bytes(data[: len(data) // 2])
    check_error(f, r"^truncated or corrupted JPEG$")


def test_decompression_bomb(tmp_path: Path):
    data = bomb_png(20000, 20000)
    assert len(data) < 200_000  # the attack: a tiny file that would decode to 400 MP
    f = tmp_path / "bomb.png"
    f.write_bytes(data)
    check_error(f, r"^image too large: 20000x20000 pixels \(limit 25 MP\)$")


@pytest.mark.parametrize("action", ["error", "ignore"])  # "error" is what importing gan.images sets
def test_image_just_over_the_pixel_limit_is_refused_from_its_header(action: str):
    # 30 MP: between PIL's warning (1x) and error (2x) thresholds; refused either way
    with warnings.catch_warnings():
        warnings.simplefilter(action, Image.DecompressionBombWarning)
        check_error(bomb_png(6000, 5000), r"^image too large: 6000x5000 pixels \(limit 25 MP\)$")


def test_file_over_the_size_limit(tmp_path: Path):
    f = tmp_path / "huge.png"
    f.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(gi.MAX_UPLOAD_BYTES))
    check_error(f, r"^file too large: 10\.0 MB \(limit 10 MB\)$")
    check_error(f.read_bytes() + bytes(2_300_000), r"^file too large: 12\.3 MB \(limit 10 MB\)$")


def test_unsupported_input_type():
    check_error(12345, r"unsupported input type int")
    check_error(np.zeros((4, 4, 5), np.uint8), r"unsupported array shape \(4, 4, 5\)")


# ---- odd but valid images ---------------------------------------------------------------------
def test_1x1_image_is_refused_as_too_small():
    check_error(png_bytes(Image.new("L", (1, 1), 200)), r"^image too small: 1x1 pixels \(need at least 8")
    check_error(np.zeros((7, 5), np.uint8), r"image too small: 5x7 pixels")


def test_uniform_image_is_blank():
    check_error(png_bytes(Image.new("RGB", (64, 64), (30, 120, 200))), r"^image is blank after preprocessing")
    check_error(np.full((28, 28), 255, np.uint8), r"blank")


def test_5000x3_strip():
    a = np.zeros((3, 5000), np.uint8)
    a[1, 100:4900] = 200
    p = check_ok(png_bytes(Image.fromarray(a)))
    rows = np.flatnonzero(np.asarray(p.image28).any(1))
    assert len(rows) == 1  # a thin horizontal line
    assert np.asarray(p.image28)[rows[0]].astype(bool).sum() >= 26


def test_odd_sizes():
    for w, h in [(8, 8), (9, 300), (301, 17), (640, 480), (29, 27)]:
        a = np.zeros((h, w), np.uint8)
        a[h // 4: max(h // 4 + 1, 3 * h // 4), w // 4: max(w // 4 + 1, 3 * w // 4)] = 255
        p = check_ok(png_bytes(Image.fromarray(a)))
        box = np.asarray(p.image28) > 0
        assert max(box.any(0).sum(), box.any(1).sum()) == 28  # the content fills the frame's longer side


def test_animated_gif_uses_first_frame():
    frames = []
    for x0 in (2, 40):  # a square on the left, then on the right
        f = Image.new("L", (64, 64), 0)
        f.paste(255, (x0, 10, x0 + 20, 50))
        frames.append(f.convert("P"))
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    img = load_image(buf.getvalue())
    assert any("first frame" in n for n in img.info["notes"])
    a = np.asarray(img.convert("L"))
    assert a[30, 10] > 200 and a[30, 50] < 50
    check_ok(buf.getvalue())


def test_16bit_png_is_scaled_not_clipped():
    a = np.zeros((32, 32), np.uint16)
    a[8:24, 8:24] = 65535
    a[12:20, 12:20] = 32896  # = 128 * 257
    data = png_bytes(Image.fromarray(a))
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    img = load_image(data)
    assert img.mode == "L"
    b = np.asarray(img)
    assert b[10, 10] == 255 and b[16, 16] == 128 and b[0, 0] == 0
    check_ok(data)


def test_cmyk_jpeg():
    rgb = garment_on_white()
    data = jpeg_bytes(rgb.convert("CMYK"))
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    img = load_image(data)
    assert img.mode == "RGBA"
    assert np.abs(np.asarray(img.convert("L"), float) - np.asarray(rgb.convert("L"), float)).mean() < 8
    assert check_ok(data).inverted


def test_rgba_png_with_transparency_keeps_the_object():
    # a dark object opaque on a fully transparent background whose hidden colour is also black: a naive
    # convert("L") would give black on black (blank); flattening must make the background contrast
    a = np.zeros((60, 40, 4), np.uint8)
    a[10:50, 10:30] = (40, 40, 40, 255)
    data = png_bytes(Image.fromarray(a))
    p = check_ok(data)
    assert p.inverted  # dark object -> flattened onto white -> inverted to light-on-black
    assert any("transparency onto white" in n for n in p.notes)
    out = np.asarray(p.image28)
    assert out[0, 0] == 0 and out[14, 14] == 255


def test_light_object_on_transparency_is_not_inverted():
    a = np.zeros((60, 40, 4), np.uint8)
    a[10:50, 10:30] = (230, 230, 230, 255)
    p = check_ok(Image.fromarray(a))
    assert not p.inverted and np.asarray(p.image28)[14, 14] == 255 and np.asarray(p.image28)[0, 0] == 0


def test_fully_transparent_is_blank():
    check_error(np.zeros((30, 30, 4), np.uint8), r"blank after preprocessing \(fully transparent\)")


def test_palette_png_with_transparency():
    p_img = Image.new("P", (50, 50), 0)
    p_img.putpalette([255, 255, 255, 20, 20, 20] + [0, 0, 0] * 254)
    p_img.paste(1, (10, 5, 40, 45))
    data = png_bytes(p_img, transparency=0)
    assert "transparency" in Image.open(io.BytesIO(data)).info
    img = load_image(data)
    assert img.mode == "RGBA" and np.asarray(img)[0, 0, 3] == 0
    p = check_ok(data)
    assert np.asarray(p.image28)[14, 14] == 255 and np.asarray(p.image28)[0, 0] == 0


def test_one_bit_and_float_tiff(tmp_path: Path):
    one = Image.new("1", (40, 40), 1)
    one.paste(0, (10, 5, 30, 35))
    p = check_ok(png_bytes(one))
    assert p.inverted  # black shape on white
    f = np.zeros((40, 40), np.float32)
    f[5:35, 10:30] = 0.8
    f[0, 0] = np.nan
    path = tmp_path / "float.tif"
    Image.fromarray(f).save(path)
    assert Image.open(path).mode == "F"
    img = load_image(path)
    assert img.mode == "L" and np.asarray(img)[20, 20] == 204
    check_ok(path)


def test_exif_orientation_6_rotates(tmp_path: Path):
    im = Image.new("L", (60, 100), 255)  # a tall dark bar on white, stored upright...
    im.paste(0, (20, 10, 40, 90))
    exif = Image.Exif()
    exif[0x0112] = 6  # ...but tagged "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    im.save(path, "JPEG", exif=exif)
    img = load_image(path)
    assert img.size == (100, 60)
    assert any("EXIF orientation 6" in n for n in img.info["notes"])
    box = np.asarray(check_ok(path).image28) > 64
    assert box.any(0).sum() > 2 * box.any(1).sum()  # the tall bar became wide


def test_numpy_and_pil_inputs_as_gradio_sends_them():
    rgb = np.asarray(garment_on_white())  # gr.Image(type="numpy"): (H, W, 3) uint8
    assert check_ok(rgb).inverted
    assert check_ok(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])).inverted  # RGBA
    assert check_ok(garment_on_white()).inverted  # type="pil"
    assert check_ok(garment_on_white().convert("YCbCr")).inverted
    t = np.where(np.asarray(garment_on_white().convert("L")) > 128, -1.0, 1.0).astype(np.float32)  # [-1, 1]
    assert not check_ok(t).inverted


def test_editor_value():
    assert from_editor(None) is None
    assert from_editor({"background": None, "layers": [], "composite": None}) is None
    bg = np.full((80, 80, 4), 255, np.uint8)  # white canvas
    layer = np.zeros((80, 80, 4), np.uint8)  # a black stroke on a transparent layer
    layer[20:60, 35:45] = (0, 0, 0, 255)
    p = check_ok({"background": bg, "layers": [layer], "composite": None})
    assert p.inverted and np.asarray(p.image28).max() == 255
    composite = bg.copy()
    composite[20:60, 35:45] = (0, 0, 0, 255)
    q = check_ok({"background": bg, "layers": [layer], "composite": composite})
    assert np.array_equal(np.asarray(p.image28), np.asarray(q.image28))
    check_error({"background": bg, "layers": [], "composite": bg}, r"blank")  # nothing drawn yet
    check_error({"background": None, "layers": [], "composite": None}, r"no image")


# ---- inversion detection and fidelity to Fashion-MNIST ---------------------------------------
def test_white_background_photo_is_inverted():
    p = check_ok(jpeg_bytes(garment_on_white()))
    assert p.inverted
    out = np.asarray(p.image28)
    assert out[:, 0].max() < 30 and out[:, -1].max() < 30  # dark margins beside the (taller) garment
    assert out[14, 14] > 150  # the (dark) garment became light
    assert (out > 0).any(1).sum() == 28  # the taller side fills the frame


def test_fashion_mnist_images_pass_through_unchanged():
    """A data set image, and a pixel-repeated or RGB copy of it, is read exactly as it is."""
    from gan.data import load_dataset
    test = load_dataset("fashion-mnist", split="test", download=False).images[:200, 0].numpy()
    for i, a in enumerate(test):
        im = Image.fromarray(a)
        if i % 3 == 1:
            im = im.resize((28 * (2 + i % 7), 28 * (2 + i % 7)), Image.Resampling.NEAREST)
        if i % 3 == 2:
            im = im.convert("RGB")
        p = preprocess(load_image(png_bytes(im)))
        assert not p.inverted
        assert np.array_equal(np.asarray(p.image28), a), (i, p.notes)


def test_near_copies_of_the_format_still_go_through_the_pipeline():
    """Not quite the format: a smoothly upscaled copy, a tinted copy or a light background is processed."""
    from gan.data import load_dataset
    a = load_dataset("fashion-mnist", split="test", download=False).images[0, 0].numpy()
    smooth = preprocess(load_image(png_bytes(Image.fromarray(a).resize((56, 56), Image.Resampling.BILINEAR))))
    assert any("resized" in n for n in smooth.notes)
    tinted = np.stack([a, a, (a * 0.8).astype(np.uint8)], -1)
    assert any("levels" in n or "cropped" in n for n in preprocess(load_image(png_bytes(Image.fromarray(tinted)))).notes)
    light = preprocess(load_image(png_bytes(Image.fromarray(255 - a))))
    assert light.inverted


# ---- resource use -----------------------------------------------------------------------------
def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6


def test_memory_does_not_grow_across_bad_uploads(tmp_path: Path):
    good = png_bytes(garment_on_white())
    bad = [b"not an image", good[: len(good) // 2], bomb_png(20000, 20000), b"",
           jpeg_bytes(garment_on_white())[:500], bomb_png(6000, 5000)]

    def round_of_uploads() -> None:
        for data in bad:
            with pytest.raises(ImageInputError):
                load_and_preprocess(data)

    for _ in range(3):  # warm-up: imports, caches
        round_of_uploads()
    gc.collect()
    rss0 = _rss_mb()
    tracemalloc.start()
    snap0 = tracemalloc.take_snapshot()
    for _ in range(50):
        round_of_uploads()
    gc.collect()
    grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(snap0, "filename"))
    tracemalloc.stop()
    assert grown < 2_000_000, f"python heap grew by {grown} bytes"
    assert _rss_mb() - rss0 < 64, f"RSS grew by {_rss_mb() - rss0:.0f} MB"
