"""The pipeline end to end: every notebook at the smoke profile, the book, the results json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

from simplecnn.core.paths import ROOT
from simplecnn.pipeline import runner

pytestmark = pytest.mark.slow


def run_cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simplecnn", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800)


def shared_dir(tmp_path_factory, worker_id) -> Path:
    """The temporary folder every xdist worker of this test run sees (a worker's own is below it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if worker_id != "master" else base


@pytest.fixture(scope="session")
def built_book(tmp_path_factory, worker_id):
    """One smoke build for the whole test run, whichever worker asks first (the others wait
    for it under a file lock and reuse it): xdist's ``loadgroup`` does not keep a group on one
    worker with pytest 9.2 and xdist 3.8 (checked: no ``@group`` suffix, tests spread), and
    a second build costs four minutes of two cores."""
    shared = shared_dir(tmp_path_factory, worker_id)
    tmp = shared / "smoke-book"
    env = {**os.environ, "SIMPLECNN_CACHE": str(tmp / "cache"), "SIMPLECNN_RESULTS": str(tmp / "results"),
           "SIMPLECNN_BUILD": str(tmp / "build")}
    with FileLock(str(shared / "smoke-book.lock")):
        if not (tmp / "built").exists():
            tmp.mkdir(exist_ok=True)
            done = run_cli("book", "--profile", "smoke", env=env)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
            (tmp / "built").write_text(done.stdout)
    return tmp, env, (tmp / "built").read_text()


@pytest.fixture
def smoke_book(built_book, tmp_path_factory, worker_id):
    """The shared smoke build, one test at a time (a test may rebuild it or read its pages)."""
    with FileLock(str(shared_dir(tmp_path_factory, worker_id) / "smoke-book.lock")):
        yield built_book


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
    assert "done in" not in again.stdout and again.stdout.count(": up to date") == len(runner.notebooks())
    assert again.stdout.startswith(f"smoke profile: 0 of {len(runner.notebooks())} chapters to execute")


def test_every_notebook_has_an_annotated_literal_parameters_cell_and_profiles():
    import ast
    import jupytext
    for nb in runner.notebooks():
        cells = [c for c in jupytext.read(nb).cells if "parameters" in c.metadata.get("tags", [])]
        assert len(cells) == 1, f"{nb.name}: exactly one parameters cell"
        body = ast.parse(cells[0].source).body
        for node in body:
            assert isinstance(node, ast.AnnAssign), f"{nb.name}: parameters cell holds annotated assignments only"
            ast.literal_eval(node.value)  # literals only: papermill cannot recompute derived values
        names = {n.target.id for n in body}
        assert {"profile", "device"} <= names, f"{nb.name}: every chapter takes profile and device"
        shown = runner.notebook_parameters(nb)  # what `papermill --help-notebook` prints
        assert set(shown) == names, f"{nb.name}: papermill sees {set(shown)}"
        for name, info in shown.items():
            assert info["type"] not in ("None", "") and info["help"], f"{nb.name}: {name} lacks a type or help"
        for profile in sorted(p.name for p in (ROOT / "profiles").iterdir() if p.is_dir()):
            params = runner.parameters(nb, profile)  # an unknown name in a profile file raises
            assert set(params) == names, f"{nb.name}/{profile}: {set(params) ^ names}"


def test_the_cpu_profile_is_the_parameters_cells():
    assert not list((ROOT / "profiles" / "cpu").glob("*.yml")), "cpu values live in the notebooks' parameters cells"
    for nb in runner.notebooks():
        cell = {k: v["default"] for k, v in runner.notebook_parameters(nb).items()}
        assert runner.parameters(nb, "cpu") == {**cell, "profile": "cpu"}


def test_results_hold_every_headline_key_and_headline_reads_them(smoke_book):
    tmp, _, _ = smoke_book
    from simplecnn.core.reproduce import RULES
    from simplecnn.core.results import Headline
    from simplecnn.pipeline import registry
    for study in registry.STUDIES.values():
        doc = json.loads((tmp / "results" / "smoke" / f"{study.name}.json").read_text())
        missing = set(study.headline_keys) - set(doc["results"])
        assert not missing, f"{study.name}: results lack {missing}"
        module = study.load()
        rows = module.headline(doc["results"])
        assert rows and all(isinstance(r, Headline) for r in rows), study.name
        assert [r["quantity"] for r in doc["headlines"]] == [r.quantity for r in rows], study.name  # stored alike
        for r in rows:
            assert r.rule in RULES, f"{study.name}: {r.quantity} has no rule for judging a re-run"
            if r.low is not None:
                assert r.low <= r.high and r.interval, f"{study.name}: {r.quantity} interval"
            if r.rule in ("check", "difference", "order"):
                assert r.status, f"{study.name}: {r.quantity} is a finding without a status"


def test_a_smoke_run_verified_against_itself_reproduces_and_a_perturbed_one_exits_1_naming_it(smoke_book, tmp_path,
                                                                                                 capsys):
    import shutil
    from simplecnn.pipeline import cli
    tmp, _, _ = smoke_book
    committed = tmp / "results" / "smoke"
    from simplecnn.pipeline import verify
    counts = verify.verify(committed, committed).counts()
    assert counts["reproduced"] > 0 and counts["changed"] == counts["inconclusive"] == counts["missing"] == 0
    assert cli.main(["verify", str(committed), "--against", str(committed)]) == 0
    capsys.readouterr()
    run = tmp_path / "run" / "smoke"
    shutil.copytree(committed, run)
    doc = json.loads((run / "zoo.json").read_text())
    exact = next(h for h in doc["headlines"] if h["rule"] == "exact" and isinstance(h["value"], (int, float)))
    exact["value"] += 1  # one count differs: the re-run changed that finding
    (run / "zoo.json").write_text(json.dumps(doc))
    assert cli.main(["verify", str(run), "--against", str(committed)]) == 1
    changed = [line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("changed")]
    assert len(changed) == 1 and exact["quantity"][:70] in changed[0]


def test_a_dependent_chapter_sweeps_from_a_fresh_results_folder_and_leaves_results_alone(smoke_book, tmp_path):
    """The README's sweep command on 05_gradcam (built on the patch study), reading the patch
    study's results from the smoke build's folder; the committed results/ never change."""
    tmp, env, _ = smoke_book
    committed = {p: p.read_bytes() for p in (ROOT / "results").rglob("*.json")}
    out = tmp_path / "sweep"
    env = {k: v for k, v in env.items() if k != "SIMPLECNN_RESULTS"}  # as a user would run it
    done = run_cli("sweep", "notebooks/05_gradcam.py", "--profile", "smoke", "-p", "seed", "0", "1",
                   "--results-from", str(tmp / "results"), "--out", str(out), "--timeout", "900", env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "ETA" in done.stdout and (out / "sweep.csv").exists()
    for run in ("run-000", "run-001"):
        doc = json.loads((out / run / "results" / "smoke" / "gradcam.json").read_text())
        assert doc["params"]["seed"] == int(run[-1])
    assert {p: p.read_bytes() for p in (ROOT / "results").rglob("*.json")} == committed
    status = subprocess.run(["git", "status", "--porcelain", "--", "results"], cwd=ROOT, capture_output=True, text=True)
    assert status.stdout == ""


def test_the_book_works_in_a_browser(smoke_book, tmp_path):
    """Every chapter loads in headless Chromium at a laptop's width with its figures, no
    console errors and no table cut off beyond the window; search finds pages; the
    screenshot command renders a page."""
    from simplecnn.pipeline import browser

    tmp, _, _ = smoke_book
    html = tmp / "build" / "smoke" / "book" / "_build" / "html"
    pages = ["book/intro.html"] + [f"executed/{nb.stem}.html" for nb in runner.notebooks()]
    errors, clipped = [], {}
    with browser.served(html) as base, browser.page() as page:
        page.on("console", lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
        for name in pages:
            response = page.goto(f"{base}/{name}", wait_until="networkidle")
            assert response is not None and response.ok, name
            assert page.locator("h1").count() >= 1, name
            images = page.evaluate("Array.from(document.images).map(i => [i.src, i.complete, i.naturalWidth])")
            broken = [src for src, complete, width in images if not complete or width == 0]
            assert not broken, f"{name}: images that did not load: {broken}"
            clipped[name] = page.evaluate(browser.CLIPPED_TABLES)
        page.goto(f"{base}/search.html?q=BagNet", wait_until="networkidle")
        page.wait_for_selector("#search-results li", timeout=15000)
        assert page.locator("#search-results li").count() >= 1
    assert not errors, errors
    assert not any(clipped.values()), f"tables cut off at {browser.LAPTOP['width']} px: {clipped}"
    shot = browser.screenshot(html, "executed/03_patches.html", tmp_path / "book.png")
    assert shot.stat().st_size > 10_000
