"""The pipeline end to end: every notebook at the smoke profile, the book, the results json."""

from __future__ import annotations

import json
import os
import subprocess
import sys


import pytest

from simplecnn.pipeline import runner

from simplecnn.studies import summary
from simplecnn.core.paths import NOTEBOOKS, ROOT

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


def test_every_notebook_has_an_annotated_literal_parameters_cell_and_profiles():
    import ast
    import jupytext
    from simplecnn.pipeline.sweep import notebook_parameters
    for nb in runner.notebooks():
        cells = [c for c in jupytext.read(nb).cells if "parameters" in c.metadata.get("tags", [])]
        assert len(cells) == 1, f"{nb.name}: exactly one parameters cell"
        body = ast.parse(cells[0].source).body
        for node in body:
            assert isinstance(node, ast.AnnAssign), f"{nb.name}: parameters cell holds annotated assignments only"
            ast.literal_eval(node.value)  # literals only: papermill cannot recompute derived values
        names = {n.target.id for n in body}
        shown = notebook_parameters(nb)  # what `papermill --help-notebook` prints
        assert set(shown) == names, f"{nb.name}: papermill sees {set(shown)}"
        for name, info in shown.items():
            assert info["type"] not in ("None", "") and info["help"], f"{nb.name}: {name} lacks a type or help"
        for profile in ("smoke", "cpu", "paper"):
            params = runner.profile_params(nb, profile)
            assert set(params) <= names, f"{nb.name}/{profile}: unknown parameters {set(params) - names}"


def test_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="unknown profile"):
        runner.profile_params(NOTEBOOKS / "01_zoo.py", "gpu-cluster")


def test_results_carry_the_keys_the_issues_name(smoke_book):
    tmp, _, _ = smoke_book
    read = lambda study: json.loads((tmp / "results" / "smoke" / f"{study}.json").read_text())["results"]  # noqa: E731
    patches = read("patches")
    for method in ("bagnet", "sift", "tile2vec", "pixels"):
        for per_q in patches["methods"][method].values():
            assert {"patch_auc", "patch_acc", "image_acc", "image_auc", "train_s", "patches_per_s", "params"} <= set(per_q)
    assert patches["memory"]["max_abs_diff"] < 1e-4
    assert patches["memory"]["whole_peak_bytes"] > patches["memory"]["tiled_peak_bytes"]
    cascade = read("cascade")
    for stage in cascade["stages"].values():
        assert {"resolution", "macs", "params", "val_acc", "test_acc"} <= set(stage)
    for target in cascade["targets"].values():
        assert {"thresholds", "val_acc", "test_acc", "expected_macs", "stage_fractions", "mac_reduction"} <= set(target)
        assert sum(target["stage_fractions"]) == pytest.approx(1.0)
    assert "cascade" in cascade["images_per_s"]
    gradcam = read("gradcam")
    assert {"deletion_auc", "deletion_auc_random", "insertion_auc", "insertion_auc_random",
            "randomisation_rank_corr", "bagnet_agreement"} <= set(gradcam)
    fusion = read("fusion")
    for rules in fusion["classifiers"].values():
        for r in rules.values():
            assert {"image_auc", "image_auc_ci", "image_acc"} <= set(r)
            low, high = r["image_auc_ci"]
            assert 0 <= low <= high <= 1
    assert all({"rule", "p_value"} <= set(b) for b in fusion["best"].values())


def test_the_book_works_in_a_browser(smoke_book, tmp_path):
    """Every chapter loads in headless Chromium with its figures and no console errors; search finds pages."""
    import functools
    import http.server
    import shutil
    import threading

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: `make browser` installs it"
    tmp, _, _ = smoke_book
    html = tmp / "build" / "smoke" / "book" / "_build" / "html"
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(html))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    pages = ["book/intro.html"] + [f"executed/{nb.stem}.html" for nb in runner.notebooks()]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page()
            errors = []
            page.on("console", lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
            for name in pages:
                response = page.goto(f"{base}/{name}", wait_until="networkidle")
                assert response is not None and response.ok, name
                assert page.locator("h1").count() >= 1, name
                images = page.evaluate("Array.from(document.images).map(i => [i.src, i.complete, i.naturalWidth])")
                broken = [src for src, complete, width in images if not complete or width == 0]
                assert not broken, f"{name}: images that did not load: {broken}"
                page.screenshot(path=str(tmp_path / (name.replace("/", "_") + ".png")), full_page=True)
            page.goto(f"{base}/search.html?q=BagNet", wait_until="networkidle")
            page.wait_for_selector("#search-results li", timeout=15000)
            assert page.locator("#search-results li").count() >= 1
            browser.close()
    finally:
        server.shutdown()
    assert not errors, errors
    assert (tmp_path / "executed_03_patches.html.png").stat().st_size > 10_000


def test_summary_sets_every_study_beside_its_sources(smoke_book):
    tmp, _, _ = smoke_book
    rows = json.loads((tmp / "results" / "smoke" / "summary.json").read_text())["results"]["rows"]
    assert {r["study"] for r in rows} == set(summary.STUDIES)
    assert all(r["paper"] == "not run" for r in rows)  # no paper-profile results in the test's folder
    assert any(r["source"] == 2.3 for r in rows)  # the cascade report's claimed reduction


def test_chapters_built_on_others_know_their_upstream_studies():
    assert runner.upstream_studies(NOTEBOOKS / "05_gradcam.py") == ["patches"]
    assert runner.upstream_studies(NOTEBOOKS / "06_fusion.py") == ["patches"]
    assert set(runner.upstream_studies(NOTEBOOKS / "07_summary.py")) == set(summary.STUDIES)
