"""The README's Python examples run as written, on the shipped model (checkpoints/) and the app serving it.

Every ```python block of README.md (and of docs/app.md) is one of two kinds, and each is executed here:
- a gradio_client example: run against `python app.py` serving checkpoints/ (its localhost URL is
  replaced by the test server's; "my_shirt.jpg" is a real Fashion-MNIST test image);
- a `from gan import GAN` example: run from the repository root, as a reader of the README would.
A block of any other kind fails the test, so a new example cannot slip in untested.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from app_server import ROOT

README = ROOT / "README.md"
DOCS = [README, ROOT / "docs" / "app.md"]  # the pages whose python blocks are run
SHIPPED = ROOT / "checkpoints"
EXAMPLE_IMAGE = ROOT / "assets" / "examples" / "real_t_shirt_top_test19.png"
LOCAL_URL = "http://localhost:7860/"

pytestmark = pytest.mark.skipif(not (SHIPPED / "config.json").is_file(), reason="no shipped model")


def python_blocks(text: str) -> list[str]:
    """The contents of every ```python fenced block of a Markdown text, in order."""
    return [m.group(1) for m in re.finditer(r"^```python\n(.*?)^```", text, flags=re.S | re.M)]


def kind(block: str) -> str:
    """'client' (gradio_client against the app), 'library' (from gan import GAN) or 'unknown'."""
    if "gradio_client" in block:
        return "client"
    if "from gan import GAN" in block:
        return "library"
    return "unknown"


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))
DOC_BLOCKS = [b for page in DOCS for b in python_blocks(page.read_text(encoding="utf-8"))]


def test_the_readme_has_both_kinds_of_example_and_no_other() -> None:
    kinds = [kind(b) for b in BLOCKS]
    assert all(kind(b) != "unknown" for b in DOC_BLOCKS), "a docs/app.md python block is of neither kind"
    assert "client" in kinds and "library" in kinds, f"README python blocks: {kinds}"
    assert "unknown" not in kinds, "a README python block is neither a gradio_client nor a `from gan` example: " \
                                   "teach tests/test_readme.py to run it"


def test_block_extraction_sees_every_fence() -> None:
    text = "intro\n```python\na = 1\n```\n```bash\nls\n```\n```python\nb = 2\n```\n"
    assert python_blocks(text) == ["a = 1\n", "b = 2\n"]


@pytest.mark.parametrize("block", [b for b in DOC_BLOCKS if kind(b) == "library"])
def test_library_example_runs_on_the_shipped_model(block: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    monkeypatch.chdir(ROOT)  # the README's commands run from the repository root
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    scope: dict = {}
    exec(compile(block, "README.md (python example)", "exec"), scope)  # noqa: S102 (our own README)
    images = [v for v in scope.values() if isinstance(v, torch.Tensor)]
    assert images, "the example should produce images"
    for x in images:
        assert x.ndim == 4 and x.shape[1:] == (1, 28, 28) and x.min() >= -1 and x.max() <= 1


@pytest.fixture(scope="module")
def shipped_url(request) -> str:
    return request.getfixturevalue("shipped_app_server").url


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for b in DOC_BLOCKS if kind(b) == "client"])
def test_client_example_runs_against_the_app_serving_the_shipped_model(
        block: str, shipped_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gradio_client")
    assert LOCAL_URL in block, f"the client example should connect to {LOCAL_URL}"
    shutil.copy(EXAMPLE_IMAGE, tmp_path / "my_shirt.jpg")  # Pillow reads it by content, as the app does
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    code = block.replace(LOCAL_URL, shipped_url)
    exec(compile(code, "README.md (gradio_client example)", "exec"), scope)  # noqa: S102 (our own README)
    client = scope["client"]
    try:
        # what the example's variables hold: the files exist, and the /directions answer names its sliders
        for name, value in scope.items():
            if isinstance(value, str) and Path(value).is_absolute():
                assert Path(value).is_file(), f"{name} = {value} is not a file"
        if "sliders" in scope and isinstance(scope["sliders"], list):
            names = {s["name"] for s in scope["sliders"]}
            used = set(re.findall(r'sliders=\{"([^"]+)"', block))
            assert used <= names, f"the example moves {used - names}, which the shipped model lacks ({names})"
    finally:
        client.close()


@pytest.mark.parametrize("page", ["README.md", "docs/model.md", "docs/training.md", "docs/critic.md", "docs/app.md",
                                  "docs/sliders.md", "docs/hub.md", "docs/reliability.md", "docs/architecture.md"])
def test_relative_links_resolve(page: str) -> None:
    path = ROOT / page
    missing = [m.group(1) for m in re.finditer(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8"))
               if not m.group(1).startswith(("http://", "https://")) and not (path.parent / m.group(1)).exists()]
    assert not missing, f"{page} links to missing files: {missing}"
