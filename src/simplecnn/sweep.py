"""Batch re-runs: one notebook over the Cartesian grid of parameter values, into one table.

Each run is a papermill execution of the notebook with a profile's parameters and the
run's values on top, written with its results json into its own folder of the sweep
(``build/sweeps/<study>-<profile>-<hash of the grid>/run-NNN/``). A run whose executed
notebook is up to date is skipped, so an interrupted sweep resumes; a failing run is
recorded with its cell and error and the others go on. Parallel workers split the
machine's cores (``OMP_NUM_THREADS`` per worker) instead of oversubscribing them; with a
Dask scheduler address the same runs go to a dask.distributed cluster.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .cache import atomic_write_bytes
from .paths import build_dir
from .runner import execute, profile_params, study_name

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def grid(axes: dict[str, list]) -> list[dict]:
    """Every combination of the axes' values, the first axis varying slowest."""
    if not axes:
        return [{}]
    for name, values in axes.items():
        if not values:
            raise ValueError(f"parameter {name!r} has no values to sweep")
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


def sweep_folder(notebook: Path, profile: str, axes: dict[str, list]) -> Path:
    key = hashlib.sha256(json.dumps(axes, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return build_dir() / "sweeps" / f"{study_name(notebook)}-{profile}-{key}"


def run_one(job: dict) -> dict:
    """Execute one run (in a worker process: the environment set here is the run's own)."""
    from papermill.exceptions import PapermillExecutionError

    folder = Path(job["folder"])
    os.environ["SIMPLECNN_RESULTS"] = str(folder / "results")
    for var in THREAD_VARIABLES:
        os.environ[var] = str(job["threads"])
    status = {"run": folder.name}
    try:
        ran = execute(Path(job["notebook"]), folder / f"{Path(job['notebook']).stem}.ipynb", job["params"],
                      progress_bar=False)
        status["status"] = "done" if ran else "skipped (up to date)"
    except PapermillExecutionError as exc:
        status.update(status="failed", error=f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}")
    except Exception as exc:  # a run must not stop the sweep
        status.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    return status


def flatten(doc: dict, prefix: str = "") -> dict:
    """Nested results to dotted keys (lists kept whole, as JSON text)."""
    out = {}
    for k, v in doc.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = json.dumps(v) if isinstance(v, list) else v
    return out


def run_sweep(notebook: Path, axes: dict[str, list], profile: str = "cpu", jobs: int = 1,
              scheduler: str | None = None, out: Path | None = None) -> pd.DataFrame:
    """Run every combination of ``axes`` and return (and write as ``sweep.csv``) one row per
    run: its swept values, status, error and every headline number of its results json."""
    notebook = Path(notebook)
    base = profile_params(notebook, profile)
    unknown = sorted(set(axes) - set(base) - set(notebook_parameters(notebook)))
    if unknown:
        raise ValueError(f"{notebook.name} has no parameter {unknown}; its parameters: "
                         f"{sorted(notebook_parameters(notebook))}")
    folder = Path(out) if out else sweep_folder(notebook, profile, axes)
    cores = os.cpu_count() or 1
    threads = max(1, cores // max(1, jobs))
    combos = grid(axes)
    runs = [{"notebook": str(notebook.resolve()), "params": {**base, **combo}, "threads": threads,
             "folder": str(folder / f"run-{i:03d}")} for i, combo in enumerate(combos)]
    if scheduler:
        from dask.distributed import Client
        with Client(scheduler) as client:
            statuses = client.gather(client.map(run_one, runs, pure=False))
    elif jobs > 1:
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            statuses = list(pool.map(run_one, runs))
    else:
        statuses = [run_one(r) for r in runs]
    rows = []
    study = study_name(notebook)
    for combo, run, status in zip(combos, runs, statuses):
        row = {**combo, **status}
        path = Path(run["folder"]) / "results" / profile / f"{study}.json"
        if status["status"] != "failed" and path.exists():
            row.update(flatten(json.loads(path.read_text())["results"]))
        rows.append(row)
    table = pd.DataFrame(rows)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / "sweep.csv", table.to_csv(index=False).encode())
    return table


def notebook_parameters(notebook: Path) -> dict[str, dict]:
    """Name → {type, default, help} of a notebook's parameters cell, as papermill reads it."""
    import jupytext
    from papermill.inspection import _infer_parameters

    nb = jupytext.read(notebook)
    nb.metadata.setdefault("kernelspec", {"name": "python3", "language": "python", "display_name": "Python 3"})
    for cell in nb.cells:  # papermill expects every cell to carry a tags list
        cell.metadata.setdefault("tags", [])
    return {p.name: {"type": p.inferred_type_name, "default": p.default, "help": p.help}
            for p in _infer_parameters(nb)}


def plot_sweep(table: pd.DataFrame, metric: str, x: str, hue: str | None = None) -> plt.Figure:
    """A chosen metric against a chosen swept parameter (hue: another swept parameter)."""
    if metric not in table:
        raise ValueError(f"no column {metric!r} in the sweep table; columns: {sorted(table.columns)}")
    fig, ax = plt.subplots(figsize=(6, 4))
    sns.lineplot(data=table, x=x, y=metric, hue=hue, marker="o", ax=ax)
    ax.set_title(f"{metric} against {x}")
    fig.tight_layout()
    return fig
