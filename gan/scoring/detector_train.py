"""Training the detector and fitting the verdict's combination on validation images.

    data = DetectorData(model, load_zoo())
    result = train_detector(model, data, DetectorOptions(), critic=critic, calibration=cal)
    write_detector("runs/x")            # the same for a model folder: detector.* beside the critic

Binary cross-entropy of real (1) against generated (0) images, Adam with a cosine decay, the best
validation step kept (mean ROC AUC over the generators it learns from, every view).  Then, on the same
validation images: the detector's own Platt scaling, and the verdict's combination of critic, detector
and data distance (``gan.scoring.combine``).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..fileio import sha256_file
from ..hardware import cpu_name
from ..pretrained import GAN
from . import analysis
from .calibration import fit_platt
from .detector import DetectorConfig, DetectorNet, save_detector
from .detector_data import G_SHARE, DetectorData
from .combine import MAX_VAL_FPR, Combination
from .measures import roc_auc
from .nearest import BANK_SIZE, build_bank, log_nearest

# The detector's reading of the upload's mirror image is a signal of its own in the verdict: the detector
# learns traces at fixed positions of the pixel grid, and some generators' traces it reads only mirrored
# (docs/critic.md).  As its own signal under the soft minimum, it adds what the mirror finds without
# diluting what the plain reading finds (the shipped G's samples: less separable mirrored).
MIRROR = True


@dataclass
class DetectorOptions:
    """How the detector trains."""

    steps: int = 2500
    batch_size: int = 64  # per side: 64 real and 64 generated images a step
    lr: float = 2e-3
    eval_every: int = 250
    seed: int = 0
    widths: tuple[int, int, int] = (16, 32, 64)
    exclude: tuple[str, ...] = ()  # zoo families left out entirely (leave-one-family-out evaluation)
    g_share: float = G_SHARE  # of each batch's generated half: samples of the shipped G (the rest: the zoo)
    mirror: bool = MIRROR  # the verdict also reads the detector on the mirrored image (a signal of its own)
    # share of training images (real and generated alike) flipped left to right, as CNNDetection does: 0.5 raised
    # 18 of the 20 leave-one-family-out rows (mean +0.005) and kept the model's own samples within 0.005
    flip: float = 0.5
    bank_size: int = BANK_SIZE  # real training images in the nearest-garment signal's bank (gan.scoring.nearest)


@dataclass
class DetectorResult:
    """A trained detector and what it was measured at on validation images."""

    net: DetectorNet
    info: dict
    bank: torch.Tensor | None = None  # real-image embeddings of the nearest-image signal (None: no classifier)


def signal_features(model: GAN, x: torch.Tensor, critic, calibration, detector_logits: np.ndarray,  # noqa: ANN001
                    bank: torch.Tensor | None = None,
                    mirror_logits: np.ndarray | None = None) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(signals, features (N, K), distance flags (N,)) of images x for the verdict's combination;
    mirror_logits: the detector's logits of the mirrored images (the "mirror" signal), if it is used."""
    cols, names = [], []
    if critic is not None:
        names.append("critic")
        cols.append(critic.logits(x, labels=critic.labels_for(x)).double().numpy())
    names.append("detector")
    cols.append(detector_logits)
    if mirror_logits is not None:
        names.append("mirror")
        cols.append(mirror_logits)
    flags = np.zeros(len(x), bool)
    ood = calibration.ood if calibration is not None else None
    clf = analysis.get_classifier()
    if ood and clf is not None:
        from .ood import classifier_features, ood_scores, b64_to_tril
        feats = classifier_features(clf, x)
        means = np.asarray(ood["class_means"], np.float64)
        probs = torch.cat([F.softmax(clf(b.float()), 1) for b in x.split(1000)]).detach().double().numpy()
        dist, _ = ood_scores(feats, probs, means, b64_to_tril(ood["precision_cholesky"], means.shape[1]))
        names.append("distance")
        cols.append(np.log(np.maximum(dist, 1e-6)))
        flags = dist > ood["distance_threshold"]
    if bank is not None and clf is not None:
        names.append("nearest")
        cols.append(log_nearest(clf, bank, x))
    return tuple(names), np.stack(cols, 1), flags


def _val_auc(net: DetectorNet, real: torch.Tensor, fakes: dict[str, torch.Tensor]) -> dict[str, float]:
    net.eval()
    with torch.no_grad():
        lr = torch.cat([net(b) for b in real.split(1000)]).numpy()
        out = {k: roc_auc(lr, torch.cat([net(b) for b in v.split(1000)]).numpy()) for k, v in fakes.items()}
    net.train()
    return out


def train_detector(model: GAN, data: DetectorData, opts: DetectorOptions, *, critic=None, calibration=None,  # noqa: ANN001
                   max_fpr: float = MAX_VAL_FPR, log: Callable[[str], None] = print) -> DetectorResult:
    """Train a detector on data without opts.exclude, keep its best validation step, fit the verdict (with
    max_fpr: see fit_verdict)."""
    torch.manual_seed(opts.seed)
    families = data.families(opts.exclude)
    net = DetectorNet(DetectorConfig(widths=opts.widths))
    opt = torch.optim.Adam(net.parameters(), lr=opts.lr)
    gen = torch.Generator().manual_seed(opts.seed + 77)
    real_val = torch.cat([data.real.val[v] for v in data.real.val])
    fakes_val = {"shipped G": torch.cat(list(data.g.val.values()))}
    fakes_val.update({f: torch.cat(list(data.zoo[f].val.values())) for f in families})
    best, best_state, history, t0 = -1.0, None, [], time.perf_counter()
    for step in range(1, opts.steps + 1):
        for grp in opt.param_groups:
            grp["lr"] = opts.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - 1) / opts.steps)))
        x, t = data.batch(opts.batch_size, families, gen, g_share=opts.g_share, p_flip=opts.flip)
        loss = F.binary_cross_entropy_with_logits(net(x), t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % opts.eval_every == 0 or step == opts.steps:
            aucs = _val_auc(net, real_val, fakes_val)
            score = float(np.mean(list(aucs.values())))
            history.append({"step": step, "loss": round(loss.item(), 4), "val_auc_mean": round(score, 4),
                            "val_auc_min": round(min(aucs.values()), 4)})
            log(f"  detector step {step}/{opts.steps}: loss {loss.item():.3f}, validation ROC AUC mean {score:.4f}, "
                f"min {min(aucs.values()):.4f} ({time.perf_counter() - t0:.0f} s)")
            if score > best:
                best, best_state = score, copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)
    net.eval().requires_grad_(False)
    info = {"families": families, "excluded": list(opts.exclude), "options": asdict(opts), "history": history,
            "best_val_auc_mean": round(best, 4), "seconds": round(time.perf_counter() - t0, 1),
            "machine": f"CPU: {cpu_name()}, {torch.get_num_threads()} threads"}
    clf = analysis.get_classifier()
    bank = build_bank(clf, data.real_all[:opts.bank_size]) if clf is not None else None
    info.update(fit_verdict(model, net, data, families, critic, calibration, bank, max_fpr, mirror=opts.mirror))
    return DetectorResult(net, info, bank)


def fit_verdict(model: GAN, net: DetectorNet, data: DetectorData, families: list[str], critic,  # noqa: ANN001
                calibration, bank: torch.Tensor | None = None, max_fpr: float = MAX_VAL_FPR,
                mirror: bool = MIRROR) -> dict:
    """The detector's own Platt scaling and the verdict's combination, on the validation images of the
    real data, the shipped G and `families` (the bank: real *training* images, none of them validation
    images): {"platt": ..., "verdict": ...} for detector.json.  max_fpr: the most held-out real images of any
    view that the verdict may call generated (combine.Combination.fit); mirror: the detector's reading of the
    mirrored image is a signal of its own (MIRROR)."""
    real, fake, w = data.val_sets(families)
    with torch.no_grad():
        logits = lambda x: torch.cat([net(b) for b in x.split(1000)]).double().numpy()  # noqa: E731
        lr, lf = logits(real), logits(fake)
        mr, mf = (logits(real.flip(-1)), logits(fake.flip(-1))) if mirror else (None, None)
    a, b = fit_platt(np.concatenate([lr, lf]), np.concatenate([np.ones(len(lr)), np.zeros(len(lf))]))
    names, fr, _ = signal_features(model, real, critic, calibration, lr, bank, mr)
    _, ff, _ = signal_features(model, fake, critic, calibration, lf, bank, mf)
    views = np.repeat(np.arange(len(data.real.val)), len(real) // len(data.real.val))  # val_sets: view by view
    comb = Combination.fit(names, fr, ff, w.numpy(), real_groups=views, max_fpr=max_fpr)
    return {"platt": {"a": a, "b": b}, "verdict": comb.to_dict()}


def write_detector(folder: str | Path, *, model: GAN | None = None, zoo_dir: str | Path | None = None,
                   opts: DetectorOptions | None = None, data_dir: str | None = None, pool: int = 4000,
                   n_val: int = 1000, log: Callable[[str], None] = print) -> Path:
    """Train the detector for the model in folder (with its critic and calibration) and save detector.*.

    Needs the zoo's samples (``python -m gan.zoo``, shipped in the checkout's assets/zoo)."""
    from ..zoo import load_zoo
    from .calibration import load_calibration
    from .critic import load_critic
    folder = Path(folder)
    model = model or GAN.from_pretrained(folder)
    zoo = load_zoo(zoo_dir)
    data = DetectorData(model, zoo, data_dir=data_dir, pool=pool, n_val=n_val, log=log)
    res = train_detector(model, data, opts or DetectorOptions(), critic=load_critic(folder),
                         calibration=load_calibration(folder), log=log)
    res.info["generator_sha256"] = sha256_file(folder / "generator.safetensors")
    res.info["zoo"] = {n: {k: f.info.get(k) for k in ("description", "fid", "sha256")} for n, f in zoo.items()}
    return save_detector(folder, res.net, res.info, bank=res.bank)
