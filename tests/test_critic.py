"""The critic (gan.scoring.critic / refine, `fashion-gan critic`), the upload round trips and the separation metrics.

One tiny conditional GAN with random weights gets a critic refined in a few seconds (module fixture); the
tests then read what it wrote, load it back, score with it, break it, and run the CLI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import subprocess_env
from gan import GAN
from gan.data import FASHION_MNIST_CLASSES, load_dataset, to_float
from gan.fileio import sha256_file
from gan.scoring import (N_QUANTILES, load_critic, roc_auc, saliency_map, score_images, separation_metrics,
                         write_critic)
from gan.scoring.critic import CRITIC_CONFIG, CRITIC_FILE
from gan.scoring.refine import RefineOptions
from gan.scoring.roundtrip import photo_jpeg, round_trip

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(steps=60, screen_steps=30, batch_size=32, eval_every=10, patience=3, n_val=128, n_test=256, n_test_round_trip=64,
            pool=64, n_train=2000, candidates=("refine", "refine-classifier", "scratch"))


def tiny_gan(seed: int = 0) -> GAN:
    torch.manual_seed(seed)
    return GAN(generator={"width": 8, "num_classes": 10}, discriminator={"width": 8, "num_classes": 10},
               class_names=FASHION_MNIST_CLASSES)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model folder with a refined critic (about 15 s on one CPU thread)."""
    out = tmp_path_factory.mktemp("critic") / "model"
    tiny_gan().save_pretrained(out)
    write_critic(out, **TINY)
    return out


@pytest.fixture(scope="module")
def meta(folder: Path) -> dict:
    return json.loads((folder / CRITIC_CONFIG).read_text())


@pytest.fixture(scope="module")
def test_images() -> torch.Tensor:
    return to_float(load_dataset("fashion-mnist", split="test", download=False).images[-64:])


# ---- refinement ---------------------------------------------------------------------------------------
def test_refinement_beats_the_game_discriminator_on_held_out_data(meta: dict):
    critic, game = meta["metrics"], meta["game_discriminator"]
    assert set(critic) == set(game) == {"clean", "upload", "photo"}
    for view in critic:
        assert critic[view]["auc"] > game[view]["auc"] + 0.05, (view, critic[view], game[view])
    assert critic["clean"]["auc"] > 0.9 and critic["clean"]["n_real"] == 256 and critic["photo"]["n_real"] == 64
    for m in critic.values():
        assert {"auc", "ap", "accuracy", "ece", "fpr_real", "brier"} <= set(m) and 0 <= m["ece"] <= 1


def test_the_kept_candidate_measures_best_on_validation(meta: dict):
    cands = meta["candidates"]
    assert set(cands) == {"refine", "refine-classifier", "scratch"}
    assert meta["candidate"] == max(cands, key=lambda c: cands[c]["score"])
    for name, c in cands.items():
        assert c["score"] == pytest.approx(np.mean(list(c["val"].values())), abs=1e-5)
        assert 0 <= c["best_step"] <= c["steps"] <= TINY["steps"] and set(c["test_auc"]) == {"clean", "upload", "photo"}
        assert c["screen_score"] <= c["score"] + 1e-9
        if name != meta["candidate"]:  # screened only: the best one trains on (successive halving)
            assert c["steps"] <= TINY["screen_steps"]
    kept = cands[meta["candidate"]]
    assert kept["steps"] == TINY["steps"] or kept["early_stop"]
    assert meta["architecture"]["label_rule"] == cands[meta["candidate"]]["label_rule"]
    assert meta["training"]["n_train_real"] == 2000 and meta["training"]["wall_time_s"] > 0


def test_critic_files(folder: Path, meta: dict):
    weights = folder / CRITIC_FILE
    assert weights.stat().st_size < 2_000_000 and meta["weights_sha256"] == sha256_file(weights)
    cal = meta["calibration"]
    assert cal["platt_a"] >= 0 and len(cal["real_quantiles"]) == len(cal["fake_quantiles"]) == N_QUANTILES
    assert "validation" in cal["fit_on"] and "test" in meta["metrics_note"]
    assert (folder / "discriminator.safetensors").is_file()  # the game's D stays: it is part of the GAN


def test_train_py_runs_the_critic_after_training():
    from gan.finish import EXTRAS, _writer
    assert [name for name, _ in EXTRAS][:3] == ["directions", "calibration", "critic"]  # later extras may follow
    assert _writer("critic") is write_critic
    assert dict(EXTRAS)["critic"] == "fashion-gan critic"


def test_bad_options_are_refused(tmp_path: Path):
    tiny_gan().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="unknown critic candidate"):
        write_critic(tmp_path, candidates=("nope",))
    with pytest.raises(ValueError, match="steps=0"):
        RefineOptions(steps=0).check()
    with pytest.raises(ValueError, match="app_fakes"):
        RefineOptions(app_fakes=1.5).check()
    with pytest.raises(ValueError, match="not a model folder"):
        write_critic(tmp_path / "missing")


# ---- loading and scoring --------------------------------------------------------------------------------
def test_scores_tell_real_from_generated_and_are_deterministic(folder: Path, test_images: torch.Tensor):
    model, critic = GAN.from_pretrained(str(folder)), load_critic(folder)
    assert critic is not None and critic.calibration is not None and not critic.notes
    assert critic.auc == pytest.approx(json.loads((folder / CRITIC_CONFIG).read_text())["metrics"]["clean"]["auc"])
    fake = model.generate(64, seed=99)
    real_res = score_images(model, test_images, critic=critic)
    fake_res = score_images(model, fake, critic=critic)
    assert all(r.scorer == "critic" and r.critic_calibrated for r in real_res)
    assert np.mean([r.verdict == "real" for r in real_res]) > 0.8
    assert np.mean([r.verdict == "generated" for r in fake_res]) > 0.8
    for r in real_res[:4]:
        assert 0 <= r.critic_p_real <= 1 and 0 <= r.critic_percentile_real <= 100 and r.answer_p_real == r.critic_p_real
    without = score_images(model, test_images[:4])  # the game D's numbers do not depend on the critic
    assert [r.logit for r in without] == [r.logit for r in real_res[:4]]
    again = score_images(model, test_images, critic=load_critic(folder))  # a fresh load scores the same
    assert [r.to_dict() for r in again] == [r.to_dict() for r in real_res]
    s1, s2 = saliency_map(model, test_images[:1], critic=critic), saliency_map(model, test_images[:1], critic=critic)
    np.testing.assert_array_equal(s1, s2)
    assert s1.shape == (28, 28) and s1.max() == pytest.approx(1.0)
    assert not np.array_equal(s1, saliency_map(model, test_images[:1]))  # the critic's reasons, not D's


def test_stale_calibration_is_ignored(folder: Path, tmp_path: Path, test_images: torch.Tensor):
    stale = tmp_path / "stale"
    shutil.copytree(folder, stale)
    state = load_file(str(stale / CRITIC_FILE))
    state = {k: v + 0.01 if v.is_floating_point() else v for k, v in state.items()}
    save_file(state, str(stale / CRITIC_FILE))
    with pytest.warns(UserWarning, match="other weights"):
        critic = load_critic(stale)
    assert critic is not None and critic.calibration is None and critic.auc is None
    assert any("fashion-gan critic" in n for n in critic.notes)
    model = GAN.from_pretrained(str(stale))
    [r] = score_images(model, test_images[:1], critic=critic)
    assert r.critic_calibrated is False and r.critic_percentile_real is None
    assert r.critic_p_real == pytest.approx(1 / (1 + np.exp(-r.critic_logit)))
    assert any("other weights" in n for n in r.notes)


def test_broken_or_missing_critic(folder: Path, tmp_path: Path, test_images: torch.Tensor):
    model = tiny_gan()
    model.save_pretrained(tmp_path)
    assert load_critic(tmp_path) is None  # an existing folder without a critic still loads
    [r] = score_images(model, test_images[:1])
    assert r.scorer == "discriminator" and r.critic_p_real is None and r.answer_p_real == r.p_real_raw
    shutil.copy(folder / CRITIC_FILE, tmp_path / CRITIC_FILE)
    (tmp_path / CRITIC_CONFIG).write_text("{broken")
    with pytest.warns(UserWarning, match="ignoring the critic"):
        assert load_critic(tmp_path) is None
    (tmp_path / CRITIC_CONFIG).write_text((folder / CRITIC_CONFIG).read_text())
    (tmp_path / CRITIC_FILE).write_bytes(b"not safetensors")
    with pytest.warns(UserWarning, match="ignoring the critic"):
        assert load_critic(tmp_path) is None


def test_cli(folder: Path, tmp_path: Path):
    tiny_gan(seed=1).save_pretrained(tmp_path)
    r = subprocess.run([sys.executable, "-m", "gan", "critic", str(tmp_path), "--steps", "4", "--pool", "16",
                        "--n-val", "16", "--n-test", "32", "--n-train", "256", "--candidates", "refine"],
                       cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "<- kept" in r.stdout and "game D" in r.stdout and (tmp_path / CRITIC_FILE).is_file()
    assert load_critic(tmp_path).info["candidate"] == "refine"
    bad = subprocess.run([sys.executable, "-m", "gan", "critic", str(tmp_path / "missing")], cwd=ROOT,
                         env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr


def test_cli_trains_the_folders_own_critic_on_with_another_mix(tmp_path: Path):
    """fashion-gan critic DIR --continue --mix ...: starts from DIR's critic (its weights and label rule)."""
    tiny_gan(seed=2).save_pretrained(tmp_path)
    base = ["--pool", "16", "--n-val", "16", "--n-test", "32", "--n-train", "256"]
    run = lambda *a: subprocess.run([sys.executable, "-m", "gan", "critic", str(tmp_path), *a, *base], cwd=ROOT,  # noqa: E731
                                    env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert run("--steps", "4", "--candidates", "scratch").returncode == 0
    before = load_critic(tmp_path)
    r = run("--continue", "--steps", "3", "--screen-steps", "3", "--lr", "1e-9", "--mix", "clean=1,photo=3")
    assert r.returncode == 0, r.stderr[-2000:]
    after = load_critic(tmp_path)
    assert after.info["candidate"] == "continue" and after.label_rule == before.label_rule
    assert after.info["training"]["mix"] == {"clean": 0.25, "photo": 0.75}
    assert after.info["candidates"]["continue"]["history"][0]["photo"] == pytest.approx(
        before.info["candidates"]["scratch"]["val"]["photo"], abs=1e-6)  # step 0 is the folder's critic
    for bad, words in ((["--mix", "clean=1,blur=2"], "--mix"), (["--mix", "photo=x"], "VIEW=NUMBER")):
        b = run("--continue", "--steps", "2", *bad)
        assert b.returncode == 2 and words in b.stderr and "Traceback" not in b.stderr


# ---- round trips and metrics ----------------------------------------------------------------------------
def test_round_trips(test_images: torch.Tensor):
    x = test_images[:8]
    for mode in ("upload", "photo"):
        y = round_trip(x, mode, seed=3)
        assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
        assert torch.equal(y, round_trip(x, mode, seed=3))  # seeded
    photo = round_trip(x, "photo", seed=3)
    assert (photo - x).abs().mean() > 0.02 and not torch.equal(photo, round_trip(x, "photo", seed=4))
    assert torch.equal(round_trip(x, "clean"), x)
    jpeg = photo_jpeg(np.zeros((28, 28), np.uint8) + 200, np.random.default_rng(0))
    assert jpeg[:3] == b"\xff\xd8\xff"
    with pytest.raises(ValueError, match="round-trip mode"):
        round_trip(x, "sepia")
    with pytest.raises(ValueError, match="shape"):
        round_trip(x[:, :, :20], "photo")


def test_separation_metrics_by_hand():
    m = separation_metrics([0.9, 0.6, 0.4], [0.1, 0.7])
    assert m["auc"] == pytest.approx(4 / 6) and m["accuracy"] == pytest.approx(3 / 5)
    assert m["fpr_real"] == pytest.approx(1 / 3) and m["fpr_fake"] == pytest.approx(1 / 2)
    assert m["brier"] == pytest.approx(np.mean([0.01, 0.16, 0.36, 0.01, 0.49]))
    # ECE, 10 bins: |0.9-1|, |0.6-1| with |0.7-0| in its own bin, |0.4-1|, |0.1-0|, each weighted 1/5
    assert m["ece"] == pytest.approx((0.1 + 0.4 + 0.6 + 0.1 + 0.7) / 5)
    assert 0 < m["ap"] <= 1
    assert roc_auc([50.0, 60.0], [40.0, 45.0]) == 1.0  # large logits are ranked, never squashed into ties
    with pytest.raises(ValueError, match="probabilities"):
        separation_metrics([2.0], [0.5])
    with pytest.raises(ValueError, match="both classes"):
        separation_metrics([], [0.5])
