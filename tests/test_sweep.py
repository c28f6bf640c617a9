"""Batch re-runs: the grid, resuming, failures that do not stop the sweep, threads, Dask, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys


import pytest

from simplecnn.pipeline import runner, sweep
from simplecnn.core.paths import ROOT

pytestmark = pytest.mark.slow

TOY = '''# %% [markdown]
# # A toy study

# %% tags=["parameters"]
profile: str = "smoke"  # profile
a: int = 1  # a number
b: float = 0.5  # another
note: str = "x"  # unused

# %%
import os
import time

from simplecnn.core import results

if a == 3:
    raise ValueError("a=3 is not allowed")
results.write_results("toy", profile, {"a": a, "b": b},
                      {"score": a * b, "nested": {"a": a}, "threads": os.environ.get("OMP_NUM_THREADS")}, time.time())
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    nb = tmp_path / "nb" / "09_toy.py"
    nb.parent.mkdir()
    nb.write_text(TOY)
    profiles = tmp_path / "profiles"
    (profiles / "smoke").mkdir(parents=True)
    (profiles / "smoke" / "toy.yml").write_text("b: 0.5\n")
    monkeypatch.setattr(runner, "PROFILES", profiles)
    return nb


def test_grid_is_the_cartesian_product():
    assert sweep.grid({"a": [1, 2], "b": ["x", "y", "z"]})[1] == {"a": 1, "b": "y"}
    assert len(sweep.grid({"a": [1, 2], "b": ["x", "y", "z"]})) == 6
    with pytest.raises(ValueError, match="no values"):
        sweep.grid({"a": []})


def test_sweep_collects_skips_finished_runs_and_survives_failures(toy, tmp_path):
    out = tmp_path / "sweep"
    table = sweep.run_sweep(toy, {"a": [1, 3, 2], "b": [0.5, 2.0]}, "smoke", jobs=2, out=out)
    assert len(table) == 6 and (out / "sweep.csv").exists()
    failed = table[table.status == "failed"]
    assert len(failed) == 2 and all("a=3 is not allowed" in e and "cell" in e for e in failed.error)
    done = table[table.status == "done"]
    assert (done["score"] == done["a"] * done["b"]).all() and (done["nested.a"] == done["a"]).all()
    assert set(done["threads"].astype(str)) == {str(max(1, (os.cpu_count() or 1) // 2))}
    again = sweep.run_sweep(toy, {"a": [1, 3, 2], "b": [0.5, 2.0]}, "smoke", jobs=1, out=out)
    assert set(again[again.a != 3].status) == {"skipped (up to date)"}
    assert (again[again.a != 3]["score"].to_numpy() == done.sort_values(["a"]).sort_index()["score"].to_numpy()).all()
    with pytest.raises(ValueError, match="no parameter"):
        sweep.run_sweep(toy, {"c": [1]}, "smoke", out=out)


def test_sweep_runs_on_a_dask_cluster(toy, tmp_path):
    from dask.distributed import LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        table = sweep.run_sweep(toy, {"a": [4, 5]}, "smoke", scheduler=cluster.scheduler_address,
                                out=tmp_path / "dask")
    assert table.status.tolist() == ["done", "done"] and table.score.tolist() == [2.0, 2.5]


def test_sweep_command_line_writes_table_and_plot(tmp_path):
    out = tmp_path / "cli"
    env = {**os.environ, "SIMPLECNN_CACHE": str(tmp_path / "cache"), "SIMPLECNN_BUILD": str(tmp_path / "build")}
    done = subprocess.run([sys.executable, "-m", "simplecnn", "sweep", "notebooks/00_data.py", "--profile", "smoke",
                           "-p", "per_class", "1", "2", "--out", str(out), "--metric", "imagenette.train"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "sweep.csv").exists() and (out / "sweep.png").stat().st_size > 1000
    doc = json.loads((out / "run-001" / "results" / "smoke" / "data.json").read_text())
    assert doc["params"]["per_class"] == 2
