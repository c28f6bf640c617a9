"""Build the book: execute notebooks for a profile, stage them with the book's pages, run
Jupyter Book 1.x with execution off and warnings as errors.

Each profile builds in its own folder (``build/<profile>/``), so a smoke build never mixes
with the cpu one; the repository's ``_config.yml``, ``_toc.yml`` and ``book/`` are copied
next to the executed notebooks (``executed/``) and built there.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from simplecnn.core.paths import ROOT, build_dir
from simplecnn.pipeline import console
from simplecnn.pipeline.runner import profile_name, run_all

BOOK_SOURCES = ["_config.yml", "_toc.yml", "book"]


def stage(profile: str, executed: Path, dest: Path) -> Path:
    """Copy the book's sources and the executed notebooks into ``dest``."""
    if dest.exists():
        for item in dest.iterdir():
            if item.name != "_build":
                shutil.rmtree(item) if item.is_dir() else item.unlink()
    dest.mkdir(parents=True, exist_ok=True)
    for name in BOOK_SOURCES:
        src = ROOT / name
        shutil.copytree(src, dest / name) if src.is_dir() else shutil.copy2(src, dest / name)
    (dest / "executed").mkdir()
    for nb_path in sorted(Path(executed).glob("[0-9][0-9]_*.ipynb")):
        if nb_path.name.count(".") > 1:  # <name>.failed.ipynb, <name>.running.ipynb
            continue
        nb = drop_progress(fold_code(nbformat.read(nb_path, as_version=4)))
        nbformat.write(nb, dest / "executed" / nb_path.name)
    return dest


def fold_code(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Readers come for figures and tables: every code cell but the parameters cell is shown
    folded (``hide-input``: a click unfolds it), its outputs in full."""
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if cell.cell_type == "code" and "parameters" not in tags and "hide-input" not in tags:
            tags.append("hide-input")
    return nb


def drop_progress(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Progress (per-epoch lines, warnings) goes to the kernel's stderr: the terminal saw it
    while the chapter ran; the page keeps stdout, tables and figures."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    return nb


class BookFailed(RuntimeError):
    """jupyter-book stopped: the message names the page and Sphinx's own error line."""


def sphinx_errors(log: str, staged: Path) -> list[str]:
    """The lines of a Sphinx log that stopped the build (errors, and warnings treated as
    errors), each with its page's path shortened to the book's own (``executed/03_patches``)."""
    found = []
    for line in re.sub(r"\x1b\[[0-9;]*m", "", log).splitlines():  # Sphinx colours its lines on a tty-less run too
        if "WARNING:" in line or "ERROR:" in line or line.startswith(("Exception", "Extension error")):
            found.append(line.replace(str(staged) + "/", "").strip())
    return list(dict.fromkeys(found))


def compile_book(staged: Path, log: Path) -> Path:
    """jupyter-book 1.x on a staged book, execution off, warnings as errors; its output goes
    to ``log``. A failure raises ``BookFailed`` naming the page and Sphinx's own error line."""
    jb = Path(sys.executable).with_name("jupyter-book")
    # --all: Sphinx would keep pages whose sources did not change even when the book's
    # extensions did; rewriting the pages costs seconds.
    cmd = [str(jb), "build", str(staged), "--all", "--warningiserror", "--nitpick", "--keep-going"]
    console.out(f"building the HTML book with jupyter-book (log: {log})")
    done = subprocess.run(cmd, capture_output=True, text=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"$ {' '.join(cmd)}\n{done.stdout}\n{done.stderr}")
    if done.returncode != 0:
        errors = sphinx_errors(done.stdout + "\n" + done.stderr, staged) or [
            (done.stderr.strip().splitlines() or ["no error line; see the log"])[-1]]
        raise BookFailed(f"jupyter-book could not build the book in {staged} (exit {done.returncode}):\n  "
                         + "\n  ".join(errors[:10]) + f"\n  full log: {log}")
    return staged / "_build" / "html"


def build(profile: str = "cpu", force: bool = False) -> Path:
    """Execute what changed, stage and build; returns the HTML folder
    (``build/<profile>/book/_build/html``; jupyter-book's log beside it)."""
    root = build_dir() / profile_name(profile)
    executed = root / "executed"
    run_all(profile, executed, force=force)
    staged = stage(profile, executed, root / "book")
    html = compile_book(staged, root / "jupyter-book.log")
    console.out(f"book ({profile} profile): {html / 'index.html'}")
    return html
