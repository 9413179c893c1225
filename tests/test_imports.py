"""Imports go only down the layers of docs/architecture.md, and never in a circle.

Every module of gan/ is parsed with `ast`; every import counts, function-local ones and those under
`if __name__ == "__main__":` included (only entry points may have such a block; a library module's command
line lives in gan/cli.py or a package's cli.py and __main__.py); imports under `if TYPE_CHECKING:` never run
and are left out.  A `from pkg import name` counts as an
import of the submodule pkg.name when that is a module, else of pkg.  Importing a package runs its
__init__ first; those implicit edges are left out, explicit ones (`from gan import GAN`) are not.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
GAN_DIR = ROOT / "gan"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# The layer table of docs/architecture.md, once.  A module may import modules of its own layer or of the
# layers below it (never in a circle); ENTRY modules (command lines, the package facade) may import anything.
ENTRY = 99
LAYERS: dict[str, int] = {
    "fileio": 0, "hardware": 0,
    "models": 1, "losses": 1, "augment": 1, "data": 1, "classifier": 1, "images": 1, "visualize": 1,
    "pretrained": 2, "checkpoint": 2,
    "evalreport": 3, "modelcard": 3, "hub": 3,
    "metrics": 4, "latent": 4, "scoring": 4, "game": 4, "zoo": 4,
    "finish": 5, "train": 5,
    "app": 6,
    # entry points: parse arguments, then call one library function
    "__init__": ENTRY, "cli": ENTRY, "space": ENTRY, "sample": ENTRY, "evaluate": ENTRY, "directions": ENTRY,
}
LAYER_NAMES = {0: "files", 1: "nets and data", 2: "model folder", 3: "reports and Hub", 4: "analysis",
               5: "training and finishing", 6: "app", ENTRY: "entry points"}
# besides the layer rule: the app never imports the training code, and nothing below the app imports it
FORBIDDEN = {("app", "train"), ("app", "finish")}
# command-line modules inside a package (they parse arguments, then call the library)
ENTRY_MODULES = {"gan.scoring.cli", "gan.game.cli", "gan.latent.cli", "gan.app.cli", "gan.train.cli", "gan.zoo.cli"}


def module_name(path: Path) -> str:
    """gan/scoring/critic.py -> gan.scoring.critic; gan/scoring/__init__.py -> gan.scoring."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(GAN_DIR.rglob("*.py"))}


def is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def layer(name: str) -> int:
    """The layer of a gan module (its top-level part under gan/ decides; command lines are entry points)."""
    parts = name.split(".")
    if name == "gan" or name in ENTRY_MODULES or parts[-1] == "__main__":
        return ENTRY
    top = parts[1]
    if top not in LAYERS:
        raise KeyError(f"{name} has no layer: add gan/{top} to LAYERS in tests/test_imports.py and to "
                       f"docs/architecture.md")
    return LAYERS[top]


def _is_main_guard(node: ast.AST) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in node.test.comparators))


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or
                                         (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _resolve(importer: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The gan modules an import statement loads (submodules for `from pkg import module`)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name == "gan" or a.name.startswith("gan.")]
    if node.level:
        base = importer.split(".") if is_package(importer) else importer.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not (target == "gan" or target.startswith("gan.")):
        return []
    out = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        out.append(sub if sub in MODULES else target)
    return out


def imports_of(name: str) -> list[tuple[str, str, int]]:
    """(importer, imported, line) for every import in module `name`, wherever it stands."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    edges: list[tuple[str, str, int]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_type_checking(child):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                edges.extend((name, t, child.lineno) for t in _resolve(name, child) if t != name)
            visit(child)

    visit(tree)
    return edges


def main_blocks(name: str) -> list[int]:
    """Lines of the `if __name__ == "__main__":` blocks of module `name`."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    return [node.lineno for node in ast.walk(tree) if _is_main_guard(node)]


EDGES = [e for m in MODULES for e in imports_of(m)]


def find_cycles(edges: list[tuple[str, str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for a, b, _ in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def upward(edges: list[tuple[str, str, int]]) -> list[str]:
    """Imports that go up a layer, or cross a forbidden pair, as 'importer:line -> imported' lines."""
    bad = []
    for a, b, line in edges:
        la, lb = layer(a), layer(b)
        pair = (a.split(".")[1] if "." in a else a, b.split(".")[1] if "." in b else b)
        if lb > la or pair in FORBIDDEN:
            bad.append(f"{a}:{line} ({LAYER_NAMES[la]}) imports {b} ({LAYER_NAMES[lb]})")
    return bad


def test_every_module_has_a_layer() -> None:
    for name in MODULES:
        layer(name)


def test_no_import_circle() -> None:
    cycles = find_cycles(EDGES)
    assert not cycles, "imports in a circle:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_imports_go_only_down_the_layers() -> None:
    bad = upward(EDGES)
    assert not bad, "imports that go up a layer (see docs/architecture.md):\n" + "\n".join(bad)


def test_only_entry_points_have_a_main_block() -> None:
    """A library module is no command: `python -m gan.sample` and the like are entry points (layer ENTRY),
    every other command goes through gan/cli.py (`fashion-gan`, `python -m gan`) or a package's __main__.py."""
    bad = [f"{m}:{line}" for m in MODULES if layer(m) != ENTRY for line in main_blocks(m)]
    assert not bad, ("library modules with an `if __name__ == \"__main__\":` block (move the command to gan/cli.py "
                     "or the package's cli.py):\n" + "\n".join(bad))


def test_the_checker_sees_main_blocks_and_their_imports() -> None:
    code = "import sys\nif __name__ == '__main__':\n    from gan.cli import main\n    sys.exit(main())\n"
    tree = ast.parse(code)
    assert [n.lineno for n in ast.walk(tree) if _is_main_guard(n)] == [2]
    assert _resolve("gan.hub", tree.body[1].body[0]) == ["gan.cli"]  # read as any other import of gan.hub
    assert "gan.sample" in MODULES and layer("gan.sample") == ENTRY  # `python -m gan.sample` stays a command


def test_the_checker_sees_local_imports_and_cycles() -> None:
    edges = [("gan.a", "gan.b", 1), ("gan.b", "gan.c", 2), ("gan.c", "gan.a", 3), ("gan.c", "gan.d", 4)]
    assert find_cycles(edges) == [["gan.a", "gan.b", "gan.c"]]
    # a function-local import is seen like a top-level one
    pretrained_edges = {b for a, b, _ in EDGES if a == "gan.pretrained"}
    assert "gan.models" in pretrained_edges
    code = "def f():\n    from .hub import push_folder\n"
    tree = ast.parse(code)
    node = tree.body[0].body[0]
    assert _resolve("gan.pretrained", node) == ["gan.hub"]
    assert layer("gan.hub") > layer("gan.pretrained")  # so that import would be reported as upward


def test_the_layer_table_matches_docs_architecture() -> None:
    """Every layer's modules in the table of docs/architecture.md are in the same layer here."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d) [^|]*\| ([^|]*)\|", text, flags=re.M)
    assert len(rows) >= 6, "docs/architecture.md lost its layer table"
    for number, modules in rows:
        for mod in re.findall(r"`([a-z_]+)(?:\.py|/)`", modules):
            assert LAYERS.get(mod) == int(number), f"docs/architecture.md puts {mod} in layer {number}, " \
                                                   f"tests/test_imports.py in {LAYERS.get(mod)}"
