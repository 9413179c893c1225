"""Measured figures of the Game tab (docs/game.md): toy goal, Fashion-MNIST after 2 minutes, frame and tick cost,
and /generate latency while pages play the game.

    nice -n 10 python benchmarks/game.py [--part toy|fashion|render|latency|all] [--fashion-seconds 120]

* toy: the default ring game, 1 thread: CPU seconds until the JS estimate is under a quarter of its start and
  both read-outs (mean over the last 50 rounds) are within 0.1 of 1/2; JS and read-outs after 2,000 rounds;
* fashion: the Fashion-MNIST game (--threads, default 1 as in the app) for --fashion-seconds of wall time; the
  fixed-noise grid every 30 s (runs/game-bench/fashion_*.png) and the metric classifier's mean confidence
  and number of classes (of 10) over 512 samples, against 512 real training images;
* render: the time to draw each picture of a frame, and of one UI tick (training budget + drawing);
* page: one browser page plays the Fashion-MNIST game in the app for --fashion-seconds: the round reached
  and the page's grid every 30 s (runs/game-bench/page_fashion_*.png), the classifier's reading of its 36 samples;
* latency: /generate (gradio_client, the app's shipped model) with no game running, then while N browser
  pages play the Fashion-MNIST game (Playwright + Debian chromium), interleaved in one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
OUT = ROOT / "runs" / "game-bench"


def machine() -> str:
    """CPU model and core count of this machine."""
    name = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                 if ln.startswith("model name")), platform.processor())
    return f"{name}, {torch.get_num_threads()} torch threads of {len(__import__('os').sched_getaffinity(0))} cores"


def bench_toy() -> dict:
    from gan.game import Session
    from gan.game.plane import PlaneGame
    torch.set_num_threads(1)
    s = Session(PlaneGame("ring"))
    js0, cpu0, reached = s.history[0]["js"], time.process_time(), None
    while s.game.rounds < 20_000 and reached is None:
        s.advance(rounds=50)
        tail = s.history[-50:]
        dx = statistics.mean(r["d_real"] for r in tail)
        dg = statistics.mean(r["d_fake"] for r in tail)
        if s.history[-1]["js"] < js0 / 4 and abs(dx - 0.5) < 0.1 and abs(dg - 0.5) < 0.1:
            reached = {"rounds": s.game.rounds, "cpu_seconds": round(time.process_time() - cpu0, 2),
                       "js": round(s.history[-1]["js"], 4), "d_real": round(dx, 3), "d_fake": round(dg, 3)}
    s.advance(rounds=max(0, 2000 - s.game.rounds))
    tail = s.history[-50:]
    return {"js_start": round(js0, 4), "goal_reached": reached,
            "after_2000_rounds": {"js": round(s.history[2000]["js"], 4),
                                  "d_real": round(statistics.mean(r["d_real"] for r in tail), 3),
                                  "d_fake": round(statistics.mean(r["d_fake"] for r in tail), 3),
                                  "cpu_seconds": round(time.process_time() - cpu0, 2)}}


def _confidence(images: torch.Tensor) -> dict:
    from gan.classifier import load_classifier
    with torch.no_grad():
        p = load_classifier()(images).softmax(1)
    counts = torch.bincount(p.argmax(1), minlength=10)
    return {"mean_confidence": round(float(p.max(1).values.mean()), 3),
            "classes_over_3pct": int((counts > 0.03 * len(images)).sum())}


def bench_fashion(seconds: float) -> dict:
    from gan.data import to_float
    from gan.game import Session
    from gan.game.fashion import FashionGame, training_images
    from gan.visualize import grid_image
    OUT.mkdir(parents=True, exist_ok=True)
    s = Session(FashionGame(), measure_every=10)
    t0, cpu0, marks, rows = time.perf_counter(), time.process_time(), [30, 60, 90, 120, seconds], []
    for mark in sorted(set(m for m in marks if m <= seconds)):
        s.advance(seconds=mark - (time.perf_counter() - t0))
        g = s.game
        g.G.eval()
        with torch.no_grad():
            fakes = g.G(g.noise(512))
        g.G.train()
        grid_image(s.mode.samples(), 6, scale=3).save(OUT / f"fashion_{int(mark)}s.png")
        rows.append({"wall_seconds": int(mark), "rounds": g.rounds, "cpu_seconds": round(time.process_time() - cpu0),
                     **_confidence(fakes)})
    real = to_float(training_images()[:512])
    return {"threads": torch.get_num_threads(), "checkpoints": rows, "real_images": _confidence(real)}


def _median_ms(fn, n: int = 5) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(1000 * statistics.median(times), 1)


def bench_render() -> dict:
    from gan.app.game_tab import TICK_TRAIN_SECONDS
    from gan.game import Session
    from gan.game.fashion import FashionGame
    from gan.game.frames import charts, histograms, main_image
    from gan.game.plane import PlaneGame
    torch.set_num_threads(1)
    out = {"tick_train_seconds": TICK_TRAIN_SECONDS}
    for kind, s in (("toy", Session(PlaneGame("ring"))), ("fashion", Session(FashionGame(), measure_every=10))):
        s.advance(rounds=500 if kind == "toy" else 100)
        round_ms = _median_ms(lambda: s.advance(rounds=1), 20)
        draw = {"main_ms": _median_ms(lambda: main_image(s)), "charts_ms": _median_ms(lambda: charts(s))}
        if kind == "fashion":
            draw["histograms_ms"] = _median_ms(lambda: histograms(s))
        out[kind] = {"round_ms": round_ms, **draw,
                     "tick_ms": round(1000 * TICK_TRAIN_SECONDS + sum(draw.values()) + round_ms, 1)}
    return out


def bench_latency(pages: int, n: int) -> dict:
    from gradio_client import Client
    from playwright.sync_api import sync_playwright
    from app_server import CHROMIUM, CHROMIUM_ARGS, start_app
    tmp = Path(tempfile.mkdtemp())
    srv = start_app(None, log=tmp / "server.log", env={"GAN_APP_SCRATCH": str(tmp / "scratch")})
    client = Client(srv.url, verbose=False)

    def generate_ms(count: int) -> list[float]:
        times = []
        for i in range(count):
            t = time.perf_counter()
            client.predict(seed=i, api_name="/generate")
            times.append(1000 * (time.perf_counter() - t))
        return times

    try:
        generate_ms(3)
        idle = generate_ms(n)
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for _ in range(pages):
                pg = b.new_page()
                pg.goto(srv.url)
                pg.wait_for_load_state("load")
                pg.get_by_role("tab", name="Game").click()
                pg.get_by_label("Fashion-MNIST").check()
                pg.wait_for_timeout(3000)
                pg.click("#game-play")
            pg.wait_for_timeout(5000)
            busy = generate_ms(n)
            b.close()
    finally:
        client.close()
        srv.stop()

    def stats(v: list[float]) -> dict:
        return {"median_ms": round(statistics.median(v), 1), "p95_ms": round(sorted(v)[int(0.95 * (len(v) - 1))], 1),
                "max_ms": round(max(v), 1)}
    return {"pages_playing": pages, "n": n, "idle": stats(idle), "while_playing": stats(busy)}


def _grid_tiles(png: bytes) -> torch.Tensor:
    """The 36 samples of a Fashion-MNIST frame (18 px caption, 6x6 grid, padding 2, x3): (36, 1, 28, 28) in [-1, 1]."""
    import io

    import numpy as np
    from PIL import Image
    a = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32)[18:]
    tiles = [a[(2 + 30 * i) * 3:(30 + 30 * i) * 3:3, (2 + 30 * j) * 3:(30 + 30 * j) * 3:3]
             for i in range(6) for j in range(6)]
    return torch.from_numpy(np.stack(tiles)).unsqueeze(1) / 127.5 - 1


def bench_page(seconds: float) -> dict:
    """One browser page plays the Fashion-MNIST game in the app: round reached and the grid every 30 s."""
    import base64
    from playwright.sync_api import sync_playwright
    from app_server import CHROMIUM, CHROMIUM_ARGS, start_app
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp())
    srv = start_app(None, log=tmp / "server.log", env={"GAN_APP_SCRATCH": str(tmp / "scratch")})
    rows = []
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            pg = b.new_page(viewport={"width": 1400, "height": 1100})
            pg.goto(srv.url)
            pg.wait_for_load_state("load")
            pg.get_by_role("tab", name="Game").click()
            pg.get_by_label("Fashion-MNIST").check()
            pg.wait_for_selector("#game-readout table", timeout=60_000)
            pg.click("#game-play")
            t0 = time.perf_counter()
            for mark in range(30, int(seconds) + 1, 30):
                pg.wait_for_timeout(1000 * max(0.0, mark - (time.perf_counter() - t0)))
                src = pg.eval_on_selector("#game-main img", "el => el.src")
                png = base64.b64decode(src.split(",", 1)[1])
                (OUT / f"page_fashion_{mark}s.png").write_bytes(png)
                rnd = pg.eval_on_selector("#game-readout table", "t => t.rows[1].cells[0].innerText")
                rows.append({"wall_seconds": mark, "round": int(rnd), **_confidence(_grid_tiles(png))})
                print(json.dumps(rows[-1]), flush=True)
            pg.screenshot(path=str(OUT / "page_fashion.png"), full_page=True)
            b.close()
    finally:
        srv.stop()
    return {"checkpoints": rows, "note": "confidence over the 36 grid samples, read back from the page's PNG"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", default="all", choices=["toy", "fashion", "render", "latency", "page", "all"])
    ap.add_argument("--fashion-seconds", type=float, default=120.0)
    ap.add_argument("--pages", type=int, default=2)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the fashion part (the app uses 1)")
    a = ap.parse_args()
    result = {"machine": machine()}
    parts = ["toy", "render", "fashion", "latency"] if a.part == "all" else [a.part]
    for part in parts:
        if part == "toy":
            result["toy"] = bench_toy()
        elif part == "render":
            result["render"] = bench_render()
        elif part == "page":
            result["page"] = bench_page(a.fashion_seconds)
        elif part == "fashion":
            torch.set_num_threads(a.threads)
            result["fashion"] = bench_fashion(a.fashion_seconds)
        else:
            result["latency"] = bench_latency(a.pages, a.n)
        print(json.dumps({part: result[part]}), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"bench_{a.part}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
