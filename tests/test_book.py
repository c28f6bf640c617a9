"""The pipeline end to end: every notebook at the smoke profile, the book, the results json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simplecnn import runner
from simplecnn.paths import NOTEBOOKS, ROOT

pytestmark = pytest.mark.slow


def run_cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simplecnn", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def smoke_book(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("smoke")
    env = {**os.environ, "SIMPLECNN_CACHE": str(tmp / "cache"), "SIMPLECNN_RESULTS": str(tmp / "results"),
           "SIMPLECNN_BUILD": str(tmp / "build")}
    done = run_cli("book", "--profile", "smoke", env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return tmp, env, done


def test_every_chapter_is_built(smoke_book):
    tmp, _, _ = smoke_book
    html = tmp / "build" / "smoke" / "book" / "_build" / "html"
    assert (html / "index.html").exists()
    for nb in runner.notebooks():
        page = html / "executed" / f"{nb.stem}.html"
        assert page.exists(), page
        assert "Traceback" not in page.read_text()
    assert "smoke" in (html / "book" / "intro.html").read_text()


def test_every_study_writes_results_with_provenance(smoke_book):
    tmp, _, _ = smoke_book
    for nb in runner.notebooks():
        doc = json.loads((tmp / "results" / "smoke" / f"{runner.study_name(nb)}.json").read_text())
        assert doc["profile"] == "smoke" and doc["params"] and doc["results"]
        assert {"git_commit", "packages", "device", "wall_time_s"} <= set(doc["provenance"])
    zoo = json.loads((tmp / "results" / "smoke" / "zoo.json").read_text())["results"]
    for stats in zoo.values():
        assert {"params", "macs", "activation_bytes", "receptive_field"} <= set(stats)


def test_second_build_executes_nothing(smoke_book):
    _, env, _ = smoke_book
    again = run_cli("book", "--profile", "smoke", env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "executed:" not in again.stdout and again.stdout.count("up to date:") == len(runner.notebooks())


def test_every_notebook_has_a_literal_parameters_cell_and_profiles():
    import ast
    import jupytext
    for nb in runner.notebooks():
        cells = [c for c in jupytext.read(nb).cells if "parameters" in c.metadata.get("tags", [])]
        assert len(cells) == 1, f"{nb.name}: exactly one parameters cell"
        for node in ast.parse(cells[0].source).body:
            assert isinstance(node, ast.Assign), f"{nb.name}: parameters cell holds assignments only"
            ast.literal_eval(node.value)  # literals only: papermill cannot recompute derived values
        for profile in ("smoke", "cpu", "paper"):
            params = runner.profile_params(nb, profile)
            names = {t.id for n in ast.parse(cells[0].source).body for t in n.targets}
            assert set(params) <= names, f"{nb.name}/{profile}: unknown parameters {set(params) - names}"


def test_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="unknown profile"):
        runner.profile_params(NOTEBOOKS / "01_zoo.py", "gpu-cluster")
