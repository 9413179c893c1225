"""How well the Score tab tells real from generated: the critic against the game's discriminator.

    python benchmarks/critic.py [--model checkpoints] [--earlier DIR] [--plain DIR] [--n 2000]
                                [--n-round-trip 1000] [--api] [--n-api 100] [--out docs/critic_benchmark.md]

Prints one table (Markdown): held-out ROC AUC, average precision, accuracy at 0.5, expected calibration
error and the false-positive rate on real images (real called generated), for the critic and for the
game's D, each with its own calibration, in each setting:

* (a) clean 28x28 samples of the model against real test images;
* upload: both sides through the app's preprocessing after a PNG upscale (``gan.scoring.roundtrip``);
* (b) both sides through the photo-like round trip (light background, upscaling, tint, rotation, JPEG
  quality 70..90, then the app's preprocessing): the same function the critic's training uses;
* app-made samples: latents scaled by 0.5..1.5 (the truncation slider) and blends of two classes (the
  Interpolate tab), against the same real images;
* (c) samples of generators the critic never saw (``--earlier``: an earlier checkpoint of the same recipe;
  ``--plain``: a plain-recipe model), clean and after the photo round trip, against the same real images;
* ``--api``: through the real ``/score`` endpoint of a launched ``python app.py`` (gradio_client): 100 real
  test images as PNGs against 100 images from ``/generate``, as sent, and after the photo round trip
  (applied to the files the client sends).

Real test images and sample seeds here are disjoint from those the critic was trained, stopped or
calibrated on (test images are never used in training; the seeds are new).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from gan import GAN  # noqa: E402
from gan.data import load_dataset, to_float  # noqa: E402
from gan.scoring import load_calibration, load_critic, score_images, separation_metrics  # noqa: E402
from gan.scoring.calibration import generate_images  # noqa: E402
from gan.scoring.combine import MAX_VAL_FPR  # noqa: E402
from gan.scoring.roundtrip import photo_jpeg, round_trip  # noqa: E402

BENCH_SEED = 9_001  # sample seeds of this benchmark (the critic's own use 7_001, 7_002 and the pools)
COLUMNS = ["setting", "images (real vs generated)", "scorer", "ROC AUC", "AP", "acc@0.5", "ECE", "FPR real"]


def _p_real(model: GAN, x: torch.Tensor, critic, calibration) -> tuple[np.ndarray, np.ndarray]:
    """(critic P(real), game D P(real)) for images x, each with its own calibration."""
    res = score_images(model, x, calibration=calibration, critic=critic)
    d = np.array([r.p_real if r.p_real is not None else r.p_real_raw for r in res])
    return np.array([r.critic_p_real for r in res]), d


def _rows(setting: str, what: str, real: tuple, fake: tuple) -> list[list]:
    out = []
    for k, who in enumerate(("critic", "game D")):
        m = separation_metrics(real[k], fake[k])
        out.append([setting, what, who, m["auc"], m["ap"], m["accuracy"], m["ece"], m["fpr_real"]])
    return out


def offline_rows(model: GAN, critic, calibration, args: argparse.Namespace) -> list[list]:
    """Settings (a), upload, (b) and (c), scored in process."""
    test = load_dataset("fashion-mnist", split="test", data_dir=args.data_dir)
    idx = torch.randperm(len(test), generator=torch.Generator().manual_seed(args.seed + 101))[:args.n]
    real = to_float(test.images[idx])
    n_rt = min(args.n_round_trip, args.n)
    real_views = {"clean": real, "upload": round_trip(real[:n_rt], "upload", seed=args.seed + 1),
                  "photo": round_trip(real[:n_rt], "photo", seed=args.seed + 2)}
    scores = {v: _p_real(model, x, critic, calibration) for v, x in real_views.items()}
    fake = generate_images(model, args.n, seed=BENCH_SEED + args.seed)
    rows = []
    for view, label, mode in (("clean", "(a) clean 28x28", "clean"), ("upload", "upload preprocessing", "upload"),
                              ("photo", "(b) photo-like round trip", "photo")):
        x = fake if mode == "clean" else round_trip(fake[:n_rt], mode, seed=args.seed + 3 + len(rows))
        rows += _rows(label, f"{len(real_views[view])} vs {len(x)}: shipped model", scores[view],
                      _p_real(model, x, critic, calibration))
    x = app_samples(model, args.n, seed=BENCH_SEED + 2 + args.seed)
    rows += _rows("app-made samples", f"{args.n} vs {args.n}: class blends and latent scales 0.5-1.5",
                  scores["clean"], _p_real(model, x, critic, calibration))
    for flag, name in ((args.earlier, "earlier checkpoint"), (args.plain, "plain-recipe model")):
        if not flag:
            continue
        other = GAN.from_pretrained(str(flag)).eval()
        x = generate_images(other, args.n, seed=BENCH_SEED + 1 + args.seed)
        rows += _rows(f"(c) unseen G: {name}", f"{args.n} vs {args.n}: {Path(flag).name}, clean", scores["clean"],
                      _p_real(model, x, critic, calibration))
        x = round_trip(x[:n_rt], "photo", seed=args.seed + 11)
        rows += _rows(f"(c) unseen G: {name}", f"{n_rt} vs {n_rt}: {Path(flag).name}, photo round trip",
                      scores["photo"], _p_real(model, x, critic, calibration))
    return rows


@torch.no_grad()
def app_samples(model: GAN, n: int, seed: int) -> torch.Tensor:
    """n images the app also makes: half with the latent scaled by 0.5..1.5 (truncation), half a blend of two classes."""
    G = model.generator
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, G.cfg.z_dim, generator=g)
    half = n // 2
    z[:half] *= torch.rand(half, 1, generator=g) + 0.5
    emb = None
    if G.conditional:
        y0, y1 = (torch.randint(0, G.cfg.num_classes, (n,), generator=g) for _ in range(2))
        t = torch.cat([torch.zeros(half), 0.2 + 0.6 * torch.rand(n - half, generator=g)])[:, None]
        emb = G.embed.weight[y0] * (1 - t) + G.embed.weight[y1] * t
    G.eval()
    return G.forward_with_embedding(z, emb)


def _score_files(client, files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """(answer P(real), game D P(real)) for each file, through /score."""
    from gradio_client import handle_file
    answer, game = [], []
    for f in files:
        r, _ = client.predict(image=handle_file(str(f)), api_name="/score")
        if r["scorer"] not in ("critic", "combined"):
            raise RuntimeError(f"/score answered with the {r['scorer']}: the served folder has no valid critic")
        answer.append(r["p_real"])
        game.append(r["d_p_real"])
    return np.array(answer), np.array(game)


def _photo_files(files: list[Path], folder: Path, seed: int) -> list[Path]:
    """The photo-like round trip of each file (as sent: 28x28 or 224x224), saved as the JPEG a user uploads."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for f in files:
        p = folder / (f.stem + ".jpg")
        p.write_bytes(photo_jpeg(np.asarray(Image.open(f).convert("L")), rng))
        out.append(p)
    return out


def api_rows(model_dir: Path, args: argparse.Namespace) -> list[list]:
    """Through /score of a launched app: real test PNGs vs /generate PNGs, as sent and after the photo round trip."""
    from gradio_client import Client
    from app_server import start_app
    tmp = Path(tempfile.mkdtemp(prefix="critic-bench-"))
    test = load_dataset("fashion-mnist", split="test", data_dir=args.data_dir)
    idx = torch.randperm(len(test), generator=torch.Generator().manual_seed(args.seed + 202))[:args.n_api]
    real_files = []
    for i in idx.tolist():
        p = tmp / "real" / f"test{i}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(test.images[i, 0].numpy()).save(p)
        real_files.append(p)
    srv = start_app(model_dir, log=tmp / "server.log", env={"GAN_APP_SCRATCH": str(tmp / "scratch")})
    try:
        c = Client(srv.url, verbose=False)
        rng = np.random.default_rng(args.seed + 303)
        fake_files = []
        for k in range(args.n_api):
            src = Path(c.predict(seed=int(rng.integers(0, 2**31 - 1)), class_name="random", api_name="/generate"))
            p = tmp / "generated" / f"generated{k}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(src.read_bytes())
            fake_files.append(p)
        t0 = time.perf_counter()
        real_scores = _score_files(c, real_files)
        rows = _rows("/score", f"{args.n_api} test PNGs vs {args.n_api} /generate PNGs",
                     real_scores, _score_files(c, fake_files))
        rows += _rows("/score, photo round trip", f"{args.n_api} vs {args.n_api}, JPEG photos of both",
                      _score_files(c, _photo_files(real_files, tmp / "real_photo", args.seed + 4)),
                      _score_files(c, _photo_files(fake_files, tmp / "generated_photo", args.seed + 5)))
        rows += _zoo_api_rows(c, tmp, args, real_scores)
        print(f"/score: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        c.close()
    finally:
        srv.stop()
    return rows


def _zoo_api_rows(client, tmp: Path, args: argparse.Namespace, real_scores: tuple) -> list[list]:  # noqa: ANN001
    """Through /score: each zoo family's unseen test samples (gan.zoo) as 28x28 PNGs, against the real PNGs;
    then the sealed families' (gan.zoo.SEALED: no detector learned from them)."""
    from gan.zoo import SEALED_DIR, ZooMissing, load_zoo
    rows = []
    for setting, folder in (("/score, other generators", None), ("/score, sealed generators", SEALED_DIR)):
        try:
            zoo = load_zoo(folder)
        except ZooMissing as e:
            print(f"no rows for {setting}: {e}", file=sys.stderr)
            continue
        rows += _family_api_rows(client, tmp, args, real_scores, setting, zoo)
    return rows


def _family_api_rows(client, tmp: Path, args: argparse.Namespace, real_scores: tuple, setting: str,  # noqa: ANN001
                     zoo: dict) -> list[list]:
    """One row per family of zoo: its test samples as 28x28 PNGs through /score, against the real PNGs."""
    rows = []
    for name, fam in sorted(zoo.items()):
        files = []
        for k, img in enumerate(fam.test[:args.n_api, 0].numpy()):
            p = tmp / "zoo" / name / f"{k}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(p)
            files.append(p)
        rows += _rows(setting, f"{args.n_api} test PNGs vs {len(files)} {name} PNGs "
                      f"(FID {fam.info.get('fid')})", real_scores, _score_files(client, files))
    return rows


def markdown(rows: list[list]) -> str:
    """The table as Markdown (numbers with 4 decimals)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * 3 + "---:|" * 5]
    for r in rows:
        lines.append("| " + " | ".join(str(v) if not isinstance(v, float) else f"{v:.4f}" for v in r) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(ROOT / "checkpoints"), help="model folder with a critic (default: checkpoints)")
    p.add_argument("--earlier", default=None, help="model folder of an earlier checkpoint (unseen generator)")
    p.add_argument("--plain", default=None, help="model folder of a plain-recipe model (unseen generator)")
    p.add_argument("--n", type=int, default=2000, help="images per side, clean (default: 2000)")
    p.add_argument("--n-round-trip", type=int, default=1000, help="images per side, round trips (default: 1000)")
    p.add_argument("--api", action="store_true", help="also measure through /score of a launched app")
    p.add_argument("--n-api", type=int, default=100, help="images per side through /score (default: 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=None, help="also write the table (Markdown) and a JSON copy here")
    p.add_argument("--lofo", action="store_true",
                   help="leave-one-family-out instead: the verdict on zoo families it never learned from "
                        "(benchmarks/lofo.py)")
    p.add_argument("--n-real", type=int, default=600, help="--lofo: real test images per view (default: 600)")
    p.add_argument("--n-family", type=int, default=400, help="--lofo: test images per family and view (default: 400)")
    p.add_argument("--detector-steps", type=int, default=None, help="--lofo: detector steps (default: its own)")
    p.add_argument("--g-share", type=float, default=None, help="--lofo: share of the shipped G's samples in the "
                        "folds' detectors' generated batches (default: the detector's own, 1/6)")
    p.add_argument("--mirror", choices=("on", "off"), default=None, help="--lofo: the verdict reads the detector "
                        "on the mirrored image as a signal of its own, or not (default: the detector's own, on)")
    p.add_argument("--flip", type=float, default=None, help="--lofo: share of the detectors' training images "
                   "flipped left to right (default: DetectorOptions.flip)")
    p.add_argument("--families", default=None, help="--lofo: only these held-out families (comma-separated; "
                        "'a+b': one fold without both; 'none': the folder's own detector only)")
    p.add_argument("--pool", type=int, default=4000, help="--lofo: round-trip pool per source (default: 4000)")
    p.add_argument("--cache", default=None, help="--lofo: keep each fold's detector in this folder and reuse it "
                        "when the options match (only the verdict is refitted)")
    p.add_argument("--max-val-fpr", type=float, default=MAX_VAL_FPR,
                   help="--lofo: refit every verdict with this bound on held-out real images called generated "
                        f"(default: the shipped rule's, {MAX_VAL_FPR})")
    p.add_argument("--skip-shipped", action="store_true", help="--lofo: the folds only, not the folder's detector")
    args = p.parse_args(argv)
    if args.lofo:
        from lofo import main_lofo
        return main_lofo(args)
    model = GAN.from_pretrained(args.model).eval()
    critic, calibration = load_critic(args.model), load_calibration(args.model)
    if critic is None or critic.calibration is None:
        print(f"error: {args.model} has no valid critic; run: fashion-gan critic {args.model}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    rows = offline_rows(model, critic, calibration, args)
    if args.api:
        rows += api_rows(Path(args.model), args)
    from gan.hardware import hardware_description
    hw = hardware_description(torch.device("cpu"), 1)
    table = markdown(rows)
    print(table)
    print(f"\n{time.perf_counter() - t0:.0f} s on {hw}; critic: {critic.info.get('candidate')} "
          f"({critic.label_rule} labels); game D calibration: {'yes' if calibration else 'none (sigmoid)'}")
    if args.out:
        Path(args.out).write_text(table + "\n")
        Path(args.out).with_suffix(".json").write_text(json.dumps({"columns": COLUMNS, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
