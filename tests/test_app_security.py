"""The launched app refuses what it must: path traversal on the file route, oversized uploads, and
hostile images (each gets a score or a short error naming the file; the app keeps serving and its
memory stays bounded)."""

from __future__ import annotations

import io
import json
import struct
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app_server import ROOT

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from gan.images import MAX_UPLOAD_BYTES  # noqa: E402

REAL_PNG = ROOT / "assets" / "examples" / "real_bag_test18.png"


def _get(url: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _upload(url: str, name: str, data: bytes) -> tuple[int, bytes]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url + "gradio_api/upload", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# ---- the file route ---------------------------------------------------------------------------------
TRAVERSALS = [
    "gradio_api/file=/etc/passwd",
    "gradio_api/file=../../../../../../etc/passwd",
    "gradio_api/file=..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "gradio_api/file=%2Fetc%2Fpasswd",
    "gradio_api/file=%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "gradio_api/file=/tmp/gradio/../../etc/passwd",
    "gradio_api/file=/tmp/gradio/%2e%2e/%2e%2e/etc/passwd",
    "gradio_api/file=/proc/self/environ",
    "file=/etc/passwd",
    "static/../../../../etc/passwd",
    "assets/..%2f..%2f..%2f..%2fetc%2fpasswd",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_is_refused(server, path):
    # urllib would normalise "../"; send the path as written
    status, body = _raw_get(server.url, path)
    assert status in (403, 404), (path, status)
    assert b"root:" not in body and b"PATH=" not in body


def _raw_get(url: str, path: str) -> tuple[int, bytes]:
    import http.client
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("GET", "/" + path)
    r = conn.getresponse()
    return r.status, r.read()


def test_app_files_model_folder_and_scratch_are_not_served(server, client):
    client.predict(seed_a=1, seed_b=2, frames=3, api_name="/interpolate")  # writes a GIF into the scratch folder
    scratch_files = [p for p in server.scratch.rglob("*") if p.is_file()]
    assert scratch_files, "the app wrote nothing into its scratch folder"
    private = [ROOT / "app.py", ROOT / "gan" / "app" / "context.py", server.model_dir / "generator.safetensors",
               server.model_dir / "config.json", scratch_files[0]]
    for p in private:
        status, _ = _raw_get(server.url, "gradio_api/file=" + urllib.parse.quote(str(p)))
        assert status in (403, 404), (p, status)


@pytest.mark.parametrize("image", ["/etc/passwd", {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}},
                                   {"path": "/etc/passwd"}])
def test_score_refuses_a_server_path_in_place_of_an_upload(client, image):
    with pytest.raises(AppError) as e:
        client.predict(image=image, api_name="/score")
    assert "root:" not in str(e.value)


def test_uploaded_files_are_served_back(server):
    # the positive control: the same route does serve what the app itself cached
    status, body = _upload(server.url, "ok.png", REAL_PNG.read_bytes())
    assert status == 200, body[:200]
    cached = json.loads(body)[0]
    status, data = _raw_get(server.url, "gradio_api/file=" + urllib.parse.quote(cached))
    assert status == 200 and data == REAL_PNG.read_bytes()


def test_upload_over_the_size_limit_is_refused(server):
    status, body = _upload(server.url, "big.png", b"\0" * (MAX_UPLOAD_BYTES + 1))
    assert status == 413, (status, body[:200])
    assert str(MAX_UPLOAD_BYTES).encode() in body
    status, _ = _upload(server.url, "fits.png", b"\0" * (MAX_UPLOAD_BYTES - 1000))
    assert status == 200


# ---- hostile images through /score ------------------------------------------------------------------
def _png_bytes(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", **kw)
    return buf.getvalue()


def _bomb_png(side: int = 20000) -> bytes:
    """A valid 1-bit PNG of side x side pixels that compresses to a few tens of KB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = zlib.compress(b"\0" * ((side // 8 + 1) * side), 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def _hostile_files(folder: Path) -> dict[str, tuple[Path, str, list[str]]]:
    """name -> (file, expected 'score' or 'error', words the error must contain)."""
    real = Image.open(REAL_PNG).convert("L")
    big = real.resize((112, 112))
    cases: dict[str, tuple[bytes, str, list[str]]] = {}
    cases["text.png"] = (b"this is a text file, not an image\n", "error", ["not an image"])
    cases["empty.png"] = (b"", "error", ["empty"])
    full = _png_bytes(big)
    cases["truncated.png"] = (full[: len(full) // 2], "error", ["truncated.png"])
    jpg = io.BytesIO()
    big.convert("RGB").save(jpg, format="JPEG", quality=90)
    cases["truncated.jpg"] = (jpg.getvalue()[: len(jpg.getvalue()) // 3], "error", ["truncated.jpg"])
    cases["bomb.png"] = (_bomb_png(), "error", ["bomb.png"])
    cases["one_pixel.png"] = (_png_bytes(Image.new("L", (1, 1), 200)), "error", ["one_pixel.png"])
    strip = Image.new("L", (5000, 3), 0)
    strip.paste(255, (100, 0, 4900, 3))
    cases["wide_strip.png"] = (_png_bytes(strip), "score", [])
    frames = [big, big.rotate(10), big.rotate(20)]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    cases["animated.gif"] = (gif.getvalue(), "score", [])
    arr16 = (np.asarray(big, dtype=np.uint16) * 257)
    cases["sixteen_bit.png"] = (_png_bytes(Image.fromarray(arr16)), "score", [])
    cmyk = io.BytesIO()
    big.convert("CMYK").save(cmyk, format="JPEG")
    cases["cmyk.jpg"] = (cmyk.getvalue(), "score", [])
    rgba = Image.new("RGBA", (112, 112), (0, 0, 0, 0))
    rgba.paste(Image.merge("RGBA", [big, big, big, big.point(lambda v: 255 if v > 20 else 0)]), (0, 0))
    cases["rgba_transparent.png"] = (_png_bytes(rgba), "score", [])
    cases["palette.png"] = (_png_bytes(big.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE)), "score", [])
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    rot = io.BytesIO()
    big.convert("RGB").save(rot, format="JPEG", exif=exif.tobytes())
    cases["exif_rotated.jpg"] = (rot.getvalue(), "score", [])
    out = {}
    for name, (data, expect, words) in cases.items():
        p = folder / name
        p.write_bytes(data)
        out[name] = (p, expect, words)
    return out


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return _hostile_files(tmp_path_factory.mktemp("hostile"))


def _score_or_error(client, path: Path) -> tuple[str, object]:
    try:
        result, _ = client.predict(image=handle_file(str(path)), api_name="/score")
        return "score", result
    except AppError as e:
        return "error", str(e)


@pytest.mark.parametrize("name", ["text.png", "empty.png", "truncated.png", "truncated.jpg", "bomb.png",
                                  "one_pixel.png", "wide_strip.png", "animated.gif", "sixteen_bit.png", "cmyk.jpg",
                                  "rgba_transparent.png", "palette.png", "exif_rotated.jpg"])
def test_hostile_upload_gets_a_score_or_a_short_named_error(client, hostile, name):
    path, expect, words = hostile[name]
    kind, out = _score_or_error(client, path)
    assert kind == expect, (name, out)
    if kind == "score":
        assert 0.0 <= out["p_real"] <= 1.0 and out["image"] == name
    else:
        assert name in out and all(w in out for w in words), out
        assert len(out) < 250 and "Traceback" not in out


def test_app_keeps_serving_with_bounded_memory_under_hostile_uploads(server, client, hostile):
    paths = [p for p, _, _ in hostile.values()]
    for p in paths:  # warm-up round: caches, lazy imports, allocator high-water mark
        _score_or_error(client, p)
    before = server.rss_mb()
    for _ in range(3):
        for p in paths:
            _score_or_error(client, p)
    after = server.rss_mb()
    assert after - before < 60, f"RSS grew from {before:.0f} to {after:.0f} MiB over {3 * len(paths)} hostile uploads"
    out = client.predict(seed=1, api_name="/generate")
    assert Path(out).read_bytes()[:4] == b"\x89PNG"
