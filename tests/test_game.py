"""The Game headless: the toy reaches equilibrium, presets teach their lessons, caps hold, CLI errors are short."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT, read_jsonl, subprocess_env
from gan.game import Caps, GameError, Session, Settings, preset
from gan.game.cli import main
from gan.game.fashion import FashionGame, HIST_BINS
from gan.game.plane import PlaneGame
from gan.game.toy import ToyError, grid_density, js_divergence, points_from_sketch, ring, toy_sampler


def _params(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in module.parameters()])


def test_js_estimate_reads_zero_for_one_distribution_and_one_for_disjoint_ones():
    a = ring(4096, torch.Generator().manual_seed(1))
    b = ring(4096, torch.Generator().manual_seed(2))
    assert js_divergence(grid_density(a), grid_density(b)) < 0.02
    assert js_divergence(grid_density(a), grid_density(torch.zeros(4096, 2) + 0.01)) > 0.95
    outside = torch.full((4096, 2), 5.0)  # points off the plane must not look like a match
    assert js_divergence(grid_density(a), grid_density(outside)) > 0.95


def test_headless_ring_reaches_the_goal(tmp_path: Path, capsys: pytest.CaptureFixture):
    """Default settings: JS falls below a quarter of its start and both read-outs end within 0.1 of 1/2."""
    out = tmp_path / "ring"
    assert main(["--data", "ring", "--steps", "3000", "--out", str(out), "--frames", "2"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = read_jsonl(out / "metrics.jsonl")
    assert len(rows) == 3001 and rows[-1]["round"] == 3000 and rows[-1]["d_steps"] == rows[-1]["g_steps"] == 3000
    assert {"d_loss", "g_loss", "d_real", "d_fake", "value", "g_grad", "js"} <= rows[-1].keys()
    assert summary["js_start"] > 0.9  # G starts as a blob at the centre, off the ring
    assert summary["js_end"] < summary["js_start"] / 4, summary
    assert abs(summary["mean_d_real_last50"] - 0.5) < 0.1 and abs(summary["mean_d_fake_last50"] - 0.5) < 0.1
    assert (out / "game.gif").stat().st_size > 0 and len(list((out / "frames").glob("*.png"))) == 3
    assert '"js_end"' in capsys.readouterr().out


def test_minimax_preset_starves_g_of_gradient_where_non_saturating_does_not():
    """Same strong D, same seed: over the first 100 rounds G's gradient is much smaller under minimax."""
    grads = {}
    for name in ("minimax", "non-saturating"):
        p = preset(name)
        session = Session(PlaneGame("ring", p.toy, nets=p.nets, seed=0))
        session.advance(rounds=100)
        grads[name] = float(np.mean([r["g_grad"] for r in session.history[1:]]))
        assert session.history[-1]["d_fake"] < 0.4  # D is winning in both runs
    assert grads["minimax"] < 0.6 * grads["non-saturating"], grads


def test_caps_stop_a_runaway_session():
    steps_capped = Session(PlaneGame("ring"), Caps(max_steps=40, max_seconds=600))
    tick = steps_capped.advance(seconds=60)
    assert tick.stopped and "40 steps" in tick.stopped
    assert steps_capped.game.d_steps + steps_capped.game.g_steps == 40
    assert steps_capped.step_d().updates == 0 and steps_capped.advance(rounds=5).updates == 0

    time_capped = Session(PlaneGame("ring"), Caps(max_steps=10**9, max_seconds=0.3))
    tick = time_capped.advance(seconds=60)
    assert tick.stopped and "minutes" in tick.stopped and tick.seconds < 30


def test_step_d_moves_only_d_and_step_g_moves_only_g():
    session = Session(PlaneGame("ring"))
    session.advance(rounds=3)
    g0, d0, before = _params(session.game.G), _params(session.game.D), dict(session.history[-1])
    session.step_d()
    after = session.history[-1]
    assert torch.equal(_params(session.game.G), g0) and not torch.equal(_params(session.game.D), d0)
    assert after["d_steps"] == before["d_steps"] + 1 and after["g_steps"] == before["g_steps"]
    assert after["d_loss"] != before["d_loss"] and after["g_loss"] == before["g_loss"]
    d1 = _params(session.game.D)
    session.step_g()
    assert torch.equal(_params(session.game.D), d1) and not torch.equal(_params(session.game.G), g0)


def test_settings_change_mid_run_and_bad_settings_are_refused():
    session = Session(PlaneGame("ring"))
    session.advance(rounds=2)
    session.configure(session.game.settings.changed(loss="r3gan", lr_g=3e-3, k=3, gamma=0.2))
    session.advance(rounds=1)
    assert session.game.opt_g.param_groups[0]["lr"] == 3e-3
    assert session.history[-1]["d_steps"] == 2 + 3 and session.history[-1]["loss"] == "r3gan"
    for bad, word in ((dict(loss="wgan"), "loss"), (dict(lr_d=0.0), "lr_d"), (dict(k=0), "k"),
                      (dict(gamma=-1.0), "gamma"), (dict(lr_g=float("nan")), "lr_g")):
        with pytest.raises(GameError, match=word):
            Settings().changed(**bad)


def test_drawn_points_from_a_sketch_become_the_data(tmp_path: Path):
    canvas = np.full((100, 100), 255.0)
    canvas[45:55, 10:90] = 0  # a horizontal bar
    pts = points_from_sketch(canvas)
    assert pts.shape[1] == 2 and pts[:, 0].min() < -1 and pts[:, 0].max() > 1 and pts[:, 1].abs().max() < 0.3
    sample = toy_sampler("drawn", pts)(256, torch.Generator().manual_seed(0))
    assert sample.shape == (256, 2) and sample[:, 1].abs().max() < 0.6
    with pytest.raises(ToyError, match="empty"):
        points_from_sketch(np.full((50, 50), 255.0))
    f = tmp_path / "pts.json"
    f.write_text(json.dumps(pts.tolist()))
    assert main(["--data", "drawn", "--points", str(f), "--steps", "5", "--frames", "1", "--out",
                 str(tmp_path / "drawn")]) == 0


def test_headless_fashion_on_a_tiny_data_set(fake_fashion: Path, tmp_path: Path):
    out = tmp_path / "fashion"
    assert main(["--data", "fashion-mnist", "--data-dir", str(fake_fashion), "--steps", "20", "--batch", "16",
                 "--frames", "2", "--out", str(out)]) == 0
    rows = read_jsonl(out / "metrics.jsonl")
    hists = [r for r in rows if "hist_real" in r]
    assert [r["round"] for r in hists] == [0, 10, 20]
    assert len(hists[-1]["hist_real"]) == HIST_BINS and sum(hists[-1]["hist_fake"]) == 256
    assert (out / "game.gif").is_file()


def test_fashion_game_does_not_touch_the_shipped_model(fake_fashion: Path):
    shipped = sorted((ROOT / "checkpoints").rglob("*.safetensors"))
    stamps = {p: p.stat().st_mtime_ns for p in shipped}
    from gan.data import load_fashion_mnist
    fg = FashionGame(images=load_fashion_mnist("train", fake_fashion, download=False).images)
    Session(fg).advance(rounds=2)
    assert {p: p.stat().st_mtime_ns for p in shipped} == stamps


@pytest.mark.parametrize("argv, message", [
    (["--data", "spiral"], "--data 'spiral' is not one of"),
    (["--steps", "0"], "--steps must be in"),
    (["--lr-d", "1"], "lr_d must be in"),
    (["--k", "0"], "k (D steps per G step)"),
    (["--loss", "wgan"], "unknown loss 'wgan'"),
    (["--preset", "fast"], "unknown preset 'fast'"),
    (["--data", "drawn"], "--data drawn needs --points"),
    (["--frames", "0"], "--frames must be in"),
])
def test_cli_bad_arguments_get_a_short_error(argv: list[str], message: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture):
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_cli_missing_fashion_mnist_is_a_clear_error(tmp_path: Path):
    env = subprocess_env(GAN_FASHION_MNIST_SYSTEM_DIR=str(tmp_path / "none"))
    r = subprocess.run([sys.executable, "-m", "gan.game", "--data", "fashion-mnist", "--data-dir",
                        str(tmp_path / "empty"), "--steps", "2", "--out", str(tmp_path / "o")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: Fashion-MNIST not found"), r.stderr
    assert not (tmp_path / "o").exists()


def test_one_trainer_per_page_and_unload_stops_it():
    """The Game tab's registry: a page's new game replaces its old one; closing the page stops it at once."""
    from types import SimpleNamespace

    from gan.app import game_tab
    page = SimpleNamespace(session_hash="page-under-test")
    settings = preset("default").toy
    first = game_tab._new_session("2-D toy", "ring", "default", None, settings, page)
    second = game_tab._new_session("2-D toy", "ring", "default", None, settings, page)
    assert first.stopped and "replaced" in first.stopped and game_tab._live["page-under-test"] is second
    game_tab.on_unload(page)
    assert "page-under-test" not in game_tab._live and second.stopped == game_tab.CLOSED
    assert second.advance(rounds=3).updates == 0  # a closed page's trainer never plays again


def test_pause_stops_a_running_tick_and_queued_ticks_play_nothing():
    """The page's Pause sets the trainer's flag: a tick already running stops after its round (not after its time
    budget), a tick still queued plays nothing, and Play or a single step work as before."""
    import threading
    from types import SimpleNamespace

    from gan.app import game_tab
    page = SimpleNamespace(session_hash="page-pause-test")
    args = ("2-D toy", "ring", "default", None, *_controls(preset("default").toy))
    s = game_tab._new_session("2-D toy", "ring", "default", None, preset("default").toy, page)
    assert s.paused  # a new game waits for Play
    game_tab.on_play(s, *args, page)
    assert not s.paused
    done = {}
    runner = threading.Thread(target=lambda: done.update(tick=s.advance(seconds=600)))
    runner.start()
    while s.game.g_steps < 3:  # it is training
        runner.join(0.01)
    game_tab.on_pause(s)
    runner.join(120)
    assert not runner.is_alive() and done["tick"].seconds < 600  # stopped by Pause, not by its budget
    rounds = s.game.g_steps
    out = game_tab.on_tick(s, *args, page)  # a tick queued before Pause
    assert s.game.g_steps == rounds and out[0] is s and out[1].active is False
    d_steps = s.game.d_steps
    game_tab.on_step_d(s, *args, page)
    assert s.game.d_steps == d_steps + 1 and s.game.g_steps == rounds and s.paused
    game_tab.on_play(s, *args, page)
    game_tab.on_tick(s, *args, page)
    assert s.game.g_steps > rounds
    game_tab.on_unload(page)


def _controls(settings) -> tuple:  # noqa: ANN001 - the Game tab's controls for these settings
    return (settings.loss, settings.lr_d, settings.lr_g, settings.k, settings.gamma)
