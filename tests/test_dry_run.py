"""The dry run: the gpu and paper profiles executed on this CPU with their real
architectures, resolutions and batch sizes (two steps per training loop, a handful of
images, counts capped), each chapter's accelerator-memory estimate printed and checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from simplecnn.core.paths import ROOT
from simplecnn.pipeline import registry, runner


def test_dry_run_caps_counts_and_never_architectures(monkeypatch):
    params = {"curve_images": 1000, "bootstrap": 2000, "grid_size": 40, "train_memory_sizes": [224, 448, 896],
              "stages": [{"model": "resnet50", "resolution": 224, "batch_size": 256}], "resolution": 224,
              "batch_size": 32, "probe": True, "tile2vec": {"channels": 32, "steps": 1000},
              "linear": {"max_patches": 200000, "c": 1.0}, "train_size": None, "test_size": 5, "val_size": 500}
    capped = runner.dry_run_caps(params)
    assert capped["tile2vec"] == {"channels": 32, "steps": runner.DRY_RUN_CAPS["steps"]}
    assert capped["linear"] == {"max_patches": runner.DRY_RUN_CAPS["max_patches"], "c": 1.0}
    assert capped["curve_images"] == runner.DRY_RUN_CAPS["curve_images"] and capped["bootstrap"] == 20
    assert capped["train_memory_sizes"] == [224]
    assert capped["stages"] == params["stages"] and capped["resolution"] == 224 and capped["batch_size"] == 32
    assert capped["probe"] is True
    assert (capped["train_size"], capped["test_size"], capped["val_size"]) == (runner.DRY_RUN_CAPS["train_size"], 5,
                                                                               runner.DRY_RUN_CAPS["val_size"])
    monkeypatch.setenv("SIMPLECNN_DRY_RUN", "1")
    nb = registry.get("gradcam").path
    assert runner.parameters(nb, "paper")["curve_images"] == runner.DRY_RUN_CAPS["curve_images"]
    monkeypatch.delenv("SIMPLECNN_DRY_RUN")
    assert runner.parameters(nb, "paper")["curve_images"] == 1000


def test_a_chapter_over_the_accelerator_limit_fails_the_dry_run(tmp_path):
    folder = tmp_path / "gpu"
    folder.mkdir()
    for study, peak in (("zoo", 1e9), ("cascade", 90e9)):
        (folder / f"{study}.json").write_text(json.dumps({"provenance": {"dry_run": {"peak_estimate_bytes": peak}}}))
    with pytest.raises(ValueError, match="cascade"):
        runner.dry_run_report(tmp_path, "gpu", ["zoo", "cascade"])
    assert runner.dry_run_report(tmp_path, "gpu", ["zoo"])[0] == ("zoo", 1e9)


@pytest.mark.slow
@pytest.mark.dryrun
@pytest.mark.parametrize("profile", ["gpu", "paper"])
def test_the_profile_runs_dry_on_this_cpu(profile, tmp_path):
    out = tmp_path / f"{profile}-dry"
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    done = subprocess.run([sys.executable, "-m", "simplecnn", "run", "--profile", profile, "--dry-run", "--out",
                           str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=2400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    studies = [s.name for s in registry.ordered(None)]
    for study in studies:
        doc = json.loads((out / "results" / profile / f"{study}.json").read_text())
        assert "dry_run" in doc["provenance"], study
        assert doc["params"]["profile"] == profile
    report = [line for line in done.stdout.splitlines() if line.startswith(f"dry run {profile}:")]
    assert len(report) == len(studies)
    trained = json.loads((out / "results" / profile / "cascade.json").read_text())["provenance"]["dry_run"]
    assert trained["peak_estimate_bytes"] > 0 and trained["training_loops"]
    print("\n".join(report))
