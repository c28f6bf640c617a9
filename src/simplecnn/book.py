"""Build the book: execute notebooks for a profile, stage them with the book's pages, run
Jupyter Book 1.x with execution off and warnings as errors.

Each profile builds in its own folder (``build/<profile>/``), so a smoke build never mixes
with the cpu one; the repository's ``_config.yml``, ``_toc.yml`` and ``book/`` are copied
next to the executed notebooks (``executed/``) and built there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .paths import ROOT, build_dir
from .runner import run_all

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
    shutil.copytree(executed, dest / "executed", ignore=shutil.ignore_patterns("*.stamp"))
    return dest


def build(profile: str = "cpu", force: bool = False) -> Path:
    """Execute what changed, stage and build; returns the HTML folder."""
    root = build_dir() / profile
    executed = root / "executed"
    run_all(profile, executed, force=force)
    staged = stage(profile, executed, root / "book")
    jb = Path(sys.executable).with_name("jupyter-book")
    # --all: Sphinx would keep pages whose sources did not change even when the book's
    # extensions did; rewriting eight pages costs seconds.
    cmd = [str(jb), "build", str(staged), "--all", "--warningiserror", "--nitpick", "--keep-going"]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    html = staged / "_build" / "html"
    print(f"book ({profile} profile): {html / 'index.html'}", flush=True)
    return html
