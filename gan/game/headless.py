"""Play a game without a browser: metrics.jsonl (one row per round), PNG frames, a GIF and summary.json."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from PIL import Image

from gan.game.engine import Caps, Settings
from gan.game.fashion import FashionGame
from gan.game.frames import render_frame
from gan.game.plane import PlaneGame, ToyNets
from gan.game.session import Session
from gan.visualize import save_gif

FASHION_MEASURE_EVERY = 10  # D's histograms cost four batches of D: measured every 10 rounds


@dataclass(frozen=True)
class RunOptions:
    """What `python -m gan.game` was asked to do."""

    data: str = "ring"
    steps: int = 2000  # rounds: k D updates + 1 G update each
    out: str = "runs/game"
    settings: Settings | None = None  # None: the mode's defaults
    nets: ToyNets | None = None
    frames: int = 40
    seed: int = 0
    data_dir: str | None = None
    caps: Caps | None = None
    points: list | None = None  # for data "drawn": the points, (N, 2) in [-2, 2]^2
    gif_scale: float = 1.0  # the GIF's frames at this fraction of the PNG frames' size


def make_session(opts: RunOptions) -> Session:
    """The Session a run (or a page) plays: the 2-D toy or Fashion-MNIST."""
    if opts.data == "fashion-mnist":
        mode = FashionGame(opts.settings, data_dir=opts.data_dir, seed=opts.seed)
        return Session(mode, opts.caps, measure_every=FASHION_MEASURE_EVERY)
    points = torch.tensor(opts.points, dtype=torch.float32) if opts.points is not None else None
    mode = PlaneGame(opts.data, opts.settings, points=points, nets=opts.nets, seed=opts.seed)
    return Session(mode, opts.caps)


def run(opts: RunOptions) -> dict:
    """Play opts.steps rounds, writing metrics.jsonl as it goes and a frame every steps/frames rounds."""
    out = Path(opts.out)
    session = make_session(opts)  # first: missing data or bad points leave no output folder behind
    (out / "frames").mkdir(parents=True, exist_ok=True)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    every = max(1, opts.steps // max(opts.frames, 1))
    frames, train_cpu = [], 0.0
    with open(out / "metrics.jsonl", "w") as f:
        f.write(json.dumps(session.history[0]) + "\n")
        frames.append(_frame(session, out, 0))
        for r in range(1, opts.steps + 1):
            t = time.process_time()
            tick = session.advance(rounds=1)
            train_cpu += time.process_time() - t
            if tick.updates == 0:
                break
            f.write(json.dumps(session.history[-1]) + "\n")
            if r % every == 0 or r == opts.steps:
                frames.append(_frame(session, out, r))
    gif = _gif(frames, out / "game.gif", opts.gif_scale)
    summary = _summary(session, opts, train_cpu, time.process_time() - cpu0, time.perf_counter() - wall0)
    summary["gif"] = str(gif) if gif else None
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _gif(frames: list[Path], out: Path, scale: float) -> Path | None:
    """The run's GIF; with scale < 1 its frames are shrunk first (smaller files for docs)."""
    if scale >= 1:
        return save_gif(frames, out, duration_ms=150, last_frame_ms=2000)
    small = []
    for p in frames:
        target = p.with_suffix(".gif.png")
        with Image.open(p) as im:
            im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS).save(target)
        small.append(target)
    try:
        return save_gif(small, out, duration_ms=150, last_frame_ms=2000)
    finally:
        for p in small:
            p.unlink(missing_ok=True)


def _frame(session: Session, out: Path, r: int) -> Path:
    path = out / "frames" / f"frame_{r:06d}.png"
    render_frame(session).save(path)
    return path


def _summary(session: Session, opts: RunOptions, train_cpu: float, cpu: float, wall: float) -> dict:
    first, last = session.history[0], session.history[-1]
    s = session.game.settings
    summary = {"data": opts.data, "rounds": session.game.rounds, "d_steps": last["d_steps"],
               "g_steps": last["g_steps"], "settings": asdict(s), "stopped": session.stopped,
               "train_cpu_seconds": round(train_cpu, 2), "total_cpu_seconds": round(cpu, 2),
               "wall_seconds": round(wall, 2), "torch_threads": torch.get_num_threads()}
    tail = [r for r in session.history[-50:] if "d_real" in r]
    if tail:
        summary["mean_d_real_last50"] = round(sum(r["d_real"] for r in tail) / len(tail), 4)
        summary["mean_d_fake_last50"] = round(sum(r["d_fake"] for r in tail) / len(tail), 4)
    if "js" in first:
        summary["js_start"], summary["js_end"] = round(first["js"], 4), round(last["js"], 4)
    return summary
