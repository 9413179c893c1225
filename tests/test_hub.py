"""The model as a Hub artifact: save/load round trip, the Hub cache offline, clear format errors, the model
card, pushing (and failing to push) from train.py and `fashion-gan push`, and the app's model resolution."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard, constants

from conftest import MODEL_FOLDER_FILES, error_lines, run_train_py, subprocess_env, tiny_args
from gan import GAN
from gan.data import FASHION_MNIST_CLASSES
from gan.hub import (DOWNLOAD_PATTERNS, UPLOAD_IGNORE, UPLOAD_PATTERNS, PushError, load_folder, load_model,
                     push_folder, resolve_model, source_from_env)
from gan.finish import publish, render_card
from gan.modelcard import parse_eval_results, write_model_card
from gan.pretrained import ModelFormatError

ROOT = Path(__file__).resolve().parent.parent
COMMIT = "0123456789abcdef0123456789abcdef01234567"
OPTIONS = {"dataset": "fashion-mnist", "epochs": 2, "steps_done": 40, "batch_size": 32, "loss": "hinge",
           "g_width": 8, "d_width": 8, "z_dim": 64, "augment": "translation", "ema": True, "ema_beta": 0.999,
           "seed": 0, "device": "cpu", "hardware": "1 process(es) on CPU: Test CPU, 2 cores, 2 threads",
           "wall_time_s": 125.0}
# the shape `python -m gan.evaluate --model DIR --write` stores
EVAL = {"n_samples": 10000, "seed": 0, "conditional": True, "model": "runs/x",
        "metrics": {"fid": 12.5, "kid": 0.012, "kid_std": 0.002, "precision": 0.71, "recall": 0.45,
                    "label_accuracy": None},
        "references": {"train": {"fid": 0.9, "kid": 0.0, "kid_std": 0.001}, "untrained": {"fid": 310.0}},
        "reference_samples": 10000, "classifier": {"file": "classifier.safetensors", "test_accuracy": 0.922},
        "coverage": {"T-shirt/top": 0.1}, "table": "| | FID |\n|---|---|", "date": "2026-11-23",
        "memorization_table": "| nearest training image | n |\n|---|---|\n| samples | 500 |\n\n"
                              "Memorization: no closer."}


def tiny_model(seed: int = 0) -> GAN:
    torch.manual_seed(seed)
    return GAN(generator={"width": 8, "num_classes": 10}, discriminator={"width": 8, "num_classes": 10},
               class_names=FASHION_MNIST_CLASSES)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    tiny_model().save_pretrained(folder)
    return folder


@pytest.fixture
def hub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hub cache and an endpoint that refuses connections (in this process)."""
    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for var in ("GAN_MODEL_DIR", "GAN_MODEL_REPO", "GAN_MODEL_REVISION"):
        monkeypatch.delenv(var, raising=False)
    return cache


def populate_cache(cache: Path, repo_id: str, folder: Path, files: list[str] | None = None) -> Path:
    """Lay folder's files out the way snapshot_download does: blobs/, snapshots/<commit>/ links, refs/main, trees/."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / COMMIT
    (repo / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    tree = {}
    for f in files or sorted(p.name for p in folder.iterdir() if p.is_file()):
        data = (folder / f).read_bytes()
        blob_id = hashlib.sha256(data).hexdigest()
        (repo / "blobs" / blob_id).write_bytes(data)
        (snap / f).symlink_to(Path("..") / ".." / "blobs" / blob_id)
        tree[f] = {"size": len(data), "blob_id": hashlib.sha1(data).hexdigest()}
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    (repo / "trees").mkdir()
    (repo / "trees" / f"{COMMIT}.json").write_text(json.dumps({"format_version": 1, "files": tree}))
    return snap


def clean_env(**extra: str) -> dict[str, str]:
    """A child's environment without this machine's Hub settings (token, endpoint, cache) or app settings."""
    return {**{k: v for k, v in subprocess_env().items() if not k.startswith(("HF_", "GAN_MODEL_"))}, **extra}


def run(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=clean_env(**env), capture_output=True, text=True,
                          timeout=timeout)


# ---- save / load ------------------------------------------------------------------------------------
def test_round_trip_gives_identical_outputs(model_dir: Path) -> None:
    original = tiny_model()
    loaded = GAN.from_pretrained(model_dir)
    assert loaded.config() == original.config()
    labels = list(range(8))
    assert torch.equal(loaded.generate(8, seed=5, labels=labels), original.generate(8, seed=5, labels=labels))
    x, y = original.generate(4, seed=1, labels=2), torch.full((4,), 2)
    assert torch.equal(loaded.discriminator(x, y), original.discriminator(x, y))
    assert not torch.equal(tiny_model(seed=1).generate(4, seed=5, labels=0), original.generate(4, seed=5, labels=0))


def test_loads_through_hub_cache_offline(model_dir: Path, hub_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    populate_cache(hub_env, "owner/name", model_dir)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    expected = tiny_model().generate(6, seed=3, labels=4)
    assert torch.equal(GAN.from_pretrained("owner/name").generate(6, seed=3, labels=4), expected)
    model, source = load_model(repo="owner/name", fallback=model_dir.parent / "nowhere")
    assert source.kind == "hub" and source.warning is None
    assert source.folder.name == COMMIT
    assert "owner/name@main" in source.description and COMMIT[:12] in source.description
    assert torch.equal(model.generate(6, seed=3, labels=4), expected)


def test_offline_cache_in_a_fresh_process(model_dir: Path, tmp_path: Path) -> None:
    """HF_HOME + HF_HUB_OFFLINE=1 as a user sets them, read by huggingface_hub at import."""
    populate_cache(tmp_path / "home" / "hub", "owner/name", model_dir)
    code = ("from gan import GAN; from gan.hub import load_model; "
            "m = GAN.from_pretrained('owner/name'); _, s = load_model(repo='owner/name', fallback='/nonexistent'); "
            "print(s.kind, s.description, m.generate(2, seed=0, labels=1).sum().item())")
    r = run(["-c", code], {"HF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    kind, *_, value = r.stdout.split()
    assert kind == "hub" and "cached snapshot" in r.stdout
    assert float(value) == pytest.approx(tiny_model().generate(2, seed=0, labels=1).sum().item(), abs=1e-5)


# ---- clear errors -------------------------------------------------------------------------------------
def test_truncated_safetensors_is_a_clear_error(model_dir: Path) -> None:
    path = model_dir / "generator.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFormatError, match=r"generator\.safetensors is not a valid safetensors file"):
        GAN.from_pretrained(model_dir)


def test_corrupted_safetensors_is_a_clear_error(model_dir: Path) -> None:
    path = model_dir / "discriminator.safetensors"
    path.write_bytes(b"\xff" * 64 + path.read_bytes()[64:])
    with pytest.raises(ModelFormatError, match=r"discriminator\.safetensors"):
        GAN.from_pretrained(model_dir)


def test_incompatible_format_version_is_a_clear_error(model_dir: Path) -> None:
    cfg = json.loads((model_dir / "config.json").read_text())
    cfg["format_version"] = 99
    (model_dir / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFormatError, match=r"format_version 99 is not supported"):
        GAN.from_pretrained(model_dir)


def test_mismatched_weights_are_a_clear_error(model_dir: Path) -> None:
    cfg = json.loads((model_dir / "config.json").read_text())
    cfg["generator"]["width"] = 16
    (model_dir / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFormatError, match=r"generator\.safetensors does not match config\.json"):
        GAN.from_pretrained(model_dir)


def test_missing_config_is_a_clear_error(model_dir: Path) -> None:
    (model_dir / "config.json").unlink()
    with pytest.raises(ModelFormatError, match="config.json is missing"):
        GAN.from_pretrained(model_dir)
    with pytest.raises(ModelFormatError, match="config.json is missing"):
        load_folder(model_dir)
    with pytest.raises(ModelFormatError, match="is not a model folder"):
        load_folder(model_dir.parent / "empty")


# ---- model card -----------------------------------------------------------------------------------------
def test_model_card_has_metadata_metrics_and_links(model_dir: Path) -> None:
    for f in ("samples.png", "progress.gif", "curves.png"):
        (model_dir / f).write_bytes(b"image")
    (model_dir / "eval.json").write_text(json.dumps({"fid": 99.0}))  # a renderer uses what it is given, only
    path = write_model_card(model_dir, model=tiny_model(), options=OPTIONS, eval_results=EVAL)
    card = ModelCard.load(path)
    data = card.data
    assert data.license == "mit" and data.library_name == "pytorch"
    assert data.pipeline_tag == "unconditional-image-generation" and data.datasets == ["fashion_mnist"]
    assert {"gan", "pytorch", "image-generation", "dcgan", "class-conditional"} <= set(data.tags)
    metrics = {r.metric_type: r.metric_value for r in data.eval_results}
    assert metrics == {"fid": 12.5, "kid": 0.012, "precision": 0.71, "recall": 0.45}
    assert "model-index" in path.read_text()
    text = card.text
    for link in ("](samples.png)", "](progress.gif)", "](curves.png)"):
        assert link in text
    assert "| | FID ↓ | KID ×1000 ↓ | precision ↑ | recall ↑ |" in text
    assert "| **this model** | 12.50 | 12.00 ± 2.00 | 0.710 | 0.450 |" in text
    assert "| real train images (floor) | 0.90 | 0.00 ± 1.00 | – | – |" in text
    assert "| untrained | 310.00 | – |" in text
    assert "(10,000 samples, references with 10,000 images, seed 0, feature classifier test accuracy 92.20%, " \
        "2026-11-23)" in text and "Memorization: no closer." in text and "kid_std" not in text
    assert "not comparable to published (Inception) FIDs" in text
    assert "Goodfellow" in text and "DCGAN" in text and "hinge" in text
    assert "Trained on CPU (1 process(es) on CPU: Test CPU, 2 cores, 2 threads) in 2 min 05 s" in text
    assert 'model = GAN.from_pretrained("OWNER/NAME")' in text
    assert "images = model.generate(16, seed=0, labels=3)" in text


@pytest.mark.parametrize("r1, r2, needle", [
    (0.1, 0.1, "E[softplus(D(G(z)) - D(x))], G the reverse, plus an R1 penalty (γ = 0.1) on real images and an R2 "
               "penalty (γ = 0.1) on generated images."),
    (0.0, 0.5, "G the reverse, plus an R2 penalty (γ = 0.5) on generated images."),
    (0.0, 0.0, "G the reverse.\n"),
])
def test_model_card_names_the_objective_and_its_penalties(model_dir: Path, r1: float, r2: float,
                                                          needle: str) -> None:
    options = {**OPTIONS, "loss": "rpgan", "r1": r1, "r2": r2}
    text = write_model_card(model_dir, model=tiny_model(), options=options).read_text()
    assert "R3GAN (Huang et al., 2024)" in text and needle in text


def test_model_card_reads_eval_json_and_cli_rerenders(model_dir: Path) -> None:
    (model_dir / "training_options.json").write_text(json.dumps(OPTIONS))
    write_model_card(model_dir, model=tiny_model(), options=OPTIONS)
    assert "Not evaluated yet" in (model_dir / "README.md").read_text()
    assert ModelCard.load(model_dir / "README.md").data.eval_results is None
    (model_dir / "eval.json").write_text(json.dumps({"fid": 7.25, "num_samples": 5000}))
    r = run(["-m", "gan", "card", str(model_dir), "--repo", "me/fashion-gan"], {})
    assert r.returncode == 0, r.stderr
    card = ModelCard.load(model_dir / "README.md")
    assert [(e.metric_type, e.metric_value) for e in card.data.eval_results] == [("fid", 7.25)]
    assert 'GAN.from_pretrained("me/fashion-gan")' in card.text and "Not evaluated yet" not in card.text
    assert GAN.from_pretrained(model_dir).config() == tiny_model().config()  # weights untouched


def test_model_card_renders_without_torchmetrics(model_dir: Path) -> None:
    """The card and its metric table render in a process where torchmetrics cannot be imported."""
    (model_dir / "eval.json").write_text(json.dumps(EVAL))
    code = ("import sys; sys.modules['torchmetrics'] = None; from gan.finish import render_card; "
            f"print(render_card({str(model_dir)!r}).read_text())")
    r = run(["-c", code], {})
    assert r.returncode == 0, r.stderr
    assert "| **this model** | 12.50 |" in r.stdout and "## Evaluation" in r.stdout


def test_parse_eval_results_shapes() -> None:
    model, refs, _ = parse_eval_results({"rows": [{"name": "m", "fid": 3.0}, {"name": "ref", "fid": 1.0}]})
    assert model == {"fid": 3.0} and refs == [("ref", {"fid": 1.0})]
    model, refs, info = parse_eval_results({"fid": 3.0, "num_samples": 100, "split": "test"})
    assert model == {"fid": 3.0} and refs == [] and info == {"num_samples": 100, "split": "test"}
    with pytest.raises(ValueError, match="JSON object"):
        parse_eval_results([1, 2])  # type: ignore[arg-type]


# ---- push ----------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("case", ["no-token-offline", "fake-token-unreachable"])
def test_train_push_failure_is_one_clear_line_and_keeps_the_model(case: str, tmp_path: Path,
                                                                  fake_fashion: Path) -> None:
    out = tmp_path / "run"
    env = {"HF_HOME": str(tmp_path / "hf")}  # no cached login either
    if case == "no-token-offline":
        env["HF_HUB_OFFLINE"] = "1"
        expected = "no Hugging Face token: set HF_TOKEN or run `hf auth login`"
    else:
        env.update(HF_TOKEN="hf_testFAKEtoken0123456789abcdef", HF_ENDPOINT="http://127.0.0.1:9")
        expected = "could not reach the Hugging Face Hub"
    r = run_train_py(tiny_args(fake_fashion, out, "--push-to-hub", "me/x"), env=clean_env(**env))
    assert r.returncode != 0
    errors = error_lines(r.stderr)
    assert len(errors) == 1 and expected in errors[0], r.stderr[-2000:]
    line = errors[0]
    assert f"saved locally in {out}" in line
    if case != "no-token-offline":
        assert f"push it later with: fashion-gan push {out} me/x" in line
        assert env["HF_TOKEN"] not in r.stderr + r.stdout
    model = GAN.from_pretrained(out)
    assert model.generate(2, seed=0, labels=1).shape == (2, 1, 28, 28)
    assert all((out / f).is_file() for f in MODEL_FOLDER_FILES)


def test_push_cli_refuses_a_non_model_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    r = run(["-m", "gan", "push", str(tmp_path), "me/x"], {"HF_TOKEN": "hf_fake", "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"error: {tmp_path} is not a finished model folder (missing config.json, generator.safetensors, "
        f"discriminator.safetensors); train one with: python train.py --out {tmp_path}"]


@pytest.mark.parametrize("repo_id", ["noslash", "a/b/c", "me/has space", "me/x--y", "/x", "me/"])
def test_push_rejects_bad_repo_ids(repo_id: str, model_dir: Path) -> None:
    with pytest.raises(PushError, match="is not of the form OWNER/NAME"):
        push_folder(model_dir, repo_id, token="hf_fake")


def test_push_uploads_only_model_artifacts(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The upload call gets exactly the top-level artifacts; ckpts/, progress/ and best/ stay local."""
    from huggingface_hub import HfApi
    from huggingface_hub.utils import filter_repo_objects
    for f in ("samples.png", "progress.gif", "metrics.jsonl", "training_options.json", "eval.json"):
        (model_dir / f).write_text("{}")
    write_model_card(model_dir, model=tiny_model(), options=OPTIONS)
    for f in ("ckpts/ckpt-00000002.pt", "progress/step_00000001.png", "best/generator.safetensors",
              "best/config.json", "pytorch_model.bin", ".hidden.json", "config.json.tmp", ".config.json.tmp",
              "classifier.safetensors", "classifier.json", "metric_references.json"):  # the metric classifier: not ours
        (model_dir / f).parent.mkdir(exist_ok=True)
        (model_dir / f).write_text("x")
    calls = {}
    monkeypatch.setattr(HfApi, "repo_info", lambda self, *a, **k: None)
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **k: f"https://hf.test/{repo_id}")
    monkeypatch.setattr(HfApi, "create_branch", lambda self, repo_id, **k: calls.setdefault("branch", k["branch"]))
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **k: calls.setdefault("upload", k))
    url = publish(model_dir, "me/x", revision="dev", token="hf_fake")
    assert url == "https://hf.test/me/x/tree/dev" and calls["branch"] == "dev"
    up = calls["upload"]
    assert up["revision"] == "dev" and Path(up["folder_path"]) == model_dir
    files = sorted(p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file())
    sent = sorted(filter_repo_objects(files, allow_patterns=up["allow_patterns"],
                                      ignore_patterns=up["ignore_patterns"]))
    assert sent == ["README.md", "config.json", "discriminator.safetensors", "eval.json", "generator.safetensors",
                    "metrics.jsonl", "progress.gif", "samples.png", "training_options.json"]
    assert up["allow_patterns"] == UPLOAD_PATTERNS and up["ignore_patterns"] == UPLOAD_IGNORE
    assert 'GAN.from_pretrained("me/x")' in (model_dir / "README.md").read_text()  # the card names the repo
    assert not [f for f in filter_repo_objects(["x.bin", "x.pt", "x.pkl", "x.ckpt"], allow_patterns=DOWNLOAD_PATTERNS)]


@pytest.mark.parametrize("first_line, refreshed", [
    ("<!-- generated by gan.modelcard; re-render with: python -m gan.modelcard DIR -->", True),  # an older card
    ("# My own card", False),  # hand-written: pushed as it is
])
def test_publish_refreshes_generated_cards_only(model_dir: Path, monkeypatch: pytest.MonkeyPatch, first_line: str,
                                               refreshed: bool) -> None:
    import gan.hub
    (model_dir / "README.md").write_text(f"{first_line}\nold text\n")
    monkeypatch.setattr(gan.hub, "push_folder", lambda folder, repo_id, **k: f"https://hf.test/{repo_id}")
    assert publish(model_dir, "me/x", token="hf_fake") == "https://hf.test/me/x"
    card = (model_dir / "README.md").read_text()
    assert ('GAN.from_pretrained("me/x")' in card and "fashion-gan card DIR" in card) is refreshed
    assert ("old text" in card) is not refreshed


def test_gan_push_to_hub_is_the_mixins_with_a_short_card(monkeypatch: pytest.MonkeyPatch) -> None:
    """GAN.push_to_hub is huggingface_hub's own: config, weights and the card of GAN.generate_model_card."""
    from huggingface_hub import HfApi, RepoUrl
    calls: dict = {}

    def upload(self, **k):
        folder = Path(k["folder_path"])
        calls["files"] = sorted(p.name for p in folder.iterdir())
        calls["card"] = (folder / "README.md").read_text()
        calls["loaded"] = GAN.from_pretrained(folder).generate(2, seed=0, labels=1)
        calls.update(k)
        return "https://hf.test/me/x/commit/1"

    def create(self, repo_id, **k):
        calls["private"] = k["private"]
        return RepoUrl(f"https://huggingface.co/{repo_id}")
    monkeypatch.setattr(HfApi, "create_repo", create)
    monkeypatch.setattr(HfApi, "upload_folder", upload)
    model = tiny_model()
    url = model.push_to_hub("me/x", token="hf_fake", branch="dev", commit_message="first", private=True,
                            model_card_kwargs={"repo_id": "me/x"})
    assert url == "https://hf.test/me/x/commit/1" and calls["private"] is True
    assert calls["revision"] == "dev" and calls["commit_message"] == "first" and calls["repo_type"] == "model"
    assert calls["files"] == ["README.md", "config.json", "discriminator.safetensors", "generator.safetensors"]
    card = ModelCard(calls["card"])
    assert card.data.license == "mit" and "gan" in card.data.tags
    assert 'GAN.from_pretrained("me/x")' in card.text and "Classes: T-shirt/top, Trouser" in card.text
    assert torch.equal(calls["loaded"], model.generate(2, seed=0, labels=1))


def test_pretrained_knows_neither_the_hub_module_nor_the_card() -> None:
    """The model folder layer (gan.pretrained) loads and saves; publishing lives above it (gan.finish)."""
    code = ("import sys, gan.pretrained; print(sorted(m for m in ('gan.hub', 'gan.modelcard', 'gan.scoring') "
            "if m in sys.modules))")
    r = run(["-c", code], {})
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


def test_push_errors_never_show_the_token(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx2
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError
    token = "hf_SECRETsecret0123456789"

    def refuse(self, repo_id, **kwargs):
        response = httpx2.Response(401, request=httpx2.Request("POST", "https://hf.test/api/repos/create"))
        raise HfHubHTTPError(f"401 Unauthorized: invalid token {token}", response=response)
    monkeypatch.setattr(HfApi, "repo_info", lambda self, *a, **k: None)
    monkeypatch.setattr(HfApi, "create_repo", refuse)
    with pytest.raises(PushError) as info:
        push_folder(model_dir, "me/x", token=token)
    assert "refused the token for me/x (HTTP 401)" in str(info.value) and token not in str(info.value)
    def fail(self, repo_id, **kwargs):
        response = httpx2.Response(500, request=httpx2.Request("POST", "https://hf.test/api/repos/create"))
        raise HfHubHTTPError(f"500 boom {token}", response=response)
    monkeypatch.setattr(HfApi, "create_repo", fail)
    with pytest.raises(PushError, match=r"rejected the push to me/x \(500 boom \*\*\*\)"):
        push_folder(model_dir, "me/x", token=token)


# ---- the app's model ---------------------------------------------------------------------------------------
def test_resolve_falls_back_to_embedded_when_hub_unreachable(model_dir: Path, hub_env: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAN_MODEL_REPO", "owner/name")
    monkeypatch.setenv("GAN_MODEL_REVISION", "v1")
    source = source_from_env(fallback=model_dir)
    assert source.kind == "embedded" and source.folder == model_dir
    assert source.warning and "owner/name@v1" in source.warning and "Connection refused" in source.warning
    model, loaded_from = load_model(repo="owner/name", fallback=model_dir)
    assert loaded_from.kind == "embedded" and loaded_from.warning
    assert torch.equal(model.generate(3, seed=0, labels=1), tiny_model().generate(3, seed=0, labels=1))


def test_resolve_uses_the_cached_snapshot_when_hub_unreachable(model_dir: Path, hub_env: Path) -> None:
    populate_cache(hub_env, "owner/name", model_dir)
    source = resolve_model("owner/name", fallback=model_dir.parent / "nowhere")
    assert source.kind == "hub" and source.folder.name == COMMIT
    assert source.warning and "unreachable" in source.warning and "cached snapshot" in source.warning


def test_resolve_falls_back_when_the_snapshot_is_broken(model_dir: Path, hub_env: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    populate_cache(hub_env, "owner/name", model_dir, files=["config.json", "README.md"])
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    source = resolve_model("owner/name", fallback=model_dir)
    assert source.kind == "embedded" and "missing generator.safetensors" in source.warning
    # a snapshot whose weights are corrupted is caught at load time, with the same fallback
    bad = model_dir.parent / "bad"
    GAN.from_pretrained(model_dir).save_pretrained(bad)
    (bad / "generator.safetensors").write_bytes(b"garbage")
    cache2 = hub_env.parent / "hub2"
    populate_cache(cache2, "owner/bad", bad)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache2))
    model, source = load_model(repo="owner/bad", fallback=model_dir)
    assert source.kind == "embedded" and "could not be loaded" in source.warning
    assert "generator.safetensors" in source.warning


def test_resolve_prefers_local_dir_and_names_bad_settings(model_dir: Path, hub_env: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAN_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("GAN_MODEL_REPO", "owner/name")
    source = source_from_env(fallback=model_dir.parent / "nowhere")
    assert source.kind == "local" and source.folder == model_dir.resolve() and source.warning is None
    with pytest.raises(ModelFormatError, match="is not a model folder"):
        load_model(local_dir=str(model_dir.parent / "missing"))
    bad = resolve_model("not a repo id", fallback=model_dir)
    assert bad.kind == "embedded" and "not of the form OWNER/NAME" in bad.warning
    default = resolve_model(fallback=model_dir)
    assert default.kind == "embedded" and default.warning is None and "offline default" in default.description


def test_unresponsive_hub_does_not_stall(model_dir: Path, hub_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that accepts connections and never answers costs about the probe timeout, not forever."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True).start()
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
    try:
        t0 = time.perf_counter()
        source = resolve_model("owner/name", fallback=model_dir, timeout=1.0)
        elapsed = time.perf_counter() - t0
    finally:
        server.close()
    assert source.kind == "embedded" and "timed out" in source.warning
    assert elapsed < 10, elapsed


def test_fashion_gan_finish_and_card_commands(model_dir: Path) -> None:
    """`fashion-gan finish DIR --only ''` renders the card alone; a card names the repo with `card --repo`."""
    (model_dir / "training_options.json").write_text(json.dumps(OPTIONS))
    (model_dir / "README.md").unlink()
    r = run(["-m", "gan.cli", "finish", str(model_dir), "--only", ""], {})
    assert r.returncode == 0, r.stderr
    assert "Trained on CPU" in (model_dir / "README.md").read_text()
    r = run(["-m", "gan.cli", "card", str(model_dir), "--repo", "me/fashion-gan"], {})
    assert r.returncode == 0 and 'GAN.from_pretrained("me/fashion-gan")' in (model_dir / "README.md").read_text()
    r = run(["-m", "gan.cli", "finish", str(model_dir), "--only", "sliders"], {})
    assert r.returncode == 2 and "unknown extra(s) sliders" in r.stderr
    r = run(["-m", "gan.cli", "nope"], {})
    assert r.returncode == 2 and "unknown command 'nope'" in r.stderr


@pytest.mark.parametrize("command, words", [
    (["gan", "--help"], ["directions", "critic", "card", "push", "classifier", "usage: python -m gan COMMAND"]),
    (["gan", "directions", "--help"], ["--fill-seeds", "usage: python -m gan directions"]),
    (["gan", "critic", "--help"], ["--steps", "usage: python -m gan critic"]),
    (["gan", "classifier", "train", "--help"], ["--epochs"]),
    (["gan.latent", "attributes", "--help"], ["--out", "usage: python -m gan.latent attributes"]),
    (["gan.app", "write-examples", "--help"], ["model_dir", "--out"]),
    (["gan.directions", "--help"], ["--fill-seeds", "usage: python -m gan.directions"]),
])
def test_command_lines_live_in_entry_points(command: list[str], words: list[str]) -> None:
    """Every documented command answers through `python -m gan` (= fashion-gan) or a package's __main__.py."""
    r = run(["-m", *command], {}, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    missing = [w for w in words if w not in r.stdout]
    assert not missing, f"{missing} not in: {r.stdout[:1500]}"
