"""Leave-one-family-out: how the Score tab's verdict does on generators it never learned from.

    python benchmarks/critic.py --lofo [--model checkpoints] [--n-real 600] [--n-family 400] [--out docs/...]

For every zoo family F (``gan.zoo``): train the detector and fit the verdict's combination without F
(nothing of F is used: not its training split, not its validation share), then score F's *test* split
against real *test* images through the app's upload path: each image is written as the file a user
uploads (a PNG at 1x, 2x, 4x or 8x, or the photo-like JPEG) and scored by ``gan.app.score.score_inputs``,
the function behind the Score tab and ``/score``.  Then, with the model folder's own detector (what
``fashion-gan finish`` ships, trained on every family; trained here the same way when the folder has
none), the shipped model's own samples, the false-positive rate on real images, for reference each
family it learned from (on that family's unseen test split), and the sealed families (``gan.zoo.SEALED``,
in assets/zoo/sealed when made): generators that no detector learned from and no choice was made on.
Nothing is tuned on the held-out family: every choice (steps, weights, the 3% operating point) is made on
validation images of the other families.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gan import GAN
from gan.data import load_dataset, to_uint8
from gan.scoring.calibration import generate_images
from gan.scoring.detector import Detector, load_detector, save_detector
from gan.scoring.combine import MAX_VAL_FPR
from gan.scoring.detector_data import DetectorData
from gan.scoring.detector_train import DetectorOptions, fit_verdict, train_detector
from gan.scoring import analysis
from gan.scoring.measures import roc_auc
from gan.scoring.nearest import build_bank
from gan.scoring.roundtrip import UPLOAD_SCALES, photo_jpeg

BENCH_SEED = 9_301
LOFO_COLUMNS = ["held-out family", "its FID", "view", "images (real vs family)", "ROC AUC", "called real",
                "P(real) >= 0.99", "real called generated"]


def upload_files(images: torch.Tensor, folder: Path, view: str, seed: int) -> list[Path]:
    """uint8 images (N, 1, 28, 28) as the files a user uploads: PNGs at a random nearest-neighbour scale
    ("upload") or the photo-like JPEG ("photo")."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i, img in enumerate(images[:, 0].numpy()):
        if view == "photo":
            p = folder / f"{i}.jpg"
            p.write_bytes(photo_jpeg(img, rng))
        else:
            s = int(rng.choice(UPLOAD_SCALES))
            p = folder / f"{i}.png"
            Image.fromarray(img).resize((28 * s, 28 * s), Image.Resampling.NEAREST).save(p)
        out.append(p)
    return out


def score_files(ctx, files: list[Path]) -> tuple[np.ndarray, list[str]]:  # noqa: ANN001 (AppContext)
    """(answer P(real), verdicts) of each file through the Score tab's own function."""
    from gan.app.score import MAX_SCORE_FILES, score_inputs
    p, v = [], []
    for i in range(0, len(files), MAX_SCORE_FILES):
        chunk = files[i:i + MAX_SCORE_FILES]
        rep = score_inputs(ctx, [str(f) for f in chunk], names=[f.name for f in chunk], neighbours=False,
                           saliency=False)
        p += [d["p_real"] for d in rep.results]
        v += [d["verdict"] for d in rep.results]
    return np.array(p), v


def _row(name: str, fid: float | None, view: str, real: tuple, fake: tuple) -> list:
    pr, vr = real
    pf, vf = fake
    return [name, "-" if fid is None else fid, view, f"{len(pr)} vs {len(pf)}", round(roc_auc(pr, pf), 4),
            round(float(np.mean([v == "real" for v in vf])), 4), round(float(np.mean(pf >= 0.99)), 4),
            round(float(np.mean([v != "real" for v in vr])), 4)]


def run_lofo(model_dir: Path, *, n_real: int, n_family: int, steps: int | None, seed: int,
             families: list[str] | None, data_dir: str | None, pool: int = 4000, shipped: bool = True,
             cache: Path | None = None, max_fpr: float = MAX_VAL_FPR, zoo_dir: Path | None = None,
             detector: dict | None = None, sealed_dir: Path | None = None, log=print) -> dict:  # noqa: ANN001
    """Every fold, then the detector on every family; returns {"lofo": rows, "shipped": rows, ...}.
    max_fpr: every verdict's bound on held-out real images called generated (the folder's own verdict is
    refitted when it differs from the shipped rule's, combine.MAX_VAL_FPR); detector: other DetectorOptions
    of the folds' detectors (e.g. {"g_share": 1/6}); sealed_dir: the sealed families' samples (default:
    gan.zoo.SEALED_DIR, skipped when not made)."""
    from gan.app.context import load_context
    from gan.zoo import load_zoo
    ctx = load_context(local_dir=str(model_dir))
    model: GAN = ctx.model
    zoo = load_zoo(zoo_dir)
    data = DetectorData(model, zoo, seed=seed, data_dir=data_dir, pool=pool, log=log)
    tmp = Path(tempfile.mkdtemp(prefix="lofo-"))
    test = load_dataset("fashion-mnist", split="test", data_dir=data_dir)
    idx = torch.randperm(len(test), generator=torch.Generator().manual_seed(BENCH_SEED))[:n_real]
    real_files = {v: upload_files(test.images[idx], tmp / f"real_{v}", v, seed + k)
                  for k, v in enumerate(("upload", "photo"))}
    fam_files = {f: {v: upload_files(zoo[f].test[:n_family], tmp / f"{f}_{v}", v, seed + 10 + k)
                     for k, v in enumerate(("upload", "photo"))} for f in zoo}
    opts = replace(DetectorOptions(seed=seed, **({} if steps is None else {"steps": steps})), **(detector or {}))
    lofo, timing = [], {}
    for fold in (sorted(zoo) if families is None else families):
        t0 = time.perf_counter()
        held = tuple(fold.split("+"))  # "a+b": a fold without both, each scored
        unknown = [f for f in held if f not in zoo]
        if unknown:
            raise SystemExit(f"unknown families {unknown}; the zoo has {', '.join(sorted(zoo))}")
        log(f"fold: without {' and '.join(held)}")
        ctx.detector = fold_detector(ctx, data, replace(opts, exclude=held), None if cache is None else cache / fold,
                                     max_fpr=max_fpr, log=log)
        for f in held:
            name = f if len(held) == 1 else f"{f} (fold without {' and '.join(held)})"
            for v in ("upload", "photo"):
                lofo.append(_row(name, zoo[f].info.get("fid"), v, score_files(ctx, real_files[v]),
                                 score_files(ctx, fam_files[f][v])))
                log("  " + " | ".join(str(c) for c in lofo[-1]))
        timing[fold] = round(time.perf_counter() - t0, 1)
    if not shipped:
        return {"lofo": lofo, "shipped": [], "seconds_per_fold": timing, "options": vars(opts),
                "n_real": n_real, "n_family": n_family, "max_fpr": max_fpr}
    from gan.scoring.detector import load_detector
    ctx.detector = load_detector(model_dir)  # the folder's own (shipped) detector, read now: it may be new
    if ctx.detector is None:
        log("the folder has no detector: training one on every family, as fashion-gan finish does")
        res = train_detector(model, data, opts, critic=ctx.critic, calibration=ctx.calibration, max_fpr=max_fpr,
                             log=log)
        ctx.detector = Detector(res.net, res.info, bank=res.bank)
    elif max_fpr != MAX_VAL_FPR or ("mirror" in ctx.detector.combination["signals"]) != opts.mirror:
        ctx.detector.info.update(fit_verdict(model, ctx.detector.net, data, ctx.detector.info["families"], ctx.critic,
                                             ctx.calibration, ctx.detector.bank, max_fpr=max_fpr, mirror=opts.mirror))
    shipped = _shipped_rows(ctx, model, real_files, tmp, n_real, seed)
    real_scores = {v: score_files(ctx, real_files[v]) for v in ("upload", "photo")}
    for f in sorted(zoo):  # families it learned from (their test split is still unseen): for reference
        for v in ("upload", "photo"):
            shipped.append(_row(f"{f} (learned from)", zoo[f].info.get("fid"), v, real_scores[v],
                                score_files(ctx, fam_files[f][v])))
    sealed = []
    for f, fam in _sealed(sealed_dir, log).items():  # never learned from, never tuned on
        for k, v in enumerate(("upload", "photo")):
            files = upload_files(fam.test[:n_family], tmp / f"sealed_{f}_{v}", v, seed + 40 + k)
            sealed.append(_row(f"{f} (sealed)", fam.info.get("fid"), v, real_scores[v], score_files(ctx, files)))
            log("  " + " | ".join(str(c) for c in sealed[-1]))
    return {"lofo": lofo, "shipped": shipped, "sealed": sealed, "seconds_per_fold": timing, "options": vars(opts),
            "n_real": n_real, "n_family": n_family, "max_fpr": max_fpr}


def _sealed(folder: Path | None, log=print) -> dict:  # noqa: ANN001
    """The sealed families' samples ({} when they were not made: python -m gan.zoo --sealed)."""
    from gan.zoo import SEALED_DIR, ZooMissing, load_zoo
    try:
        return load_zoo(folder or SEALED_DIR)
    except ZooMissing:
        log(f"no sealed families in {folder or SEALED_DIR} (python -m gan.zoo --sealed makes them)")
        return {}


def fold_detector(ctx, data: DetectorData, opts: DetectorOptions, cache: Path | None,  # noqa: ANN001
                  max_fpr: float = MAX_VAL_FPR, log=print) -> Detector:  # noqa: ANN001
    """A fold's detector: trained without opts.exclude, or read from `cache` when a run with the same
    options saved one there (its verdict is refitted: the combination's code may be newer)."""
    det = load_detector(cache) if cache is not None else None
    same = det is not None and det.info.get("families") == data.families(opts.exclude)  # the zoo may have grown
    cached = {**json.loads(json.dumps(vars(DetectorOptions()))), **det.info.get("options", {})} if same else None
    if same and cached == json.loads(json.dumps(vars(opts))):  # an option newer than the cache: its default
        log(f"  detector read from {cache} (trained in {det.info.get('seconds')} s); verdict refitted")
        want = len(data.real_all[:opts.bank_size])  # cached before the bank existed, or with a smaller one
        if (det.bank is None or len(det.bank) != want) and (clf := analysis.get_classifier()) is not None:
            det.bank = build_bank(clf, data.real_all[:opts.bank_size])
        det.info.update(fit_verdict(ctx.model, det.net, data, det.info["families"], ctx.critic, ctx.calibration,
                                    det.bank, max_fpr, mirror=opts.mirror))
        return det
    res = train_detector(ctx.model, data, opts, critic=ctx.critic, calibration=ctx.calibration, max_fpr=max_fpr,
                         log=log)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        save_detector(cache, res.net, res.info, bank=res.bank)
    return Detector(res.net, res.info, bank=res.bank)


def _shipped_rows(ctx, model: GAN, real_files: dict, tmp: Path, n: int, seed: int) -> list:  # noqa: ANN001
    """The shipped model's own samples (unseen seeds) against real test images, as uploads and photos."""
    x = to_uint8(generate_images(model, n, seed=BENCH_SEED + 7))
    rows = []
    for k, v in enumerate(("upload", "photo")):
        files = upload_files(x, tmp / f"shipped_{v}", v, seed + 30 + k)
        rows.append(_row("(shipped model's own samples)", None, v, score_files(ctx, real_files[v]),
                         score_files(ctx, files)))
    return rows


def markdown(rows: list[list]) -> str:
    """LOFO rows as a Markdown table."""
    lines = ["| " + " | ".join(LOFO_COLUMNS) + " |", "|---|---:|---|---|" + "---:|" * 4]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def main_lofo(args) -> int:  # noqa: ANN001 (argparse namespace of benchmarks/critic.py)
    """benchmarks/critic.py --lofo: print (and optionally write) the leave-one-family-out table."""
    families = ([] if args.families == "none" else args.families.split(",")) if args.families else None
    out = run_lofo(Path(args.model), n_real=args.n_real, n_family=args.n_family, steps=args.detector_steps,
                   seed=args.seed, families=families,
                   data_dir=args.data_dir, pool=args.pool, shipped=not args.skip_shipped,
                   cache=Path(args.cache) if args.cache else None, max_fpr=args.max_val_fpr,
                   detector={**({"g_share": args.g_share} if args.g_share is not None else {}),
                             **({"mirror": args.mirror == "on"} if args.mirror else {}),
                             **({"flip": args.flip} if args.flip is not None else {})})
    text = markdown(out["lofo"] + out["shipped"] + out.get("sealed", []))
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
        Path(args.out).with_suffix(".json").write_text(json.dumps(out, indent=1, default=str) + "\n")
    return 0
