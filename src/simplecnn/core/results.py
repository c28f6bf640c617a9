"""``<results>/<profile>/<study>.json``: parameters, results and provenance of a run, and
the ``Headline`` type through which each study states its headline numbers.

Batch re-runs and the book's summary read these files, so a study's result keys are its
public interface. Provenance says which code, packages and machine made the numbers.
Where a run writes and reads is the runner's decision (``run_context``): the book's run
writes ``results/``, a run with ``--out`` or a sweep writes only into its own folder.
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from simplecnn.core.io import atomic_write_bytes
from simplecnn.core.device import device_description
from simplecnn.core.paths import RUN_CONTEXT, ROOT, build_dir, dry_run, results_root, run_context  # noqa: F401

PACKAGES = ["simplecnn", "torch", "torchvision", "numpy", "scikit-learn", "ptflops", "captum",
            "opencv-contrib-python-headless", "papermill", "jupyter-book"]


def git_commit() -> str:
    """HEAD's hash, with ``-dirty`` when tracked files differ from it (results/ aside: a run
    rewrites them, so they would mark every later chapter dirty); ``unknown`` outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!results"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def provenance(started: float, device: str = "auto") -> dict[str, Any]:
    extra = {}
    if dry_run():
        from simplecnn.core.memory import DRY_RUN_ESTIMATES
        peak = max((e["estimate_bytes"] for e in DRY_RUN_ESTIMATES), default=0)
        extra = {"dry_run": {"training_loops": DRY_RUN_ESTIMATES, "peak_estimate_bytes": peak}}
    return {**extra, "git_commit": git_commit(), "packages": package_versions(), "python": platform.python_version(),
            "device": device_description(run_context().get("params", {}).get("device", device)), "wall_time_s": round(time.time() - started, 2),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def output_dir(profile: str) -> Path:
    """Where this run's results go: the runner's choice, else (interactive runs, e.g. in
    ``make lab``) ``build/interactive/results/<profile>``, so the committed ``results/``
    change only when the book's own run writes them."""
    out = run_context().get("results_out")
    return Path(out) / profile if out else build_dir() / "interactive" / "results" / profile


def upstream_dirs(profile: str) -> list[Path]:
    """Folders searched for another study's results, in order: this run's own output (a
    chapter run just before in the same run), then the runner's ``results_from``
    (default: the committed ``results/``)."""
    ctx = run_context()
    base = Path(ctx["results_from"]) if ctx.get("results_from") else results_root()
    return list(dict.fromkeys([output_dir(profile), base / profile]))


def write_results(study: str, profile: str, results: dict, started: float) -> Path:
    """Write the study's results json atomically and return its path. The parameters
    recorded are those the runner injected (all of the notebook's, after profile and
    overrides), never a hand-copied list; an interactive run records ``None``."""
    path = output_dir(profile) / f"{study}.json"
    doc = {"study": study, "profile": profile, "params": run_context().get("params"), "results": results,
           "provenance": provenance(started)}
    atomic_write_bytes(path, (json.dumps(doc, indent=2, default=float) + "\n").encode())
    return path


def read_results(study: str, profile: str) -> dict:
    """Another study's results (see ``upstream_dirs``); missing is an error naming the fix."""
    folders = upstream_dirs(profile)
    for folder in folders:
        if (folder / f"{study}.json").exists():
            return json.loads((folder / f"{study}.json").read_text())
    raise FileNotFoundError(f"results of the {study} study ({profile} profile) not found in "
                            f"{', '.join(map(str, folders))}: run it first (`python -m simplecnn run --profile "
                            f"{profile} --only {study}`), or point --results-from at a folder holding them")


@dataclass(frozen=True)
class Headline:
    """One headline number of a study, labelled so that a reader knows what it compares:
    the metric, data set, split and resolution, its uncertainty, and the source's figure
    with the source's own label (which may differ: ImageNet top-5 beside our top-1)."""

    quantity: str
    value: float | str | None
    low: float | None = None  # interval (CI or mean ± std), None when not applicable
    high: float | None = None
    interval: str = ""  # what [low, high] is, e.g. "95% bootstrap CI" or "± std, 2 seeds"
    setting: str = ""  # metric, data set, split and resolution, e.g. "top-1, CIFAR-10 test, 32 px"
    source: float | str | None = None
    source_setting: str = ""  # the source's metric and setting, where it differs from ours


class Plain(str):
    """A string that myst-nb pastes without quotes (its text/plain repr is itself)."""

    def __repr__(self) -> str:
        return str(self)
