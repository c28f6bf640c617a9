"""``results/<profile>/<study>.json``: parameters, headline numbers and provenance of a run.

Batch re-runs and the book's summary read these files, so a study's headline keys are
its public interface. Provenance says which code, packages and machine made the numbers.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from .cache import atomic_write_bytes
from .paths import ROOT, results_dir

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


def device_description() -> str:
    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {os.cpu_count()} cores"


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def provenance(started: float) -> dict[str, Any]:
    return {"git_commit": git_commit(), "packages": package_versions(), "python": platform.python_version(),
            "device": device_description(), "wall_time_s": round(time.time() - started, 2),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def write_results(study: str, profile: str, params: dict, headline: dict, started: float) -> Path:
    """Write the study's results json atomically and return its path."""
    path = results_dir(profile) / f"{study}.json"
    doc = {"study": study, "profile": profile, "params": params, "results": headline,
           "provenance": provenance(started)}
    atomic_write_bytes(path, (json.dumps(doc, indent=2, default=float) + "\n").encode())
    return path


def read_results(study: str, profile: str) -> dict:
    path = results_dir(profile) / f"{study}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the {study} notebook with profile {profile} "
                                f"(`make book PROFILE={profile}`)")
    return json.loads(path.read_text())


class Plain(str):
    """A string that myst-nb pastes without quotes (its text/plain repr is itself)."""

    def __repr__(self) -> str:
        return str(self)
