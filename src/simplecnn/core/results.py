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
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from simplecnn.core.cache import cold_seconds, entries_used
from simplecnn.core.device import device_description
from simplecnn.core.io import atomic_write_bytes
from simplecnn.core.params import CHECKED
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
    """Which code, packages and machine made a run, and what it cost: ``wall_time_s`` of this
    run, ``cached_seconds`` of the computations behind the cache entries it loaded, and their
    sum ``cold_seconds``, what the run costs from an empty cache; ``cache``: the entries it
    loaded and computed with their own seconds (so a book's total counts a shared entry once)."""
    extra = {}
    if dry_run():
        from simplecnn.core.memory import DRY_RUN_ESTIMATES
        peak = max((e["estimate_bytes"] for e in DRY_RUN_ESTIMATES), default=0)
        extra = {"dry_run": {"training_loops": DRY_RUN_ESTIMATES, "peak_estimate_bytes": peak}}
    wall = time.time() - started
    loaded = cold_seconds()
    return {**extra, "git_commit": git_commit(), "packages": package_versions(), "python": platform.python_version(),
            "device": device_description(run_context().get("params", {}).get("device", device)),
            "threads": torch.get_num_threads(), "wall_time_s": round(wall, 2),
            "cached_seconds": round(loaded, 2), "cold_seconds": round(wall + loaded, 2), "cache": entries_used(),
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


def write_results(study: str, profile: str, results: dict, started: float,
                  headlines: list[Headline] | None = None) -> Path:
    """Write the study's results json atomically and return its path. The parameters
    recorded are those the runner injected (all of the notebook's, after profile and
    overrides), never a hand-copied list; without a runner (plain papermill, by hand) those
    the chapter checked (``core.params.CHECKED``), else ``None``. The study's
    ``headlines`` (with their rules) are stored beside the results, so that a later run can be
    judged against these whatever the code that reads them (``simplecnn verify``)."""
    path = output_dir(profile) / f"{study}.json"
    params = run_context().get("params") or CHECKED.get(study)
    doc = {"study": study, "profile": profile, "params": params, "results": results,
           **({"headlines": [asdict(h) for h in headlines]} if headlines is not None else {}),
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
    """One headline number of a study, labelled so that a reader knows what it compares and
    a re-run knows how to be judged (``core.reproduce``).

    ``value`` with its interval (``low``, ``high``; ``interval`` says what it covers: seeds or
    test images) in its ``setting`` (metric, data set, split, resolution). ``source`` is the
    source's figure in its own ``source_setting``; ``comparable`` says they measure the same
    thing (metric, data set, split and reference model), the only case where a ratio of the
    two means anything. ``goal``: a threshold the chapter set itself, never a source figure.
    ``rule`` (``core.reproduce.RULES``), ``margin`` (equivalence margin, in the value's units),
    ``better`` ("higher"/"lower"), ``n`` (seeds behind a mean ± std) and ``status`` (a check's,
    difference's or ordering's finding) say how a re-run is judged."""

    quantity: str
    value: float | str | None
    low: float | None = None  # interval (CI or mean ± std), None when not applicable
    high: float | None = None
    interval: str = ""  # what [low, high] is and covers, e.g. "95% bootstrap CI over test images"
    setting: str = ""  # metric, data set, split and resolution, e.g. "top-1, CIFAR-10 test, 32 px"
    source: float | str | None = None
    source_setting: str = ""  # the source's metric and setting, where it differs from ours
    comparable: bool = False  # source and value measure the same thing: their ratio means something
    goal: float | None = None  # a goal this study set itself (not a source figure)
    rule: str = "report"  # how a re-run is judged: exact, bootstrap, seeds, check, difference, order, report
    margin: float | None = None  # equivalence margin of bootstrap and seeds rules, in the value's units
    better: str | None = None  # "higher" or "lower", where the direction of a change matters
    n: int | None = None  # training seeds behind a mean ± std
    status: str | None = None  # the finding of a check, difference or ordering


class Plain(str):
    """A string that myst-nb pastes without quotes (its text/plain repr is itself)."""

    def __repr__(self) -> str:
        return str(self)
