"""Pictures and animations of generated images: crisp PNGs, GIFs and MP4 videos.

    from gan.latent import to_pil, make_gif, make_mp4
    im = to_pil(image)                                  # (1, 28, 28) in [-1, 1] -> 224x224 PIL image
    make_gif(frames, "path.gif"); make_mp4(frames, "path.mp4", fps=12)

MP4s are H.264 (yuv420p, the pixel format every browser and player reads) written through PyAV, the
maintained Python binding of FFmpeg's libraries; nothing is encoded by hand.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..data import to_uint8
from ..fileio import atomic_path

def to_pil(image: torch.Tensor, scale: int = 8) -> Image.Image:
    """(1|C, H, W) (or (1, C, H, W)) in [-1, 1] -> PIL image upscaled with nearest neighbour (crisp pixels)."""
    x = image.detach().cpu()
    x = x[0] if x.dim() == 4 and x.size(0) == 1 else x
    if x.dim() != 3 or x.size(0) not in (1, 3):
        raise ValueError(f"expected an image of shape (1|3, H, W), got {tuple(image.shape)}")
    if int(scale) < 1:
        raise ValueError(f"scale={scale} must be >= 1")
    arr = to_uint8(x).permute(1, 2, 0).numpy()  # (H, W, C) uint8
    im = Image.fromarray(arr[..., 0], mode="L") if arr.shape[2] == 1 else Image.fromarray(arr, mode="RGB")
    if scale > 1:
        im = im.resize((im.width * int(scale), im.height * int(scale)), Image.NEAREST)
    return im


def to_png_bytes(image: torch.Tensor, scale: int = 8) -> bytes:
    """PNG file bytes of one image (1|C, H, W) in [-1, 1], nearest-neighbour upscaled."""
    buf = io.BytesIO()
    to_pil(image, scale).save(buf, format="PNG")
    return buf.getvalue()


def make_gif(frames: list[Image.Image | torch.Tensor], path: str | Path, duration_ms: int = 80, *,
             loop: bool = True) -> Path:
    """Animated GIF of PIL frames (or (C, H, W) tensors in [-1, 1], upscaled x8); returns the path."""
    if not frames:
        raise ValueError("make_gif needs at least one frame")
    ims = [f if not isinstance(f, torch.Tensor) else to_pil(f) for f in frames]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ims[0].save(path, format="GIF", save_all=True, append_images=ims[1:], duration=int(duration_ms),
                loop=0 if loop else 1, optimize=False, disposal=2)
    return path


def make_mp4(frames: list[Image.Image | torch.Tensor], path: str | Path, *, fps: int = 12, crf: int = 18) -> Path:
    """H.264 MP4 of PIL frames (or (C, H, W) tensors in [-1, 1], upscaled x8); returns the path.

    Frames are converted to RGB and padded to even sides (yuv420p needs them); ``crf`` is x264's quality
    (0 lossless .. 51 worst; 18 is visually lossless). Written atomically: a failed encode leaves no file.
    """
    import av  # PyAV: FFmpeg's encoders; imported here so that the rest of the app works without it
    if not frames:
        raise ValueError("make_mp4 needs at least one frame")
    if not 1 <= int(fps) <= 120:
        raise ValueError(f"fps={fps} must be in 1..120")
    ims = [(f if not isinstance(f, torch.Tensor) else to_pil(f)).convert("RGB") for f in frames]
    w, h = ims[0].size
    if any(im.size != (w, h) for im in ims):
        raise ValueError(f"all frames must have the same size; the first is {w}x{h}")
    W, H = w + w % 2, h + h % 2
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as out:
            stream = out.add_stream("libx264", rate=int(fps))
            stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
            stream.options = {"crf": str(int(crf))}
            for im in ims:
                arr = np.zeros((H, W, 3), np.uint8)
                arr[:h, :w] = np.asarray(im)
                for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():  # flush the encoder's delayed frames
                out.mux(packet)
    return path
