"""The zoo (gan.zoo), the any-generator detector (gan.scoring.detector*) and the combined verdict (combine).

A tiny random GAN folder with a critic and calibration gets a detector trained in seconds on a tiny zoo of
two synthetic "generators"; the tests score with it, break it, and check the verdict's rules.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gan import GAN
from gan.fileio import sha256_file
from gan.scoring import load_calibration, load_critic, score_images, write_calibration
from gan.scoring.measures import roc_auc
from gan.scoring.combine import DISAGREE_CAP, MAX_VAL_FPR, UNLIKE, UNLIKE_CAP, Combination, decide
from gan.scoring.detector import DETECTOR_CONFIG, DETECTOR_FILE, DetectorNet, load_detector, residuals
from gan.scoring.detector_train import DetectorOptions, write_detector
from gan.scoring.nearest import BANK_SIZE
from gan.zoo import FAMILIES, SEALED, SEALED_DIR, ZOO_DIR, load_zoo
from gan.zoo.store import ZooMissing, write_family
from gan.zoo.train import train_family

TINY = DetectorOptions(steps=30, eval_every=15, widths=(4, 8, 8), bank_size=3000)


def _blocky(n: int, seed: int) -> torch.Tensor:
    """Upsampled 7x7 noise: the blocky, checkerboard-free output of a crude generator."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 7, 7, generator=g).repeat_interleave(4, 1).repeat_interleave(4, 2)
    return (x * 255).to(torch.uint8)


def _speckle(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 28, 28, generator=g) * 255).to(torch.uint8)


@pytest.fixture(scope="module")
def zoo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("zoo")
    write_family(folder, "blocky", _blocky(200, 0), {"fid": 1.0})
    write_family(folder, "speckle", _speckle(200, 1), {"fid": 2.0})
    return folder


@pytest.fixture(scope="module")
def folder(critic_model_dir: Path, zoo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny critic folder, copied, with a calibration (OOD statistics) and a detector."""
    out = tmp_path_factory.mktemp("detector") / "model"
    shutil.copytree(critic_model_dir, out)
    write_calibration(out, n_real=256, n_fake=256, n_ood_train=1000)
    write_detector(out, zoo_dir=zoo_dir, opts=TINY, pool=64, n_val=128)
    return out


# ---- the zoo ------------------------------------------------------------------------------------------
def test_zoo_round_trip_keeps_a_fixed_disjoint_test_split(zoo_dir: Path) -> None:
    zoo = load_zoo(zoo_dir)
    assert sorted(zoo) == ["blocky", "speckle"]
    z = zoo["blocky"]
    assert z.train.shape == (160, 1, 28, 28) and z.test.shape == (40, 1, 28, 28) and z.train.dtype == torch.uint8
    rows = {tuple(r.flatten().tolist()) for r in z.train}
    assert not any(tuple(r.flatten().tolist()) in rows for r in z.test)
    again = load_zoo(zoo_dir)["blocky"]
    assert torch.equal(again.test, z.test)


def test_zoo_refuses_missing_or_altered_samples(zoo_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ZooMissing, match="python -m gan.zoo"):
        load_zoo(tmp_path)
    with pytest.raises(ZooMissing, match="no family 'nope'"):
        load_zoo(zoo_dir, families=["nope"])
    bad = tmp_path / "zoo"
    shutil.copytree(zoo_dir, bad)
    write_family(tmp_path / "other", "blocky", _blocky(10, 5), {})
    shutil.copy(tmp_path / "other" / "blocky.npz", bad / "blocky.npz")
    with pytest.raises(ValueError, match="SHA-256"):
        load_zoo(bad)


@pytest.mark.parametrize("name", ["mlp-gan", "dcgan-convT", "wgan-gp", "vae", "bilinear-lsgan", "dcgan-hinge-long"])
def test_every_kind_of_family_trains_and_samples(name: str) -> None:
    from dataclasses import replace
    real = torch.rand(256, 1, 28, 28) * 2 - 1
    fam = FAMILIES.get(name) or SEALED[name]
    samples, info = train_family(replace(fam, steps=4, batch_size=16), real, torch.arange(256) % 10,
                                 n_samples=10, log=lambda m: None)
    assert samples.shape == (10, 28, 28) and samples.dtype == torch.uint8
    assert info["snapshots"] == [2, 4]


def test_zoo_grid_draws_each_family_as_a_row(zoo_dir: Path, tmp_path: Path) -> None:
    from PIL import Image
    from gan.zoo.cli import main
    assert main(["--out", str(zoo_dir), "--grid", str(tmp_path / "grid.png")]) == 0
    img = np.asarray(Image.open(tmp_path / "grid.png").convert("L"))
    assert img.shape == (2 * 84, 12 * 84)
    first = load_zoo(zoo_dir)["blocky"].test[0, 0].numpy()  # row 1 = "blocky" (sorted), pixels drawn 3x3
    assert np.array_equal(img[:84:3, :84:3], first)


def test_sealed_families_are_kept_apart_from_what_detectors_learn_from() -> None:
    """The sealed families have names and a folder of their own, so load_zoo() (what a detector learns
    from) never reads them."""
    assert not set(SEALED) & set(FAMILIES) and SEALED_DIR != ZOO_DIR
    assert {f.name for f in SEALED.values()} == set(SEALED)


@pytest.mark.parametrize("name", ["project-early", "project-ns", "project-hinge"])
def test_recipe_families_train_through_train_py_with_their_own_options(name: str, fake_fashion: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The project's own recipe families run gan.train with their options (loss, penalties, EMA, seed)."""
    from dataclasses import replace
    import gan.train.loop as loop
    from gan.zoo.cli import _recipe_samples
    seen, real_train = [], loop.train

    def spy(cfg, **kw):  # noqa: ANN001, ANN003
        seen.append(cfg)
        return real_train(cfg, **kw)

    monkeypatch.setattr(loop, "train", spy)
    table = FAMILIES if name in FAMILIES else SEALED
    fam = replace(table[name], steps=2, batch_size=8)
    samples, info = _recipe_samples(fam, 6, seed=1, data_dir=str(fake_fashion))
    assert samples.shape == (6, 28, 28) and samples.dtype == torch.uint8 and info["snapshots"] == [1, 2]
    assert [c.steps for c in seen] == [1, 2] and seen[1].resume and (seen[0].g_width, seen[0].d_width) == (32, 32)
    want = {k: v for k, v in table[name].recipe.items() if k != "seed_offset"}
    assert all(getattr(seen[0], k) == v for k, v in want.items())
    assert seen[0].seed == 1 + table[name].recipe.get("seed_offset", 11)
    if name == "project-ns":
        assert seen[0].loss == "ns" and seen[0].r1 == 0 and not seen[0].ema


def _framed_zoo(folder: Path, makers: tuple) -> Path:
    """Families as garment-like uploads (content on a dark border), written to folder."""
    for name, make in makers:
        x = make(200, 5).clone()
        x[:, :4], x[:, -4:], x[:, :, :4], x[:, :, -4:] = 0, 0, 0, 0
        write_family(folder, name, x.clamp(min=60) * (x > 0), {"fid": 1.0})
    return folder


def test_leave_one_family_out_holds_families_out_alone_or_together(folder: Path, tmp_path: Path) -> None:
    """benchmarks/lofo.py: each fold's detector never learned from its held-out families ("a+b": both at
    once), its cache is reused only for the same training families, and every held-out family is scored."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("lofo", Path(__file__).parents[1] / "benchmarks" / "lofo.py")
    lofo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lofo)
    framed = _framed_zoo(tmp_path / "zoo", (("blocky", _blocky), ("speckle", _speckle)))
    kw = dict(n_real=6, n_family=6, steps=4, seed=0, data_dir=None, pool=32, shipped=False, zoo_dir=framed,
              cache=tmp_path / "cache", detector={"bank_size": 3000}, log=lambda m: None)
    out = lofo.run_lofo(folder, families=["blocky", "blocky+speckle"], **kw)
    assert [r[0] for r in out["lofo"]] == ["blocky"] * 2 + ["blocky (fold without blocky and speckle)"] * 2 + [
        "speckle (fold without blocky and speckle)"] * 2
    assert all(r[3] == "6 vs 6" and 0.0 <= r[4] <= 1.0 for r in out["lofo"])
    assert load_detector(tmp_path / "cache" / "blocky").info["families"] == ["speckle"]
    assert load_detector(tmp_path / "cache" / "blocky+speckle").info["families"] == []
    with pytest.raises(SystemExit, match="unknown families"):
        lofo.run_lofo(folder, families=["blocky+nope"], **kw)
    assert load_detector(tmp_path / "cache" / "blocky").info["options"]["g_share"] == DetectorOptions().g_share
    lofo.run_lofo(folder, families=["blocky"], **{**kw, "cache": tmp_path / "half",
                                                  "detector": {"g_share": 0.5, "bank_size": 2000}})
    half = load_detector(tmp_path / "half" / "blocky")
    assert half.info["options"]["g_share"] == 0.5 and len(half.bank) == 2000


def test_leave_one_family_out_scores_the_sealed_families_with_the_shipped_detector(folder: Path,
                                                                                   tmp_path: Path) -> None:
    """The folder's own detector is measured on the sealed families too, each in both upload views; a
    missing sealed folder is skipped with a note."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("lofo", Path(__file__).parents[1] / "benchmarks" / "lofo.py")
    lofo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lofo)
    notes = []
    zoo = _framed_zoo(tmp_path / "zoo", (("blocky", _blocky), ("speckle", _speckle)))
    sealed = _framed_zoo(tmp_path / "sealed", (("stripes", lambda n, s: _blocky(n, s + 4).roll(1, 2)),))
    kw = dict(n_real=6, n_family=6, steps=4, seed=0, data_dir=None, pool=32, families=[], zoo_dir=zoo,
              detector={"bank_size": 3000}, log=notes.append)
    out = lofo.run_lofo(folder, sealed_dir=sealed, **kw)
    assert [(r[0], r[2]) for r in out["sealed"]] == [("stripes (sealed)", "upload"), ("stripes (sealed)", "photo")]
    assert all(r[3] == "6 vs 6" and 0.0 <= r[4] <= 1.0 for r in out["sealed"])
    assert lofo.run_lofo(folder, sealed_dir=tmp_path / "none", **kw)["sealed"] == []
    assert any("python -m gan.zoo --sealed" in n for n in notes)


def test_flip_augmentation_flips_the_asked_share_and_nothing_else() -> None:
    """DetectorOptions.flip: a left-right flip of a share of the images; at 0 the random stream (hence an
    earlier detector's training) is unchanged."""
    from gan.scoring.detector_data import augment
    x = torch.rand(64, 1, 28, 28) * 2 - 1
    g = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    assert torch.equal(augment(x, g(), p_blur=0, p_resize=0, p_flip=1.0), x.flip(-1))
    half = augment(x, g(), p_blur=0, p_resize=0, p_flip=0.5)
    same = (half == x).flatten(1).all(1)
    assert torch.equal(same | (half == x.flip(-1)).flatten(1).all(1), torch.ones(64, dtype=torch.bool))
    assert 10 < int(same.sum()) < 54
    assert torch.equal(augment(x, g(), p_flip=0.0), augment(x, g()))
    gen = g()
    augment(x, gen, p_flip=0.0)
    assert torch.equal(torch.rand(3, generator=gen), (lambda h: (augment(x, h), torch.rand(3, generator=h))[1])(g()))


# ---- the detector -------------------------------------------------------------------------------------
def test_npr_residual_is_zero_on_nearest_upsampled_images() -> None:
    x = torch.rand(3, 1, 14, 14).repeat_interleave(2, 2).repeat_interleave(2, 3) * 2 - 1
    r = residuals(x)
    assert r.shape == (3, 3, 28, 28)
    assert r[:, 1].abs().max() == 0  # no trace between the pixels of a 2x nearest upsampling
    assert r[:, 2].abs().max() > 0


def test_detector_file_is_tied_to_its_weights_and_the_generator(folder: Path, tmp_path: Path) -> None:
    det = load_detector(folder)
    assert det is not None and det.info["generator_sha256"] == sha256_file(folder / "generator.safetensors")
    assert det.info["families"] == ["blocky", "speckle"] and det.combination is not None
    assert det.logits(torch.zeros(2, 1, 28, 28)).shape == (2,)
    stale = tmp_path / "stale"
    shutil.copytree(folder, stale)
    meta = json.loads((stale / DETECTOR_CONFIG).read_text())
    meta["generator_sha256"] = "0" * 64
    (stale / DETECTOR_CONFIG).write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="other generator weights"):
        assert load_detector(stale) is None
    shutil.copy(folder / DETECTOR_CONFIG, stale / DETECTOR_CONFIG)
    from safetensors.torch import save_file
    save_file({k: v + 1 for k, v in DetectorNet(det.net.cfg).state_dict().items()}, str(stale / DETECTOR_FILE))
    with pytest.warns(UserWarning, match="does not match"):
        assert load_detector(stale) is None


def test_score_images_combines_every_signal_and_says_who_decided(folder: Path, zoo_dir: Path) -> None:
    model = GAN.from_pretrained(str(folder))
    det, critic, cal = load_detector(folder), load_critic(folder), load_calibration(folder)
    assert det.combination["signals"] == ["critic", "detector", "mirror", "distance", "nearest"]
    assert det.combination["form"] == "softmin" and det.bank is not None and det.bank.dtype == torch.float16
    assert len(det.bank) == TINY.bank_size  # real training images, none of the validation ones
    assert DetectorOptions().bank_size == BANK_SIZE >= 60_000  # shipped: every training image but validation
    x = torch.cat([model.generate(4, seed=3), load_zoo(zoo_dir)["speckle"].test[:4].float() / 127.5 - 1])
    res = score_images(model, x, calibration=cal, critic=critic, detector=det)
    for r in res:
        d = r.to_dict()
        assert d["scorer"] == "combined" and d["verdict"] in ("real", "generated", UNLIKE)
        assert d["decided_by"] in ("critic", "detector", "mirror", "distance", "nearest") and d["verdict_reason"]
        assert 0.0 <= d["answer_p_real"] <= 1.0 and d["detector_p_real"] is not None
        assert d["nearest_distance"] > 0
    mirrored = score_images(model, x.flip(-1), calibration=cal, critic=critic, detector=det)
    for r, m in zip(res, mirrored):  # the mirror signal is the detector's reading of the image flipped left-right
        assert r.mirror_logit is not None and abs(r.mirror_logit - m.detector_logit) < 1e-4
        assert abs(m.mirror_logit - r.detector_logit) < 1e-4
        if r.ood_distance is not None and r.ood_distance > cal.ood["distance_threshold"]:
            assert r.verdict == UNLIKE
    alone = score_images(model, x, calibration=cal, critic=critic)
    assert all(r.scorer == "critic" and r.combined_verdict is None for r in alone)
    det.bank = None  # a detector saved before the bank: the combination needs "nearest", so the critic answers
    assert all(r.scorer == "critic" and r.nearest_distance is None
               for r in score_images(model, x, calibration=cal, critic=critic, detector=det))


# ---- the combination's rules --------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["softmin", "linear"])
def test_combination_respects_signs_and_the_false_positive_bound(form: str) -> None:
    rng = np.random.default_rng(0)
    real = np.stack([rng.normal(2, 1, 500), rng.normal(1, 1, 500), rng.normal(0, 0.3, 500)], 1)
    fake = np.stack([rng.normal(-2, 1, 500), rng.normal(-1, 1, 500), rng.normal(1, 0.3, 500)], 1)
    comb = Combination.fit(("critic", "detector", "distance"), real, fake, form=form)
    assert comb.form == form and all(w >= 0 for w in comb.weights)
    assert comb.val_fpr <= MAX_VAL_FPR + 1e-9 and comb.val_auc > 0.95
    assert np.mean(comb.p_real(real) < 0.5) <= MAX_VAL_FPR + 1e-9
    again = Combination.from_dict(json.loads(json.dumps(comb.to_dict())))
    assert np.allclose(again.p_real(fake), comb.p_real(fake))
    with pytest.raises(ValueError, match="signals"):
        Combination.from_dict({**comb.to_dict(), "signals": ["oracle"]})


def test_the_false_positive_bound_is_a_setting_per_view() -> None:
    """A looser bound calls more generated images generated; every group of real images keeps it."""
    rng = np.random.default_rng(2)
    real = np.stack([rng.normal(1, 1, 1000), rng.normal(1, 1, 1000)], 1)
    real[500:] -= 0.5  # a harder view (think: photos) whose real images look less real
    fake = np.stack([rng.normal(-1, 1, 1000), rng.normal(-1, 1, 1000)], 1)
    groups = np.repeat([0, 1], 500)
    called = {}
    for bound in (0.01, 0.03, 0.1):
        comb = Combination.fit(("critic", "detector"), real, fake, real_groups=groups, max_fpr=bound)
        lr = comb.logit(real)
        assert all(np.mean(lr[groups == g] < 0) <= bound + 1e-9 for g in (0, 1))
        called[bound] = float(np.mean(comb.p_real(fake) < 0.5))
    assert called[0.01] < called[0.03] < called[0.1], called
    with pytest.raises(ValueError, match="max_fpr"):
        Combination.fit(("critic", "detector"), real, fake, max_fpr=0.7)


def test_softmin_lets_one_sure_specialist_decide() -> None:
    """Two generators, each seen by one signal only: the soft minimum catches both, a sum misses one."""
    rng = np.random.default_rng(1)
    n = 2000
    real = np.stack([rng.normal(2, 1, n), rng.normal(2, 1, n)], 1)
    only_critic = np.stack([rng.normal(-3, 1, n), rng.normal(4, 1, n)], 1)  # the detector finds it very real
    only_detector = np.stack([rng.normal(4, 1, n), rng.normal(-3, 1, n)], 1)
    fake = np.concatenate([only_critic, only_detector])
    aucs = {}
    for form in ("softmin", "linear"):
        comb = Combination.fit(("critic", "detector"), real, fake, form=form)
        aucs[form] = roc_auc(comb.logit(real), comb.logit(fake))
        if form == "softmin":
            assert (comb.p_real(fake) < 0.5).mean() > 0.9
    assert aucs["softmin"] > 0.99 > aucs["linear"] + 0.02, aucs


def test_no_flagged_image_is_called_real_with_confidence() -> None:
    comb = Combination(("critic", "detector"), (3.0, 1.0), 0.0, (0.0, 0.0), (1.0, 1.0))
    very_real = np.array([5.0, 0.5])
    assert decide(comb, very_real, {"critic": True, "detector": True}, unlike=False).verdict == "real"
    d = decide(comb, very_real, {"critic": True, "detector": True}, unlike=True, unlike_reason="far away")
    assert d.verdict == UNLIKE and d.p_real <= UNLIKE_CAP and d.reason == "far away"
    d = decide(comb, very_real, {"critic": True, "detector": False}, unlike=False)
    assert d.verdict == "real" and d.p_real <= DISAGREE_CAP and d.disagree == ("detector",)
    d = decide(comb, np.array([-1.0, -4.0]), {"critic": True, "detector": False}, unlike=False)
    assert d.verdict == "generated" and d.decided_by == "detector" and d.disagree == ("critic",)


def test_a_generated_verdict_names_the_plain_detector_when_both_readings_agree() -> None:
    """The mirror signal is the detector on the flipped image: when the plain reading says generated too,
    the Score tab names "the detector"; the mirror is named only when it alone found the traces."""
    comb = Combination(("detector", "mirror"), (1.0, 1.0), 0.0, (0.0, 0.0), (1.0, 1.0), form="softmin",
                       offsets=(0.0, 0.0))
    both = decide(comb, np.array([-2.0, -5.0]), {}, unlike=False)
    assert both.verdict == "generated" and both.decided_by == "detector"
    mirror_only = decide(comb, np.array([2.0, -5.0]), {}, unlike=False)
    assert mirror_only.verdict == "generated" and mirror_only.decided_by == "mirror"
    assert mirror_only.disagree == ("detector",)
