"""pyproject.toml: the package ships every data file gan/ reads, and requirements.txt pins lie in its ranges."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

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
