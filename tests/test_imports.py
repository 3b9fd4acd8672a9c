"""The import graph of genphys: every module imports on its own, no cycles, one-way layers.

The graph is read from the source with ``ast`` (relative imports inside the package, at
any depth, so imports deferred into functions count too), and each module is also
imported in a fresh interpreter, so a cycle that only bites at import time cannot hide
behind an already-populated ``sys.modules``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lib" / "genphys"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
                candidates = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("genphys"):
                candidates = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names if a.name.startswith("genphys")]
            else:
                continue
            graph[name] |= {c for c in candidates if c in modules and c != name}
    return graph


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


GRAPH = _graph()


def test_the_graph_was_read():
    assert "genphys.fitting" in GRAPH["genphys.vae"]
    assert "genphys.rbm" in GRAPH["genphys.training"]


def test_no_cycles():
    # the package __init__ imports submodules lazily on attribute access only
    for name in GRAPH:
        if name == "genphys":
            continue
        assert name not in _reachable(GRAPH, name), f"{name} imports itself through a cycle"


@pytest.mark.parametrize(
    "name",
    [
        "genphys.autoencoder",
        "genphys.pca",
        "genphys.vae",
        "genphys.gaussian",
        "genphys.linear_gaussian",
        "genphys.fitting",
        "genphys.seeding",
    ],
)
def test_the_autoencoder_and_vae_side_never_reaches_the_rbm_trainer(name):
    reached = _reachable(GRAPH, name)
    assert "genphys.training" not in reached and "genphys.rbm" not in reached, sorted(reached)


def test_models_do_not_depend_on_the_exercises():
    for name in GRAPH:
        if not name.startswith("genphys.exercises") and name != "genphys":
            assert not any(m.startswith("genphys.exercises") for m in _reachable(GRAPH, name))


def test_every_module_imports_in_a_fresh_interpreter():
    names = sorted(n for n in GRAPH if n != "genphys")
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    for m in [m for m in sys.modules if m.startswith('genphys')]:\n"
        "        del sys.modules[m]\n"
        "    importlib.import_module(name)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(PACKAGE.parent), "PATH": ""},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
