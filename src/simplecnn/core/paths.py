"""Where the project keeps data, caches, results and builds.

Every location has an environment override so that tests and users can redirect it
without touching code: SIMPLECNN_DATA, SIMPLECNN_CACHE, SIMPLECNN_RESULTS, SIMPLECNN_BUILD.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ROOT = Path(os.environ.get("SIMPLECNN_ROOT", Path(__file__).resolve().parents[3]))
NOTEBOOKS = ROOT / "notebooks"
PROFILES = ROOT / "profiles"
PROFILE_NAMES = ("smoke", "cpu", "paper")


def _env_path(var: str, default: Path) -> Path:
    return Path(os.environ.get(var, default)).expanduser().resolve()


def data_dir() -> Path:
    """Unpacked data sets (``make data`` fills it)."""
    return _env_path("SIMPLECNN_DATA", ROOT / "data")


def cache_dir() -> Path:
    """Decoded tensors, trained weights and predictions, keyed by what made them."""
    return _env_path("SIMPLECNN_CACHE", ROOT / ".cache")


def results_root() -> Path:
    """``results/``: the committed results, one folder per profile."""
    return _env_path("SIMPLECNN_RESULTS", ROOT / "results")


def results_dir(profile: str) -> Path:
    """``results/<profile>/``: one json per study run."""
    return results_root() / profile


def build_dir() -> Path:
    """Executed notebooks and staged books, one sub-folder per profile."""
    return _env_path("SIMPLECNN_BUILD", ROOT / "build")


RUN_CONTEXT = "SIMPLECNN_RUN"  # JSON set by the runner for the kernel (see ``run_context``)


def run_context() -> dict:
    """What the runner told this kernel: the parameters papermill injected (``params``), where
    this run writes results (``results_out``), where it reads upstream results
    (``results_from``) and the caller's working directory (``cwd``). Empty when a notebook
    runs interactively."""
    text = os.environ.get(RUN_CONTEXT)
    return json.loads(text) if text else {}


def user_path(path: str | Path) -> Path:
    """A path a user typed, resolved from where they stood when they started the run (the
    kernel itself runs in ``notebooks/``)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else Path(run_context().get("cwd") or os.getcwd()) / path


DRY_RUN = "SIMPLECNN_DRY_RUN"  # "full" (or 1): real sizes; "small": resolutions capped too


def dry_run() -> bool:
    """True in a dry run (``--dry-run``, or ``SIMPLECNN_DRY_RUN``): every training loop
    takes two steps of one epoch and data sets are cut to a handful of images per class, so
    a GPU profile's code paths run on a CPU (``dry_run_small``: at small resolutions too)."""
    return os.environ.get(DRY_RUN, "") not in ("", "0")


def dry_run_small() -> bool:
    """True in a small dry run (``--dry-run small``): resolutions are capped as well, so every
    code path of a GPU profile runs in seconds per chapter (its shapes and memory at full
    size are proved on meta tensors instead, ``pipeline.proof``)."""
    return os.environ.get(DRY_RUN, "") == "small"
