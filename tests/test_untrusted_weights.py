"""Untrusted files never run code: planted pickles are refused with clear errors, no module unpickles,
and the Hub token never lands in a model folder."""

from __future__ import annotations

import ast
import hashlib
import io
import os
import pickle
import re
from pathlib import Path

import pytest
import torch

from conftest import error_lines, run_train_py, subprocess_env, tiny_args
from gan import GAN
from gan.checkpoint import MAGIC, CheckpointError, load_checkpoint, load_latest
from gan.hub import load_model
from gan.pretrained import ModelFormatError

ROOT = Path(__file__).resolve().parent.parent


class Payload:
    """Unpickling this calls open(marker, "w"): creating the marker file proves code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def raw_pickle(marker: Path) -> bytes:
    return pickle.dumps({"weight": Payload(marker)})


def torch_pickle(marker: Path) -> bytes:
    buf = io.BytesIO()
    torch.save({"state": Payload(marker)}, buf)  # a real torch checkpoint zip with a malicious object inside
    return buf.getvalue()


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    GAN(generator={"width": 8, "num_classes": 10}, discriminator={"width": 8, "num_classes": 10},
        class_names=[f"c{i}" for i in range(10)]).save_pretrained(folder)
    return folder


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "PWNED"


def test_payloads_are_live(tmp_path: Path) -> None:
    """Control: unpickled unsafely, both payloads do create their marker (so the tests below can fail)."""
    a, b = tmp_path / "a", tmp_path / "b"
    pickle.loads(raw_pickle(a))
    torch.load(io.BytesIO(torch_pickle(b)), weights_only=False)
    assert a.exists() and b.exists()


@pytest.mark.parametrize("make", [raw_pickle, torch_pickle], ids=["raw-pickle", "torch-save"])
@pytest.mark.parametrize("name", ["generator.safetensors", "discriminator.safetensors"])
def test_pickle_as_safetensors_is_refused(make, name: str, model_dir: Path, marker: Path) -> None:
    (model_dir / name).write_bytes(make(marker))
    with pytest.raises(ModelFormatError, match=re.escape(name) + " is not a valid safetensors file"):
        GAN.from_pretrained(model_dir)
    with pytest.raises(ModelFormatError, match="not a valid safetensors file"):
        load_model(local_dir=str(model_dir))
    assert not marker.exists()


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "generator.pt", "generator.bin", "model.pkl"])
def test_pickle_next_to_the_config_is_never_opened(name: str, model_dir: Path, marker: Path) -> None:
    (model_dir / name).write_bytes(torch_pickle(marker))
    model = GAN.from_pretrained(model_dir)  # the safetensors are loaded; the pickle is ignored
    assert model.generate(2, seed=0, labels=0).shape == (2, 1, 28, 28)
    (model_dir / "generator.safetensors").unlink()  # and it is no fallback when the safetensors are gone
    with pytest.raises(ModelFormatError, match=r"generator\.safetensors is missing"):
        GAN.from_pretrained(model_dir)
    assert not marker.exists()


def test_pickle_as_training_checkpoint_is_refused(tmp_path: Path, marker: Path) -> None:
    ckpts = tmp_path / "run" / "ckpts"
    ckpts.mkdir(parents=True)
    raw = ckpts / "ckpt-00000001.pt"
    raw.write_bytes(torch_pickle(marker))  # a plain torch.save file: no header
    with pytest.raises(CheckpointError, match="not a gan training checkpoint"):
        load_checkpoint(raw)
    payload = torch_pickle(marker)  # forged: right header and checksum, malicious payload
    forged = ckpts / "ckpt-00000002.pt"
    forged.write_bytes(MAGIC + hashlib.sha256(payload).digest() + payload)
    with pytest.raises(CheckpointError, match="could not be loaded safely"):
        load_checkpoint(forged)
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        load_latest(ckpts)
    assert not marker.exists()


@pytest.mark.slow
def test_train_resume_refuses_a_planted_checkpoint(tmp_path: Path, marker: Path, fake_fashion: Path) -> None:
    out = tmp_path / "run"
    (out / "ckpts").mkdir(parents=True)
    payload = torch_pickle(marker)
    (out / "ckpts" / "ckpt-00000001.pt").write_bytes(MAGIC + hashlib.sha256(payload).digest() + payload)
    r = run_train_py(tiny_args(fake_fashion, out, "--resume"))
    assert r.returncode != 0
    errors = error_lines(r.stderr)
    assert len(errors) == 1 and "could not be loaded safely" in errors[0], r.stderr[-2000:]
    assert not marker.exists() and not (out / "config.json").exists()


# ---- source scan -----------------------------------------------------------------------------------------------
def _sources() -> list[Path]:
    files = sorted((ROOT / "gan").rglob("*.py"))
    files += [p for p in (ROOT / "app.py", ROOT / "train.py") if p.is_file()]
    return files


def test_no_module_unpickles() -> None:
    """torch.load only with weights_only=True; no pickle/dill/joblib loads; no allow_pickle=True."""
    problems = []
    for path in _sources():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if any(str(n).split(".")[0] in ("pickle", "dill", "cloudpickle", "joblib", "_pickle") for n in names):
                    problems.append(f"{where}: imports a pickle library")
                if isinstance(node, ast.ImportFrom) and node.module == "torch" and "load" in names:
                    problems.append(f"{where}: `from torch import load` hides torch.load from this check")
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            kw = {k.arg: k.value for k in node.keywords}
            if isinstance(func, ast.Attribute) and func.attr == "load" and isinstance(func.value, ast.Name) \
                    and func.value.id == "torch":
                wo = kw.get("weights_only")
                if not (isinstance(wo, ast.Constant) and wo.value is True):
                    problems.append(f"{where}: torch.load without weights_only=True")
            if isinstance(func, ast.Attribute) and func.attr in ("load", "loads", "Unpickler") and \
                    isinstance(func.value, ast.Name) and func.value.id in ("pickle", "dill", "cloudpickle", "joblib"):
                problems.append(f"{where}: {func.value.id}.{func.attr}")
            allow = kw.get("allow_pickle")
            if isinstance(allow, ast.Constant) and allow.value is True:
                problems.append(f"{where}: allow_pickle=True")
    assert not problems, "\n".join(problems)
    assert any(p.name == "checkpoint.py" for p in _sources())  # the scan does see the one torch.load


def test_remote_code_is_never_trusted() -> None:
    needle = "trust_remote" + "_code"
    skip = {".git", "runs", "__pycache__", ".pytest_cache", "node_modules", "data"}
    hits = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
            if p.is_file() and p.suffix in (".py", ".md", ".txt", ".toml", ".cfg", ".json", ".yaml", ".yml", ".sh")
            and not skip & set(p.relative_to(ROOT).parts) and needle in p.read_text(errors="ignore")]
    assert not hits, hits


@pytest.mark.slow
def test_hub_token_never_lands_in_the_model_folder(tmp_path: Path, fake_fashion: Path) -> None:
    """A fake HF_TOKEN during a tiny run that tries (and fails, offline) to push: no file and no log shows it."""
    token = "hf_FAKEsecret" + os.urandom(8).hex()
    out = tmp_path / "run"
    env = {k: v for k, v in subprocess_env().items() if not k.startswith("HF_")}
    env.update(HF_TOKEN=token, HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1")
    r = run_train_py(tiny_args(fake_fashion, out, "--push-to-hub", "me/x"), env=env)
    assert r.returncode != 0 and "could not reach the Hugging Face Hub" in r.stderr
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {"README.md", "training_options.json", "config.json"} <= {p.name for p in files}
    leaks = [str(p) for p in files if token.encode() in p.read_bytes()]
    assert not leaks and token not in r.stdout + r.stderr
