"""Where the project keeps data, caches, results and builds.

Every location has an environment override so that tests and users can redirect it
without touching code: SIMPLECNN_DATA, SIMPLECNN_CACHE, SIMPLECNN_RESULTS, SIMPLECNN_BUILD.
"""

from __future__ import annotations

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
