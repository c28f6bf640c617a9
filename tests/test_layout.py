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


def violations(path: Path, own: str) -> list[str]:
    """Every import of ``path`` (a module of layer ``own``) that points the wrong way."""
    found = []
    for module, line in sorted(imported_layers(path)):
        if module == "simplecnn.__version__":  # the package's version string, part of cache keys
            continue
        target = layer_of(module)
        if target is None:
            found.append(f"{path.name}:{line} imports {module}, outside core/studies/pipeline")
        elif LAYERS[target] > LAYERS[own]:
            found.append(f"{own}/{path.name}:{line} imports {module}: {own} must not depend on {target}")
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_dependencies_point_one_way(path):
    assert violations(path, path.relative_to(PACKAGE).parts[0]) == []


def core_imports() -> dict[str, set[str]]:
    """Core module -> the core modules it imports (anywhere in its file)."""
    graph = {}
    for path in sorted((PACKAGE / "core").glob("*.py")):
        graph[path.stem] = {m.split(".")[2] for m, _ in imported_layers(path)
                            if m.startswith("simplecnn.core.") and len(m.split(".")) > 2} - {path.stem}
        graph[path.stem] |= {m for m, _ in _from_core_imports(path)}
    return graph


def _from_core_imports(path: Path) -> set[tuple[str, int]]:
    """``from simplecnn.core import a, b``: the modules a and b."""
    return {(a.name, node.lineno) for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and node.module == "simplecnn.core" for a in node.names}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles of a module graph (each once, as found by a depth-first walk)."""
    found, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_no_core_module_imports_another_that_imports_it_back():
    assert cycles(core_imports()) == []
    assert cycles({"train": {"distributed"}, "distributed": {"train"}}) == [["distributed", "train", "distributed"]]


def test_notebooks_use_core_and_studies_only():
    for nb in sorted(NOTEBOOKS.glob("*.py")):
        for module, line in imported_layers(nb):
            assert layer_of(module) in ("core", "studies"), f"{nb.name}:{line} imports {module}"


def test_the_checker_catches_a_backward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from simplecnn.pipeline.runner import run_all\nfrom simplecnn import studies\nimport json\n")
    assert {layer_of(m) for m, _ in imported_layers(bad)} == {"pipeline", "studies"}
    found = violations(bad, "core")
    assert found == ["core/bad.py:1 imports simplecnn.pipeline.runner: core must not depend on pipeline",
                     "core/bad.py:2 imports simplecnn.studies: core must not depend on studies"]
    assert violations(bad, "pipeline") == []


def test_every_module_says_what_it_holds():
    for path in MODULES:
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and len(doc) > 40, f"{path.relative_to(PACKAGE)} needs a module docstring saying what it holds and why"


def notebook_definitions(source: str) -> list[str]:
    """Functions, lambdas and classes defined in a notebook's code (the percent .py file,
    markdown cells are comments), each as "kind name:line"."""
    kinds = {ast.FunctionDef: "def", ast.AsyncFunctionDef: "def", ast.ClassDef: "class", ast.Lambda: "lambda"}
    return [f"{kinds[type(n)]} {getattr(n, 'name', '')}:{n.lineno}".replace(" :", ":")
            for n in ast.walk(ast.parse(source)) if type(n) in kinds]


def code_lines(source: str) -> int:
    """Non-blank, non-comment lines: the notebook's code as a reader meets it."""
    return sum(1 for line in source.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def test_notebooks_define_nothing_and_stay_short():
    found = {nb.name: notebook_definitions(nb.read_text()) for nb in sorted(NOTEBOOKS.glob("*.py"))}
    assert not {k: v for k, v in found.items() if v}, "define it in src/ (with a test), call it from the chapter"
    total = sum(code_lines(nb.read_text()) for nb in NOTEBOOKS.glob("*.py"))
    assert 0 < total <= 900, f"notebook code is {total} lines"


def test_the_notebook_checks_catch_a_definition():
    source = "# %%\nx = 1\n\n\ndef f(a):\n    return a\n\n# %% [markdown]\n# text\ng = lambda b: b\n"
    assert notebook_definitions(source) == ["def f:5", "lambda:10"] and code_lines(source) == 4
