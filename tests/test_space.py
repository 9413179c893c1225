"""Deploying to a Hugging Face Space (gan.space, `fashion-gan space`): what is staged, the front matter
against the pins and the Spaces rules, and the upload call.  The upload itself needs the network: the
tests go up to the huggingface_hub call (monkeypatched) and check the offline and token errors."""

from __future__ import annotations

import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
from huggingface_hub import SpaceCard

from app_server import free_port
from conftest import subprocess_env
from gan import space
from gan.hub import PushError

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements.txt"


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def no_login_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in subprocess_env().items() if k != "HF_TOKEN"}
    return {**env, "HF_HOME": str(tmp_path / "hf"), **extra}  # no cached login either


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("space") / "staged"
    space.stage_space(out)
    return out


def test_dry_run_stages_and_lists_without_network(tmp_path: Path) -> None:
    out = tmp_path / "space"
    r = run(["-m", "gan.space", "me/fashion-gan-demo", "--dry-run", "--out", str(out)],
            no_login_env(tmp_path, HF_HUB_OFFLINE="1"))
    assert r.returncode == 0, r.stderr
    assert f"staged the Space me/fashion-gan-demo in {out}" in r.stdout and "dry run: nothing uploaded" in r.stdout
    for line in ("checkpoints/", "gan/", "app.py", "requirements.txt", "README.md", "total"):
        assert line in r.stdout
    for f in ("app.py", "README.md", "requirements.txt", "packages.txt", ".gitattributes", "gan/__init__.py",
              "gan/templates/modelcard.md", "gan/assets/classifier/classifier.safetensors",
              "checkpoints/config.json", "checkpoints/generator.safetensors", "checkpoints/directions.json"):
        assert (out / f).is_file(), f"{f} is not staged"
    assert not list(out.rglob("__pycache__")) and not list(out.rglob("*.pt"))


def test_front_matter_matches_the_pins_and_the_spaces_rules(staged: Path) -> None:
    from packaging.specifiers import SpecifierSet
    meta = SpaceCard.load(staged / "README.md").data
    pins = space.read_pins(REQUIREMENTS)
    assert meta.sdk == "gradio" and meta.sdk_version == pins["gradio"]
    assert meta.python_version == space.tested_python(REQUIREMENTS) == "3.11"  # what CI runs
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert meta.python_version + ".0" in SpecifierSet(requires)
    assert 0 < len(meta.short_description) <= 60
    assert (staged / meta.app_file).is_file()
    assert meta.license == "mit" and "fashion_mnist" in meta.datasets


def test_space_requirements_pin_cpu_torch_and_keep_every_other_pin(staged: Path) -> None:
    text = (staged / "requirements.txt").read_text()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in text.splitlines()
    staged_pins = space.read_pins(staged / "requirements.txt")
    repo_pins = space.read_pins(REQUIREMENTS)
    assert staged_pins["torch"] == repo_pins["torch"] + "+cpu"
    assert staged_pins["torchvision"] == repo_pins["torchvision"] + "+cpu"
    assert {k: v for k, v in staged_pins.items() if k not in ("torch", "torchvision")} == \
        {k: v for k, v in repo_pins.items() if k not in ("torch", "torchvision")}


def test_binaries_go_through_lfs_and_nothing_large_is_plain(staged: Path, tmp_path: Path) -> None:
    patterns = space.lfs_patterns(staged / ".gitattributes")
    assert {"*.safetensors", "*.png", "*.gif", "*.mp4"} <= set(patterns)
    assert space.unsafe_for_plain_git(staged, patterns) == []
    binaries = [p for p in staged.rglob("*") if p.suffix in (".safetensors", ".png", ".gif")]
    assert binaries and all(any(p.match(pat) for pat in patterns) for p in binaries)
    (tmp_path / "big.bin").write_bytes(b"\0" * (space.MAX_PLAIN_FILE + 1))
    (tmp_path / "big.safetensors").write_bytes(b"\0" * (space.MAX_PLAIN_FILE + 1))
    assert space.unsafe_for_plain_git(tmp_path, patterns) == ["big.bin"]


def test_short_description_over_60_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(space, "SHORT_DESCRIPTION", "x" * 61)
    with pytest.raises(space.SpaceError, match="61 characters"):
        space.front_matter(REQUIREMENTS)


def test_upload_goes_to_a_gradio_space(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from huggingface_hub import HfApi, RepoUrl
    calls: dict = {}
    monkeypatch.setenv("HF_TOKEN", "hf_fakeFAKEfake0123456789")
    monkeypatch.setattr(HfApi, "repo_info", lambda self, *a, **k: calls.setdefault("probe", k))
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **k: calls.setdefault("create", (repo_id, k))
                        and RepoUrl(f"https://huggingface.co/spaces/{repo_id}"))

    def upload(self, **k):
        calls["upload"] = k
        calls["staged"] = sorted(p.relative_to(k["folder_path"]).as_posix() for p in Path(k["folder_path"]).rglob("*"))
    monkeypatch.setattr(HfApi, "upload_folder", upload)
    out = tmp_path / "space"
    url = space.deploy("me/demo", out=out, private=True, hardware="cpu-basic", log=lambda s: None)
    assert url == "https://huggingface.co/spaces/me/demo"
    assert calls["probe"]["repo_type"] == "space"
    repo_id, create = calls["create"]
    assert repo_id == "me/demo" and create["repo_type"] == "space" and create["space_sdk"] == "gradio"
    assert create["private"] is True and create["exist_ok"] is True and create["space_hardware"] == "cpu-basic"
    up = calls["upload"]
    assert up["repo_id"] == "me/demo" and up["repo_type"] == "space" and Path(up["folder_path"]) == out
    assert "app.py" in calls["staged"] and "checkpoints/generator.safetensors" in calls["staged"]
    assert "gan/*" in up["delete_patterns"]  # modules removed from the package leave the Space too


def test_without_a_token_it_says_so_before_any_work(tmp_path: Path) -> None:
    r = run(["-m", "gan.space", "me/demo", "--out", str(tmp_path / "space")],
            no_login_env(tmp_path, HF_HUB_OFFLINE="1"))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "error: no Hugging Face token: set HF_TOKEN or run `hf auth login`; or stage and list the Space without "
        "uploading: fashion-gan space me/demo --dry-run"]
    assert not (tmp_path / "space").exists()


def test_offline_it_is_one_clear_line_and_the_staged_folder_stays(tmp_path: Path) -> None:
    token = "hf_testFAKEtoken0123456789abcdef"
    out = tmp_path / "space"
    r = run(["-m", "gan.space", "me/demo", "--out", str(out)],
            no_login_env(tmp_path, HF_TOKEN=token, HF_ENDPOINT="http://127.0.0.1:9"))
    assert r.returncode == 1
    [line] = r.stderr.strip().splitlines()
    assert line.startswith("error: could not reach the Hugging Face Hub at http://127.0.0.1:9")
    assert f"the Space is staged in {out}; upload it later with: fashion-gan space me/demo" in line
    assert token not in r.stderr + r.stdout and (out / "app.py").is_file()


def test_bad_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="OWNER/NAME"):
        space.deploy("not a repo", dry_run=True)
    with pytest.raises(space.SpaceError, match="not a model folder"):
        space.stage_space(tmp_path / "s", model_dir=tmp_path)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(space.SpaceError, match="not empty"):
        space.stage_space(tmp_path / "busy")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    with pytest.raises(PushError, match="not a staged Space"):
        from gan.hub import push_space
        push_space(tmp_path, "me/demo", token="hf_fake")


@pytest.mark.slow
def test_the_staged_space_runs_on_its_own(staged: Path, tmp_path: Path) -> None:
    """app.py started inside the staged folder (its own gan/ and checkpoints/) serves /generate."""
    gradio_client = pytest.importorskip("gradio_client")
    port = free_port()
    env = {k: v for k, v in subprocess_env().items() if k not in ("PYTHONPATH", "GAN_MODEL_DIR", "GAN_MODEL_REPO")}
    env.update(GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1",
               GAN_APP_SCRATCH=str(tmp_path / "scratch"))
    log = open(tmp_path / "space.log", "wb")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=staged, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        t0 = time.time()
        while time.time() - t0 < 120:
            assert proc.poll() is None, (tmp_path / "space.log").read_text()[-2000:]
            try:
                urllib.request.urlopen(url + "gradio_api/info", timeout=2)
                break
            except OSError:
                time.sleep(0.3)
        client = gradio_client.Client(url, verbose=False)
        png = client.predict(seed=1, class_name="Bag", api_name="/generate")
        assert Path(png).is_file()
        client.close()
        assert "Traceback" not in (tmp_path / "space.log").read_text()
    finally:
        proc.terminate()
        proc.wait(10)
