"""Batch re-runs: the grid, resuming, failures that do not stop the sweep, threads, timeouts,
Dask, the command line; results/ never touched."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from simplecnn.core.paths import NOTEBOOKS, ROOT
from simplecnn.pipeline import sweep

pytestmark = pytest.mark.slow
DATA = NOTEBOOKS / "00_data.py"
FIXED = {"datasets": ["imagenette"], "per_class": 1}  # the cheapest chapter, on one data set


def test_grid_is_the_cartesian_product():
    assert sweep.grid({"a": [1, 2], "b": ["x", "y", "z"]})[1] == {"a": 1, "b": "y"}
    assert len(sweep.grid({"a": [1, 2], "b": ["x", "y", "z"]})) == 6
    with pytest.raises(ValueError, match="no values"):
        sweep.grid({"a": []})


def test_unknown_swept_parameter_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no parameter.*per_class"):
        sweep.run_sweep(DATA, {"c": [1]}, "smoke", out=tmp_path)


def test_sweep_collects_skips_finished_runs_and_survives_failures(tmp_path):
    out = tmp_path / "sweep"
    axes = {"resolutions": [{"imagenette": 16}, {"imagenette": 4}, {"imagenette": 24}]}  # 4 px is refused
    table = sweep.run_sweep(DATA, axes, "smoke", jobs=2, out=out, base=FIXED)
    assert len(table) == 3 and (out / "sweep.csv").exists()
    failed = table[table.status == "failed"]
    assert len(failed) == 1 and "resolution must be at least 8" in failed.error.iloc[0]
    assert "cell" in failed.error.iloc[0] and (out / "run-001" / "00_data.failed.ipynb").exists()
    done = table[table.status == "done"]
    assert len(done) == 2 and (done["imagenette.train"] > 0).all()
    threads = {json.loads((out / r / "results" / "smoke" / "data.json").read_text())["provenance"]["device"]
               for r in done.run}
    assert all(f"{max(1, (os.cpu_count() or 1) // 2)} threads" in t for t in threads), threads
    again = sweep.run_sweep(DATA, axes, "smoke", jobs=1, out=out, base=FIXED)
    assert set(again[again.run != "run-001"].status) == {"skipped (up to date)"}
    assert subprocess.run(["git", "status", "--porcelain", "--", "results"], cwd=ROOT, capture_output=True,
                          text=True).stdout == ""


def test_a_run_past_its_timeout_is_stopped_and_reported(tmp_path):
    table = sweep.run_sweep(DATA, {"per_class": [1]}, "smoke", out=tmp_path / "t", base=FIXED, timeout=3)
    assert table.status.tolist() == ["failed"] and "timed out after 3 s" in table.error.iloc[0]


def test_sweep_runs_on_a_dask_cluster(tmp_path):
    from dask.distributed import LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        table = sweep.run_sweep(DATA, {"per_class": [1, 2]}, "smoke", scheduler=cluster.scheduler_address,
                                out=tmp_path / "dask", base=FIXED)
    assert table.status.tolist() == ["done", "done"]


def test_sweep_command_line_writes_table_and_plot(tmp_path):
    out = tmp_path / "cli"
    env = {**os.environ, "SIMPLECNN_CACHE": str(tmp_path / "cache"), "SIMPLECNN_BUILD": str(tmp_path / "build")}
    done = subprocess.run([sys.executable, "-m", "simplecnn", "sweep", "notebooks/00_data.py", "--profile", "smoke",
                           "-p", "per_class", "1", "2", "-y", "datasets: [imagenette]", "--out", str(out),
                           "--metric", "imagenette.train"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ETA" in done.stdout and (out / "sweep.csv").exists() and (out / "sweep.png").stat().st_size > 1000
    doc = json.loads((out / "run-001" / "results" / "smoke" / "data.json").read_text())
    assert doc["params"]["per_class"] == 2 and doc["params"]["datasets"] == ["imagenette"]
