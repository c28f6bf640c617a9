"""Execute the jupytext notebooks with papermill, once per change, the papermill way.

Parameters: a notebook's ``parameters`` cell holds the cpu profile (the one source of
truth); a profile folder (``profiles/<name>/<study>.yml``, or any folder a user names)
overrides some of them; ``-p``/``-y``/``-f`` overrides go on top. Every parameter is
injected, so the results file records all of them as papermill saw them.

Where results go: the book's own run writes ``results/<profile>/``; a run with ``--out``
or a sweep writes only into its own folder and reads upstream studies' results from
``results/<profile>/`` (or ``--results-from``). A notebook's fingerprint hashes its source,
parameters, the package's code and the results of its declared upstream studies; an
executed notebook whose stamp holds the same fingerprint is not run again. A failing
notebook is kept (``<name>.failed.ipynb``, showing the failing cell) with a one-line
``<name>.error.txt``.
"""

from __future__ import annotations

import ast
import hashlib
import json
import time
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat
import papermill
import yaml
from papermill.exceptions import PapermillExecutionError

from simplecnn.core.cache import PACKAGE, Cache, package_digest
from simplecnn.core.io import atomic_write_bytes, file_sha256
from simplecnn.core.paths import NOTEBOOKS, PROFILES, ROOT, dry_run, dry_run_small, results_root
from simplecnn.core.paths import RUN_CONTEXT
from simplecnn.core import progress
from simplecnn.core.params import check
from simplecnn.pipeline import console, estimate, registry

DEFAULT_PROFILE = "cpu"  # the parameters cells' own values


class RunFailed(RuntimeError):
    """A notebook failed; ``notebook`` is the executed copy showing the failing cell."""

    def __init__(self, message: str, notebook: Path):
        super().__init__(message)
        self.notebook = notebook


def study_name(notebook: Path) -> str:
    """``notebooks/01_zoo.py`` -> ``zoo`` (through the registry)."""
    return registry.by_notebook(notebook).name


def notebooks() -> list[Path]:
    """The book's notebooks in an order where upstream chapters come first."""
    return [s.path for s in registry.ordered()]


def _as_ipynb(notebook: Path) -> nbformat.NotebookNode:
    nb = jupytext.read(notebook)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for cell in nb.cells:  # papermill expects every cell to carry a tags list
        cell.metadata.setdefault("tags", [])
    return nb


def notebook_parameters(notebook: Path) -> dict[str, dict]:
    """Name -> {type, default (a value), help} of the notebook's parameters cell, read with
    papermill's public inspection (``papermill.inspect_notebook``)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{Path(notebook).stem}.ipynb"
        nbformat.write(_as_ipynb(notebook), path)
        found = papermill.inspect_notebook(str(path))
    return {name: {"type": p["inferred_type_name"], "default": ast.literal_eval(p["default"]), "help": p["help"]}
            for name, p in found.items()}


def profile_dir(profile: str | Path) -> Path:
    """A built-in profile's folder (``profiles/<name>``) or a user's own folder of yml files."""
    if (PROFILES / str(profile)).is_dir():
        return PROFILES / str(profile)
    if Path(profile).expanduser().is_dir():
        return Path(profile).expanduser().resolve()
    known = sorted(p.name for p in PROFILES.iterdir() if p.is_dir())
    raise ValueError(f"unknown profile {str(profile)!r}: neither one of {known} nor a folder of <study>.yml files")


def profile_name(profile: str | Path) -> str:
    """The name results are filed under: the built-in name, or the user's folder's name."""
    return profile_dir(profile).name


def check_names(given: dict, known: dict, where: str) -> None:
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown parameter(s) {unknown}; known parameters: {sorted(known)}")


# A dry run is the profile with these counts capped (images timed or attributed, resamples,
# map sizes): it proves architectures, resolutions and batch sizes, which it never changes,
# and how many images a loop visits only decides how long the proof takes on a CPU.
DRY_RUN_CAPS = {"curve_images": 8, "sanity_images": 4, "heatmap_images": 2, "throughput_images": 16,
                "latency_images": 4, "timing_repeats": 1, "bootstrap_rounds": 20, "bootstrap": 20,
                "stability_rounds": 4, "grid_size": 8, "zoom_size": 8, "ig_steps": 4, "steps": 4,
                "memory_size": 256, "train_memory_sizes": 1, "max_patches": 2000,  # lists: their first items
                "train_size": 20, "val_size": 20, "test_size": 20,  # None ("all") is capped too
                "seeds": 2, "extra_seeds": 1, "codebook": 16}  # two seeds keep every statistic across seeds on its code path
# Image counts whose None means "every image": capped like the others. The patch chapter's
# paper BagNet (ResNet-50 depth, 224 px) takes 0.4 s per image here, so every image the dry
# run sends through it costs; 2 per class and split prove the paths as well as 20 do.
ALL_WHEN_NONE = {"train_size", "val_size", "test_size"}


SMALL_RESOLUTION = 64  # the largest image side of a small dry run
RESOLUTION_KEYS = {"resolution", "peak_resolution", "memory_size"}  # image sides a small dry run caps


def dry_run_caps(params: dict, small: bool = False) -> dict:
    """``params`` with ``DRY_RUN_CAPS`` applied, in option dicts too (tile2vec's ``steps``,
    the read-outs' ``max_patches``): the smaller number wins; a list keeps its first
    ``cap`` items. Architectures and batch sizes are never capped; resolutions only in a
    ``small`` dry run (at ``SMALL_RESOLUTION``: every image side, the cascade's stages', the
    data chapter's, the memory tests')."""
    def cap(key, value):
        if small and key == "resolutions":  # a dict of sides, not of options
            return {k: min(v, SMALL_RESOLUTION) for k, v in value.items()}
        if isinstance(value, dict):
            return {k: cap(k, v) for k, v in value.items()}
        if key in ALL_WHEN_NONE and value is None:
            return DRY_RUN_CAPS[key]
        if small and key in RESOLUTION_KEYS and isinstance(value, int):
            return min(value, SMALL_RESOLUTION)
        if small and key == "train_memory_sizes":
            return sorted({min(v, SMALL_RESOLUTION) for v in value})[:1]
        if small and key == "stages":
            return [{**s, "resolution": min(s["resolution"], SMALL_RESOLUTION)} for s in value]
        if key not in DRY_RUN_CAPS or isinstance(value, bool):
            return value
        if isinstance(value, list):
            return value[:DRY_RUN_CAPS[key]]
        return min(value, DRY_RUN_CAPS[key]) if isinstance(value, int) else value
    return {k: cap(k, v) for k, v in params.items()}


def parameters(notebook: Path, profile: str | Path = DEFAULT_PROFILE, overrides: dict | None = None) -> dict:
    """All parameters of ``notebook``: its cell's values, then the profile's, then ``overrides``
    (in a dry run, counts capped by ``DRY_RUN_CAPS``)."""
    cell = notebook_parameters(notebook)
    params = {name: p["default"] for name, p in cell.items()}
    path = profile_dir(profile) / f"{study_name(notebook)}.yml"
    if path.exists():
        from_profile = yaml.safe_load(path.read_text()) or {}
        check_names(from_profile, cell, str(path))
        params.update(from_profile)
    check_names(overrides or {}, cell, f"overrides for {Path(notebook).name}")
    params.update(overrides or {})
    params["profile"] = profile_name(profile)
    return dry_run_caps(params, dry_run_small()) if dry_run() else params


def code_digest(root: Path = PACKAGE) -> str:
    """Hash of the meaning of the package's code (every module's syntax tree without
    docstrings: a comment or docstring edit re-runs no chapter) and of the pinned
    requirements."""
    h = hashlib.sha256(package_digest(root).encode())
    h.update((ROOT / "requirements.txt").read_bytes())
    return h.hexdigest()


def upstream_results(study: str, profile: str, folders: list[Path]) -> dict:
    """Parameters and results of ``study``'s declared upstream studies (the first found)."""
    out = {}
    for up in registry.get(study).upstream:
        for folder in folders:
            path = folder / profile / f"{up}.json"
            if path.exists():
                doc = json.loads(path.read_text())
                out[up] = [doc.get("params"), doc.get("results")]
                break
    return out


def run_fingerprint(notebook: Path, params: dict, folders: list[Path]) -> str:
    """Source, parameters, package code, every upstream study's parameters and results,
    and the files of the committed folders it reads (``Study.inputs``: the verification
    reports), so that a chapter built on another re-runs when that one changes."""
    h = hashlib.sha256(Path(notebook).read_bytes())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    h.update(code_digest().encode())
    h.update(b"dry-run" if dry_run() else b"")
    study, profile = study_name(notebook), str(params["profile"])
    ups = upstream_results(study, profile, folders)
    h.update(json.dumps(ups, sort_keys=True, default=str).encode())
    for sub in registry.get(study).inputs:
        folder = results_root() / profile / sub
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            h.update(path.name.encode() + (path.read_bytes() if path.is_file() else b""))
    return h.hexdigest()


@dataclass(frozen=True)
class Target:
    """Where a run writes its results and where it reads upstream studies' results."""

    results_out: Path  # the folder holding <profile>/<study>.json
    results_from: Path


def execute(notebook: Path, output: Path, params: dict, target: Target | None = None, force: bool = False,
            timeout: float | None = None, clock: console.Clock | None = None, position: str = "") -> bool:
    """Run ``notebook`` with ``params`` into ``output`` (ipynb); False when it was up to date.

    Everything the kernel prints goes to ``<output>.log``; the terminal shows the progress
    lines (``core.progress``) with the chapter's elapsed and remaining minutes. A failing
    notebook is kept as ``<name>.failed.ipynb`` beside a one-line ``<name>.error.txt``.
    """
    target = target or Target(results_root(), results_root())
    output = Path(output)
    study = study_name(notebook)
    stamp = output.with_suffix(".stamp")
    failed, error_file, log_file = (output.with_suffix(s) for s in (".failed.ipynb", ".error.txt", ".log"))
    if not force and is_up_to_date(notebook, output, params, target):
        return False  # unchanged, and its results file is still the one this run wrote
    digest = run_fingerprint(notebook, params, [target.results_out, target.results_from])
    results_file = Path(target.results_out) / str(params["profile"]) / f"{study}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    for stale in (stamp, failed, error_file):
        stale.unlink(missing_ok=True)
    context = {"params": params, "results_out": str(target.results_out), "results_from": str(target.results_from),
               "cwd": os.getcwd()}
    kernel_env = {RUN_CONTEXT: json.dumps(context, default=str), "TQDM_DISABLE": "1"}
    saved = {k: os.environ.get(k) for k in kernel_env}
    os.environ.update(kernel_env)  # the kernel inherits these
    source = output.with_suffix(".source.ipynb")
    nbformat.write(_as_ipynb(notebook), source)
    partial = output.with_suffix(".running.ipynb")
    try:
        with console.chapter_output(study, log_file, clock or console.Clock({}), position):
            papermill.execute_notebook(str(source), str(partial), parameters=params, cwd=str(NOTEBOOKS),
                                       kernel_name="python3", progress_bar=False, log_output=True,
                                       execution_timeout=timeout,
                                       # the kernel's own log (a TCP notice per chapter) is not the reader's
                                       extra_arguments=["--IPKernelApp.log_level=ERROR"])
    except PapermillExecutionError as exc:
        os.replace(partial, failed)
        line = f"{Path(notebook).name}: cell {exc.exec_count} raised {exc.ename}: {exc.evalue}"
        atomic_write_bytes(error_file, (line + "\n").encode())
        raise RunFailed(f"{line}\n  executed notebook kept, showing the failing cell: {failed}\n  full log: {log_file}",
                        failed) from None
    except BaseException:
        if partial.exists():
            os.replace(partial, failed)
        raise
    finally:
        source.unlink(missing_ok=True)
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    os.replace(partial, output)
    stamp.write_text(_stamp(digest, results_file))
    return True


def is_up_to_date(notebook: Path, output: Path, params: dict, target: Target) -> bool:
    """The executed notebook exists, its stamp holds this run's fingerprint, and the results
    file it wrote is still there unchanged."""
    stamp = Path(output).with_suffix(".stamp")
    if not (Path(output).exists() and stamp.exists()):
        return False
    digest = run_fingerprint(notebook, params, [target.results_out, target.results_from])
    results_file = Path(target.results_out) / str(params["profile"]) / f"{study_name(notebook)}.json"
    return stamp.read_text() == _stamp(digest, results_file)


def _stamp(digest: str, results_file: Path) -> str:
    """The run's fingerprint and the hash of the results file it wrote: a chapter whose
    results were deleted, restored from git or overwritten by another run is run again."""
    return f"{digest}\n{file_sha256(results_file) if results_file.exists() else 'no results'}"


def check_parameters(study: str, params: dict) -> None:
    """The chapter's parameters against its declared ranges (``PARAMETERS`` of its study
    module, ``core.params``): one error naming every bad value and its allowed range."""
    check(study, params, getattr(registry.get(study).load(), "PARAMETERS", {}))


def run_all(profile: str | Path, out_dir: Path, overrides: dict | None = None, only: list[str] | None = None,
            force: bool = False, target: Target | None = None) -> list[Path]:
    """Execute every chapter (or those in ``only``) for ``profile``, upstream chapters first.

    ``overrides`` apply to every chapter that has the parameter (an override no selected
    chapter knows is an error). Before anything runs, the plan is printed: every chapter,
    whether it is up to date, and its expected minutes here (``estimate.expected``)."""
    console.quiet()
    target = target or Target(results_root(), results_root())
    studies = registry.ordered(only)  # an unknown name is an error listing the known ones
    overrides = overrides or {}
    known = {s.name: notebook_parameters(s.path) for s in studies}
    stray = sorted(set(overrides) - set().union(*known.values()))
    if stray:
        raise ValueError(f"unknown parameter(s) {stray} for {[s.name for s in studies]}; known: "
                         f"{ {s: sorted(k) for s, k in known.items()} }")
    params = {s.name: parameters(s.path, profile, {k: v for k, v in overrides.items() if k in known[s.name]})
              for s in studies}
    from simplecnn.pipeline.proof import check_shapes  # proof reads parameters through this module
    for s in studies:  # every bad value of every chapter, before any work starts
        check_parameters(s.name, params[s.name])
    for s in studies:  # and every model at the sizes the chapter will give it, on meta tensors
        if force or not is_up_to_date(s.path, Path(out_dir) / f"{s.path.stem}.ipynb", params[s.name], target):
            ups = {u: params[u] if u in params else parameters(registry.get(u).path, profile) for u in s.upstream}
            check_shapes(s.name, s.load().plan(params[s.name], ups))
    outputs = {s.name: Path(out_dir) / f"{s.path.stem}.ipynb" for s in studies}
    folders = [target.results_out, target.results_from]
    rows, expected, seen = [], {}, set()
    for s in studies:
        if not force and is_up_to_date(s.path, outputs[s.name], params[s.name], target):
            rows.append((s.name, s.notebook, 0.0, "up to date"))
            continue
        upstream = {u: params[u] if u in params else parameters(registry.get(u).path, profile) for u in s.upstream}
        expected[s.name], source = estimate.expected(s.name, params[s.name], folders, upstream, Cache(), seen,
                                                         measure=not dry_run())
        rows.append((s.name, s.notebook, expected[s.name], source))
    for line in console.plan_lines(profile_name(profile), rows):
        console.out(line)
    clock = console.Clock(expected)
    done = []
    for i, study in enumerate(studies, 1):
        position = f"[{i}/{len(studies)}]"
        if study.name in expected:
            console.out(f"{position} {study.notebook}: expected {progress.minutes(expected[study.name])}; "
                        f"log: {outputs[study.name].with_suffix('.log')}")
        started = time.perf_counter()
        ran = execute(study.path, outputs[study.name], params[study.name], target, force=force, clock=clock,
                      position=position)
        if ran:
            clock.done[study.name] = time.perf_counter() - started
            console.out(f"{position} {study.notebook}: done in {progress.minutes(clock.done[study.name])} "
                        f"(run so far {progress.minutes(time.perf_counter() - clock.started)}, "
                        f"~{progress.minutes(clock.remaining())} left) -> {outputs[study.name]}")
        else:
            console.out(f"{position} {study.notebook}: up to date")
        done.append(outputs[study.name])
    return done
