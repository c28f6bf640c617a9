"""Batch re-runs: one notebook over the Cartesian grid of parameter values, into one table.

Each run is ``python -m simplecnn run --only <study> --out <sweep>/run-NNN`` in a fresh
process with a profile's parameters, the sweep's fixed overrides and the run's values on
top: its executed notebook and results json land in its own folder, upstream studies'
results are read from ``results/<profile>/`` (or ``--results-from``), and nothing under
``results/`` changes. A run whose executed notebook is up to date is skipped, so an
interrupted sweep resumes; a failing or timed-out run is recorded with its cell and error
and the others go on. Parallel workers split the machine's cores (``OMP_NUM_THREADS``);
with a Dask scheduler address the same runs go to a dask.distributed cluster.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import yaml

from simplecnn.core.io import atomic_write_bytes
from simplecnn.core.paths import ROOT, build_dir, results_root
from simplecnn.pipeline.runner import notebook_parameters, parameters, profile_name, study_name

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def grid(axes: dict[str, list]) -> list[dict]:
    """Every combination of the axes' values, the first axis varying slowest."""
    if not axes:
        return [{}]
    for name, values in axes.items():
        if not values:
            raise ValueError(f"parameter {name!r} has no values to sweep")
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


def sweep_folder(notebook: Path, profile: str, axes: dict[str, list], base: dict | None = None) -> Path:
    key = hashlib.sha256(json.dumps([axes, base or {}], sort_keys=True, default=str).encode()).hexdigest()[:8]
    return build_dir() / "sweeps" / f"{study_name(notebook)}-{profile_name(profile)}-{key}"


def local_gpus() -> queue.Queue | None:
    """The machine's GPUs as a queue of free ids (None without CUDA): a run takes one and
    gives it back, so ``-j N`` with N GPUs runs one run per GPU, never two on ``cuda:0``."""
    import torch
    if not torch.cuda.is_available():
        return None
    free: queue.Queue = queue.Queue()
    for i in range(torch.cuda.device_count()):
        free.put(i)
    return free


def run_one(job: dict) -> dict:
    """Execute one run in a fresh process (its own threads and environment), within ``timeout``."""
    folder = Path(job["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    params_file = folder / "params.yml"
    atomic_write_bytes(params_file, yaml.safe_dump(job["params"]).encode())
    cmd = [sys.executable, "-m", "simplecnn", "run", "--only", job["study"], "--out", str(folder),
           "--profile", job["profile"], "-f", str(params_file), "--results-from", job["results_from"]]
    env = {**os.environ, **{var: str(job["threads"]) for var in THREAD_VARIABLES}}
    gpus = job.get("gpus")
    gpu = gpus.get() if gpus is not None else None  # one GPU per run at a time: wait for a free one
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    status = {"run": folder.name}
    started = time.time()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its own process group: a timeout stops the kernel too
    try:
        log, _ = proc.communicate(timeout=job.get("timeout"))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
        status.update(status="failed", error=f"timed out after {job['timeout']:g} s")
    else:
        error = next((folder / n for n in os.listdir(folder) if n.endswith(".error.txt")), None)
        if proc.returncode == 0:
            status["status"] = "skipped (up to date)" if ": up to date" in log and "done in" not in log else "done"
        else:
            message = error.read_text().strip() if error else (log.strip().splitlines() or ["?"])[-1]
            status.update(status="failed", error=message)
    finally:
        if gpu is not None:
            gpus.put(gpu)
    atomic_write_bytes(folder / "run.log", log.encode())
    status["seconds"] = round(time.time() - started, 1)
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


def _progress(done: int, total: int, started: float, status: dict) -> str:
    elapsed = time.time() - started
    eta = elapsed / done * (total - done)
    extra = f": {status['error']}" if status.get("error") else ""
    return (f"[{done}/{total}] {status['run']} {status['status']} in {status['seconds']:.0f} s{extra}"
            f" | elapsed {elapsed / 60:.1f} min, ETA {eta / 60:.1f} min")


def run_sweep(notebook: Path, axes: dict[str, list], profile: str = "cpu", jobs: int = 1,
              scheduler: str | None = None, out: Path | None = None, base: dict | None = None,
              results_from: Path | None = None, timeout: float | None = None) -> pd.DataFrame:
    """Run every combination of ``axes`` (on top of ``profile`` and ``base`` overrides) and
    return (and write as ``sweep.csv``) one row per run: its swept values, status, error
    and every number of its results json."""
    notebook = Path(notebook)
    study = study_name(notebook)
    known = notebook_parameters(notebook)
    unknown = sorted(set(axes) - set(known))
    if unknown:
        raise ValueError(f"{notebook.name} has no parameter {unknown}; its parameters: {sorted(known)}")
    parameters(notebook, profile, base)  # validates the profile and the fixed overrides now
    folder = Path(out) if out else sweep_folder(notebook, profile, axes, base)
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
    combos = grid(axes)
    runs = [{"study": study, "profile": str(profile), "params": {**(base or {}), **combo}, "threads": threads,
             "folder": str(folder / f"run-{i:03d}"), "timeout": timeout,
             "results_from": str(results_from or results_root())} for i, combo in enumerate(combos)]
    started, statuses = time.time(), {}
    if scheduler:
        from dask.distributed import Client, as_completed as dask_completed
        with Client(scheduler) as client:
            futures = {client.submit(run_one, r, pure=False): i for i, r in enumerate(runs)}
            for n, fut in enumerate(dask_completed(futures), 1):
                statuses[futures[fut]] = fut.result()
                print(_progress(n, len(runs), started, statuses[futures[fut]]), flush=True)
    else:  # threads suffice: each run is its own process; on a GPU machine each run gets a GPU of its own
        gpus = local_gpus()
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            futures = {pool.submit(run_one, {**r, "gpus": gpus}): i for i, r in enumerate(runs)}
            for n, fut in enumerate(as_completed(futures), 1):
                statuses[futures[fut]] = fut.result()
                print(_progress(n, len(runs), started, statuses[futures[fut]]), flush=True)
    rows = []
    name = profile_name(profile)
    for i, (combo, run) in enumerate(zip(combos, runs)):
        row = {**combo, **statuses[i]}
        path = Path(run["folder"]) / "results" / name / f"{study}.json"
        if statuses[i]["status"] != "failed" and path.exists():
            row.update(flatten(json.loads(path.read_text())["results"]))
        rows.append(row)
    table = pd.DataFrame(rows)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / "sweep.csv", table.to_csv(index=False).encode())
    return table


def plot_sweep(table: pd.DataFrame, metric: str, x: str, hue: str | None = None) -> plt.Figure:
    """A chosen metric against a chosen swept parameter (hue: another swept parameter)."""
    if metric not in table:
        raise ValueError(f"no column {metric!r} in the sweep table; columns: {sorted(table.columns)}")
    fig, ax = plt.subplots(figsize=(6, 4))
    sns.lineplot(data=table, x=x, y=metric, hue=hue, marker="o", ax=ax)
    ax.set_title(f"{metric} against {x}")
    fig.tight_layout()
    return fig
