"""The package's layout is its architecture: pipeline -> studies -> core, never back.

Checked on the source with ``ast`` (no imports executed): a core module imports only core
modules; a study imports core modules and the studies it builds on, never the pipeline;
nothing outside the pipeline imports it (the notebooks included).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from simplecnn.core.paths import NOTEBOOKS, ROOT

PACKAGE = ROOT / "src" / "simplecnn"
LAYERS = {"core": 0, "studies": 1, "pipeline": 2}


def imported_layers(path: Path) -> set[tuple[str, int]]:
    """(imported module, line) pairs for every ``simplecnn.*`` import in a file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("simplecnn"):
            names = [node.module] if node.module != "simplecnn" else [f"simplecnn.{a.name}" for a in node.names]
            found |= {(n, node.lineno) for n in names}
        elif isinstance(node, ast.Import):
            found |= {(a.name, node.lineno) for a in node.names if a.name.startswith("simplecnn")}
    return found


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_dependencies_point_one_way(path):
    own = path.relative_to(PACKAGE).parts[0]
    for module, line in imported_layers(path):
        if module == "simplecnn.__version__":  # the package's version string, part of cache keys
            continue
        target = layer_of(module)
        assert target is not None, f"{path.name}:{line} imports {module}, outside core/studies/pipeline"
        assert LAYERS[target] <= LAYERS[own], f"{own}/{path.name}:{line} imports {module}: {own} must not depend on {target}"


def test_notebooks_use_core_and_studies_only():
    for nb in sorted(NOTEBOOKS.glob("*.py")):
        for module, line in imported_layers(nb):
            assert layer_of(module) in ("core", "studies"), f"{nb.name}:{line} imports {module}"


def test_the_checker_catches_a_backward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from simplecnn.pipeline.runner import run_all\nfrom simplecnn import studies\n")
    assert {layer_of(m) for m, _ in imported_layers(bad)} == {"pipeline", "studies"}


def test_every_module_says_what_it_holds():
    for path in MODULES:
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and len(doc) > 40, f"{path.relative_to(PACKAGE)} needs a module docstring saying what it holds and why"
