"""pyproject.toml: the package ships every data file gan/ reads, and requirements.txt pins lie in its ranges."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from app_server import free_port

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(req: str) -> str:
    return re.sub(r"[-_.]+", "-", Requirement(req).name).lower()


def test_package_data_covers_every_non_python_file() -> None:
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["gan"]
    data = [p.relative_to(ROOT / "gan").as_posix() for p in (ROOT / "gan").rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert "assets/classifier/classifier.safetensors" in data and "templates/modelcard.md" in data
    missing = [f for f in data if not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    assert not missing, f"files under gan/ that `pip install` would leave out: {missing}"


def test_requirements_pins_satisfy_the_package_ranges() -> None:
    project = PYPROJECT["project"]
    ranges = {_name(r): Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["app"]}
    pins = [Requirement(line) for line in (ROOT / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert {_name(str(p)) for p in pins} == set(ranges), "requirements.txt and pyproject.toml name different packages"
    for pin in pins:
        version = next(iter(pin.specifier)).version
        assert ranges[_name(str(pin))].specifier.contains(version), f"{pin} is outside {ranges[_name(str(pin))]}"


def test_every_subpackage_is_listed() -> None:
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "gan").rglob("__init__.py")}
    assert found <= listed, f"packages pyproject.toml does not install: {sorted(found - listed)}"
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {"gan.checkpoints": "checkpoints",
                                                                    "gan.examples": "assets/examples"}


def test_the_console_script_and_its_commands() -> None:
    assert PYPROJECT["project"]["scripts"] == {"fashion-gan": "gan.cli:main"}
    from gan.cli import _commands
    assert {"train", "app", "sample", "evaluate", "push", "space"} <= set(_commands())


def test_the_pypi_readme_has_no_space_front_matter() -> None:
    readme = (ROOT / PYPROJECT["project"]["readme"]).read_text(encoding="utf-8")
    assert not readme.startswith("---"), "the PyPI readme starts with YAML front matter (the Space's is generated)"


def _fresh_venv(venv: Path) -> Path:
    """A new venv with no packages of its own that sees the running interpreter's (a .pth file): not the base
    interpreter's, whose setuptools may be older than PEP 639 needs. Returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    seen = [p for p in sys.path if p and Path(p).is_dir() and not Path(p).resolve().is_relative_to(ROOT)]
    py = venv / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    Path(purelib, "running-interpreter.pth").write_text("".join(f"{p}\n" for p in seen))
    return py


def _build_wheel(src: Path, out: Path) -> Path:
    """The wheel of src, built by the interpreter that runs the tests (isolated when its setuptools is too old)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        in_place = int(version("setuptools").split(".")[0]) >= 77  # PEP 639: license = "MIT"
    except PackageNotFoundError:
        in_place = False
    flags = ["--no-build-isolation", "--no-index"] if in_place else []  # else pip fetches a new setuptools
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", *flags, "-q", "-w", str(out), str(src)],
                       capture_output=True, text=True, timeout=600, cwd=src.parent)
    assert r.returncode == 0, r.stderr[-2000:]
    wheels = list(out.glob("fashion_gan-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.mark.slow
def test_pip_install_gives_the_command_and_a_model_outside_the_checkout(tmp_path: Path) -> None:
    """The wheel installed into a fresh venv (that sees the test's packages: nothing is downloaded): the command
    runs, and the shipped model loads and the app serves it from the installed package, in a folder that is
    not the checkout. Works from the system Python and from inside a venv."""
    venv = tmp_path / "venv"
    py, bin_dir = _fresh_venv(venv), venv / "bin"
    src = tmp_path / "src"  # a copy, so that the build leaves nothing in the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "app.py"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("gan", "checkpoints", "assets"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheel = _build_wheel(src, tmp_path / "wheels")
    # installing a wheel needs no setuptools; --ignore-installed: a copy in the test's own packages stays there
    r = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "-q",
                        str(wheel)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GAN_", "PYTHONPATH"))}
    env.update(PATH=f"{bin_dir}:{env.get('PATH', '')}", HF_HUB_OFFLINE="1")
    work = tmp_path / "elsewhere"
    work.mkdir()

    def cmd(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), capture_output=True, text=True, timeout=300, cwd=work, env=env)
    r = cmd(str(bin_dir / "fashion-gan"), "--help")
    assert r.returncode == 0 and "space" in r.stdout and "train" in r.stdout, r.stderr
    r = cmd(str(bin_dir / "fashion-gan"), "resolve")
    assert r.returncode == 0, r.stderr
    folder = Path(r.stdout.split("folder: ")[1].strip())
    assert folder.is_relative_to(venv) and folder.name == "checkpoints", r.stdout
    r = cmd(str(py), "-c", "import gan; from gan.hub import load_from_env; m, s = load_from_env(); "
                           "from gan.app.examples import example_images; "
                           "print(gan.__file__, s.kind, tuple(m.generate(2, seed=0, labels=3).shape), "
                           "len(example_images()))")
    assert r.returncode == 0, r.stderr
    n_examples = len(list((ROOT / "assets" / "examples").glob("*.png")))  # the Score tab's examples come along
    assert n_examples and str(venv) in r.stdout and f"embedded (2, 1, 28, 28) {n_examples}" in r.stdout
    r = cmd(str(bin_dir / "fashion-gan"), "sample", "--model", str(folder), "--n", "4", "--out", "s.npz")
    assert r.returncode == 0 and (work / "s.npz").is_file(), r.stderr
    r = cmd(str(bin_dir / "fashion-gan"), "train", "--help")
    assert r.returncode == 0 and "--push-to-hub" in r.stdout and "fashion-gan train" in r.stdout
    port = free_port()
    log = tmp_path / "app.log"
    app = subprocess.Popen([str(bin_dir / "fashion-gan"), "app", "--port", str(port)], cwd=work,
                           env={**env, "GAN_APP_SCRATCH": str(tmp_path / "scratch"),
                                "GRADIO_ANALYTICS_ENABLED": "False"},
                           stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    try:
        info = None
        for _ in range(600):
            assert app.poll() is None, log.read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/gradio_api/info", timeout=2) as resp:
                    info = json.loads(resp.read())
                break
            except OSError:
                time.sleep(0.2)
        assert info and "/generate" in info["named_endpoints"], log.read_text()[-2000:]
    finally:
        app.terminate()
        app.wait(10)
