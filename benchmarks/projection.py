"""Projection of real garments: speed and faithfulness of each stage, /project end to end, and the sliders on them.

    python benchmarks/projection.py [--model checkpoints] [--n 200] [--per-class 100] [--api] [--json out.json]

(1) Stages, in this process with one torch thread (the app's setting), on the first --n Fashion-MNIST test
    images (never trained on): the 150-step optimisation of z (the projector before the encoder), the encoder
    alone, encoder + refinement of z, encoder + refinement + pivotal tuning, and "auto" within the app's time
    budget. Per image: seconds (median and p95), pixel RMS error as a fraction of the range (mean and max),
    distance in the metric classifier's features (1 - cosine; mean), and how often the class found is the label.
(2) --api: app.py launched on the model and every image uploaded to /project with gradio_client, as a user would
    (PNG files, default arguments): seconds per call (first, median, p95) and the RMS error /project reports.
(3) Sliders on projected garments: the first --per-class test images of every class (after the first --n),
    projected with the app's default method and edited as the Generate tab edits them (each with its own tuned
    generator and its sliders fitted to it, gan.latent.local; also with the directions' own sliders); every
    attribute slider acting on the class is judged by gan.latent.effects.CHECK at +3, beside the same check on
    as many unseen seeds of the class (benchmarks/sliders.py's seeds).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gan import GAN  # noqa: E402
from gan.classifier import load_classifier  # noqa: E402
from gan.data import load_dataset, to_float  # noqa: E402
from gan.hardware import hardware_description  # noqa: E402
from gan.latent import latent_for_seed, load_directions, project  # noqa: E402
from gan.latent.attributes import fashion_reference  # noqa: E402
from gan.latent.directions import LABEL_STEP  # noqa: E402
from gan.latent.edits import measure_projected, projected_shift_effect  # noqa: E402
from gan.latent.effects import CHECK, measure_batch, shift_effects  # noqa: E402
from gan.latent.encoder import load_encoder  # noqa: E402
from gan.latent.inversion import Plan, invert  # noqa: E402
from gan.latent.local import fit_local_sliders  # noqa: E402

FIRST_SEED = 100_000  # benchmarks/sliders.py's unseen seeds
SLIDER_SETS = ("seeds", "projected", "fitted")  # seeds; projected garments moved by the directions / by the
# sliders fitted to each garment (gan.latent.local: what the Generate tab does with a projected garment)


def p95(xs: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    s = sorted(xs)
    return s[min(len(s) - 1, math.ceil(0.95 * len(s)) - 1)]


def _row(name: str, secs: list[float], rms: list[float], feat: list[float], hits: list[bool]) -> dict:
    return {"method": name, "median_s": statistics.median(secs), "p95_s": p95(secs), "rms_mean": statistics.mean(rms),
            "rms_max": max(rms), "feature_distance": statistics.mean(feat), "class_is_label": sum(hits) / len(hits)}


def run_stages(model: GAN, enc, d, x: torch.Tensor, labels: torch.Tensor, clf, budget: float) -> list[dict]:
    """(1): every method on every image (as the app runs them: the tuning keeps the sliders' moves of d)."""
    p = Plan()
    methods = {"optimisation of z, 150 steps (before)": lambda t: project(model, t, num_steps=150),
               "(1) encoder": lambda t: invert(model, t, encoder=enc, stage="encoder"),
               f"(2) encoder + refinement ({p.refine_steps} steps)":
                   lambda t: invert(model, t, encoder=enc, stage="refine"),
               f"(3) + pivotal tuning ({p.tune_steps} steps)":
                   lambda t: invert(model, t, encoder=enc, directions=d, stage="tune"),
               f"auto (budget {budget:g} s)":
                   lambda t: invert(model, t, encoder=enc, directions=d, stage="tune", budget_s=budget)}
    rows = []
    for name, run in methods.items():
        run(x[0])  # warm-up
        secs, rms, feat, hits = [], [], [], []
        for i in range(len(x)):
            t0 = time.perf_counter()
            r = run(x[i])
            secs.append(time.perf_counter() - t0)
            img = r.image.reshape(1, *x[i].shape)
            rms.append(float((img - x[i:i + 1]).pow(2).mean().sqrt()) / 2)
            with torch.no_grad():
                feat.append(float(1 - F.cosine_similarity(clf.features(img), clf.features(x[i:i + 1]))[0]))
            hits.append(r.label == int(labels[i]))
        rows.append(_row(name, secs, rms, feat, hits))
        print(f"  {name}: median {rows[-1]['median_s']:.3f} s, RMS {rows[-1]['rms_mean']:.4f}", flush=True)
    return rows


def run_api(model_dir: str, images: torch.Tensor) -> dict:
    """(2): /project through gradio_client on a launched app; seconds per call and the RMS it reports."""
    sys.path.insert(0, str(ROOT / "tests"))
    from gradio_client import Client, handle_file
    from PIL import Image

    from app_server import start_app
    tmp = Path(tempfile.mkdtemp(prefix="projection-bench-"))
    srv = start_app(model_dir, log=tmp / "server.log", env={"GAN_APP_SCRATCH": str(tmp / "scratch")})
    try:
        client = Client(srv.url, verbose=False)
        noop = []
        for _ in range(20):  # the floor: a Gradio round trip that computes nothing
            t0 = time.perf_counter()
            client.predict(0.0, api_name="/noop")
            noop.append(time.perf_counter() - t0)
        secs, rms, stages = [], [], {}
        for i in range(len(images)):
            path = tmp / f"test{i}.png"
            Image.fromarray(images[i, 0].numpy()).save(path)
            t0 = time.perf_counter()
            _, info = client.predict(image=handle_file(str(path)), api_name="/project")
            secs.append(time.perf_counter() - t0)
            rms.append(info["rms"])
            stages[info["stage"]] = stages.get(info["stage"], 0) + 1
        client.close()
    finally:
        srv.stop()
    return {"calls": len(secs), "first_s": secs[0], "median_s": statistics.median(secs), "p95_s": p95(secs),
            "rms_mean": statistics.mean(rms), "rms_max": max(rms), "stages": stages,
            "noop_median_s": statistics.median(noop)}


def run_sliders(model: GAN, enc, d, test, start: int, per_class: int, clf, ref,
                fit_s: list[float]) -> list[dict]:
    """(3): per class and attribute slider, the check on projected real images and on as many unseen seeds;
    appends the seconds of each garment's slider fit to fit_s."""
    names, out = list(model.class_names), []
    attrs = [n for n, k in zip(d.names, d.kinds) if k == "attribute"]
    for c, cname in enumerate(names):
        idx = [int(i) for i in (test.labels[start:] == c).nonzero()[:per_class, 0] + start]
        invs = [invert(model, to_float(test.images[i]), encoder=enc, directions=d, stage="tune") for i in idx]
        invs = [r for r in invs if r.label == c]
        local = []
        for r in invs:
            t = time.perf_counter()
            local.append(fit_local_sliders(r.generator, r.z, c, d, names, classifier=clf))
            fit_s.append(time.perf_counter() - t)
        local = None if any(loc is None for loc in local) else local  # directions without a reference: skip
        base_p = measure_projected(invs, clf)
        z = torch.stack([latent_for_seed(FIRST_SEED + s, model.z_dim) for s in range(len(idx))])
        y = torch.full((len(z),), c)
        base_s = measure_batch(model.generator, z, y, clf)
        for name in attrs:
            if not d.acts_on(name, c):
                continue
            emb = d.embedding_steps(name, y, len(z))
            seeds = shift_effects(model.generator, z, y, LABEL_STEP * d.steps(name, y, len(z)), clf, ref, names,
                                  base=base_s, emb_offsets=None if emb is None else LABEL_STEP * emb)
            proj = projected_shift_effect(invs, d, name, c, clf, ref, names, base=base_p)
            fitted = proj if local is None else projected_shift_effect(invs, d, name, c, clf, ref, names,
                                                                       base=base_p, local=local)
            out.append({"class": cname, "slider": name, "projected_images": len(invs), "seeds": len(z),
                        **{f"{tag}_{k}": v for tag, e in (("seeds", seeds), ("projected", proj), ("fitted", fitted))
                           for k, v in _judged(e, name).items()}})
        print(f"  {cname}: {len(invs)} projected images", flush=True)
    return out


def _judged(e, name: str) -> dict:
    worst = max(((abs(v), b) for b, v in e.sd.items() if b != name), default=(0.0, "-"))
    why = CHECK.failures(e, name)
    return {"own_sd": e.sd.get(name, 0.0), "largest_other": [worst[1], worst[0]], "class_kept": e.class_kept,
            "passes": not why, "why_not": why}


def _print(stages: list[dict], api: dict | None, sliders: list[dict], args, seconds: float) -> None:
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"\nProjection of real Fashion-MNIST test images with {args.model}; machine: "
          f"{hardware_description(torch.device('cpu'))}, {torch.get_num_threads()} torch thread(s); {seconds:.0f} s; "
          f"load average at the end {load} (1, 5, 15 min: other processes sharing the cores slow every row).\n")
    if stages:
        print(f"| method ({args.n} images) | s per image, median | p95 | pixel RMS (% of range), mean | max | "
              f"feature distance | class = label |\n|---|---:|---:|---:|---:|---:|---:|")
    for r in stages:
        print(f"| {r['method']} | {r['median_s']:.3f} | {r['p95_s']:.3f} | {100 * r['rms_mean']:.1f} | "
              f"{100 * r['rms_max']:.1f} | {r['feature_distance']:.3f} | {100 * r['class_is_label']:.0f}% |")
    if api:
        print(f"\n/project through gradio_client ({api['calls']} calls, default arguments): first call "
              f"{api['first_s']:.2f} s, median {api['median_s']:.3f} s, p95 {api['p95_s']:.3f} s; pixel RMS "
              f"{100 * api['rms_mean']:.1f}% of the range on average, {100 * api['rms_max']:.1f}% at most; "
              f"stages that ran: {api['stages']}. A no-op round trip (/noop) took {api['noop_median_s']:.3f} s "
              f"(median of 20) in the same run.")
    if sliders:
        print(f"\nAttribute sliders at +{LABEL_STEP:g}: unseen seeds vs projected real test images of the class "
              f"(check: own >= {CHECK.own:g} sd, largest other <= {CHECK.leak:g}x own, class kept >= "
              f"{CHECK.kept:.0%}).\n")
        print("| class | slider | seeds: own (sd) | other | kept | passes | projected, the directions: own (sd) | "
              "other | kept | passes | projected, fitted to each garment (the app): own (sd) | other | kept | passes |"
              "\n|---|---|" + "---:|---|---:|---|" * 3)
        for r in sliders:
            cells = [f"{r[f'{t}_own_sd']:+.2f} | {r[f'{t}_largest_other'][0]} {r[f'{t}_largest_other'][1]:.2f} | "
                     f"{r[f'{t}_class_kept']:.0%} | {'yes' if r[f'{t}_passes'] else 'no'}" for t in SLIDER_SETS]
            print(f"| {r['class']} | {r['slider']} | {' | '.join(cells)} |")
        for t in SLIDER_SETS:
            print(f"{t}: {sum(r[f'{t}_passes'] for r in sliders)} of {len(sliders)} (class, slider) pairs pass")


def main(argv: list[str] | None = None) -> int:
    """Print the tables (Markdown); --json also writes the numbers."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(ROOT / "checkpoints"), help="model folder (default: checkpoints)")
    p.add_argument("--n", type=int, default=200, help="test images for the stages and /project (default: 200)")
    p.add_argument("--per-class", type=int, default=100, help="test images per class for the sliders (0: skip)")
    p.add_argument("--api", action="store_true", help="also time /project on a launched app")
    p.add_argument("--skip-stages", action="store_true", help="skip (1), the in-process stages")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: 1, as the app)")
    p.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    model = GAN.from_pretrained(args.model).eval().requires_grad_(False)
    enc = load_encoder(args.model)
    if enc is None:
        print(f"error: {args.model} has no encoder (fashion-gan finish {args.model} --only encoder)", file=sys.stderr)
        return 2
    from gan.app.project import BUDGET_S
    clf, test = load_classifier(), load_dataset("fashion-mnist", split="test")
    x = to_float(test.images[:args.n])
    print("stages:", flush=True)
    d = load_directions(args.model, z_dim=model.z_dim)
    stages = [] if args.skip_stages else run_stages(model, enc, d, x, test.labels[:args.n], clf, BUDGET_S)
    api = run_api(args.model, test.images[:args.n]) if args.api else None
    sliders, fit_s = [], []
    if args.per_class and d is not None:
        print("sliders:", flush=True)
        sliders = run_sliders(model, enc, d, test, args.n, args.per_class, clf, fashion_reference(), fit_s)
    _print(stages, api, sliders, args, time.time() - t0)
    fits = None
    if fit_s:
        fits = {"garments": len(fit_s), "median_s": statistics.median(fit_s), "p95_s": p95(fit_s)}
        print(f"sliders fitted to each garment (gan.latent.local): {fits['median_s']:.3f} s a garment (median), "
              f"p95 {fits['p95_s']:.3f} s, {len(fit_s)} garments")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "n": args.n, "per_class": args.per_class,
                                               "machine": hardware_description(torch.device("cpu")),
                                               "threads": torch.get_num_threads(), "stages": stages, "api": api,
                                               "sliders": sliders, "slider_fit": fits}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
