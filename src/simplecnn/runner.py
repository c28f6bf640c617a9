"""Execute the jupytext notebooks with papermill, once per change.

A notebook's fingerprint hashes its source, its parameters and the package's code; an
executed notebook whose stamp holds the same fingerprint is not run again. Parameters are
a profile's file (``profiles/<profile>/<study>.yml``) with optional overrides on top.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

import jupytext
import nbformat
import papermill
import yaml

from .paths import NOTEBOOKS, PROFILE_NAMES, PROFILES, ROOT, results_dir


def study_name(notebook: Path) -> str:
    """``notebooks/01_zoo.py`` -> ``zoo``."""
    return Path(notebook).stem.split("_", 1)[-1]


def notebooks() -> list[Path]:
    """The book's notebooks in chapter order."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def profile_params(notebook: Path, profile: str) -> dict:
    """The parameters a profile gives a notebook; a missing file or profile is a clear error."""
    if profile not in PROFILE_NAMES and not (PROFILES / profile).is_dir():
        raise ValueError(f"unknown profile {profile!r}; known: {list(PROFILE_NAMES)}")
    path = PROFILES / profile / f"{study_name(notebook)}.yml"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: every notebook needs a parameter file per profile")
    params = yaml.safe_load(path.read_text()) or {}
    params["profile"] = profile
    return params


def code_digest() -> str:
    """Hash of the package's source and the pinned requirements."""
    h = hashlib.sha256()
    for path in sorted((ROOT / "src").rglob("*.py")) + [ROOT / "requirements.txt"]:
        h.update(path.relative_to(ROOT).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def upstream_studies(notebook: Path) -> list[str]:
    """Studies whose results a notebook reads: ``read_results("patches", …)`` or
    ``patches.load_study``, or all of them for the summary table (``headline_table``)."""
    source = Path(notebook).read_text()
    found = set(re.findall(r"read_results\(\s*[\"'](\w+)[\"']", source))
    if "load_study(" in source:  # patches.load_study reads the patch study's results
        found.add("patches")
    if "headline_table(" in source:
        from .summary import STUDIES
        found |= set(STUDIES)
    return sorted(found - {study_name(notebook)})


def fingerprint(notebook: Path, params: dict) -> str:
    """Source, parameters, package code, and the parameters and headline numbers of every
    upstream study, so that a chapter built on another re-runs when that one changes."""
    h = hashlib.sha256(Path(notebook).read_bytes())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    h.update(code_digest().encode())
    for study in upstream_studies(notebook):
        path = results_dir(str(params.get("profile", ""))) / f"{study}.json"
        doc = json.loads(path.read_text()) if path.exists() else {}
        h.update(json.dumps([doc.get("params"), doc.get("results")], sort_keys=True).encode())
    return h.hexdigest()


def execute(notebook: Path, output: Path, params: dict, force: bool = False, log_output: bool = False,
            progress_bar: bool = True) -> bool:
    """Run ``notebook`` with ``params`` into ``output`` (ipynb); False when it was up to date.

    Progress is papermill's bar over cells; the notebooks' own tqdm bars are switched off
    (``TQDM_DISABLE``) so that executed pages hold results, not progress.
    """
    output = Path(output)
    stamp = output.with_suffix(".stamp")
    digest = fingerprint(notebook, params)
    if not force and output.exists() and stamp.exists() and stamp.read_text() == digest:
        return False
    output.parent.mkdir(parents=True, exist_ok=True)
    nb = jupytext.read(notebook)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    previous = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # the kernel inherits it: no progress bars in the book's pages
    try:
        with tempfile.TemporaryDirectory(dir=output.parent) as tmp:
            source = Path(tmp) / f"{output.stem}.source.ipynb"
            executed = Path(tmp) / output.name
            nbformat.write(nb, source)
            papermill.execute_notebook(str(source), str(executed), parameters=params, cwd=str(NOTEBOOKS),
                                       kernel_name="python3", progress_bar=progress_bar, log_output=log_output)
            os.replace(executed, output)
    finally:
        if previous is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = previous
    stamp.write_text(digest)
    return True


def run_all(profile: str, out_dir: Path, overrides: dict | None = None, only: list[str] | None = None,
            force: bool = False) -> list[Path]:
    """Execute every notebook (or those whose study is in ``only``) for ``profile``."""
    done = []
    for nb in notebooks():
        if only and study_name(nb) not in only:
            continue
        params = {**profile_params(nb, profile), **(overrides or {})}
        out = Path(out_dir) / f"{nb.stem}.ipynb"
        print(f"{nb.name} ({profile}):", flush=True)
        ran = execute(nb, out, params, force=force)
        print(f"{'executed' if ran else 'up to date'}: {nb.name} ({profile}) -> {out}", flush=True)
        done.append(out)
    return done
