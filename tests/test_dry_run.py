"""Proving the gpu and paper profiles without a GPU: every model at full size forward and
backward on meta tensors (shapes and each chapter's memory estimate, in seconds), and every
notebook's code path executed small (counts and resolutions capped). The full real-size dry
run stays behind the ``dryrun`` marker (``make dry-run``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from simplecnn.core.memory import activation_bytes, fake_pass, training_estimate
from simplecnn.core.models import MODELS, build_model, register
from simplecnn.core.paths import ROOT
from simplecnn.core.plan import Loop
from simplecnn.pipeline import proof, registry, runner


def test_dry_run_caps_counts_and_never_architectures(monkeypatch):
    params = {"curve_images": 1000, "bootstrap": 2000, "grid_size": 40, "train_memory_sizes": [224, 448, 896],
              "stages": [{"model": "resnet50", "resolution": 224, "batch_size": 256}], "resolution": 224,
              "batch_size": 32, "probe": True, "tile2vec": {"channels": 32, "steps": 1000},
              "linear": {"max_patches": 200000, "c": 1.0}, "train_size": None, "test_size": 5, "val_size": 500,
              "seeds": [0, 1, 2], "resolutions": {"imagenette": 224}}
    capped = runner.dry_run_caps(params)
    assert capped["tile2vec"] == {"channels": 32, "steps": runner.DRY_RUN_CAPS["steps"]}
    assert capped["linear"] == {"max_patches": runner.DRY_RUN_CAPS["max_patches"], "c": 1.0}
    assert capped["curve_images"] == runner.DRY_RUN_CAPS["curve_images"] and capped["bootstrap"] == 20
    assert capped["train_memory_sizes"] == [224] and capped["seeds"] == [0, 1]
    assert capped["stages"] == params["stages"] and capped["resolution"] == 224 and capped["batch_size"] == 32
    assert capped["probe"] is True and capped["resolutions"] == {"imagenette": 224}
    assert (capped["train_size"], capped["test_size"], capped["val_size"]) == (runner.DRY_RUN_CAPS["train_size"], 5,
                                                                               runner.DRY_RUN_CAPS["val_size"])
    small = runner.dry_run_caps(params, small=True)
    side = runner.SMALL_RESOLUTION
    assert small["resolution"] == side and small["stages"][0]["resolution"] == side
    assert small["resolutions"] == {"imagenette": side} and small["train_memory_sizes"] == [side]
    assert small["batch_size"] == 32 and small["stages"][0]["batch_size"] == 256  # batches are the profile's
    monkeypatch.setenv("SIMPLECNN_DRY_RUN", "1")
    nb = registry.get("gradcam").path
    assert runner.parameters(nb, "paper")["curve_images"] == runner.DRY_RUN_CAPS["curve_images"]
    monkeypatch.delenv("SIMPLECNN_DRY_RUN")
    assert runner.parameters(nb, "paper")["curve_images"] == 1000


@pytest.mark.parametrize("loop", [Loop("ResNet", "cifar_resnet18", {"width": 0.125}, 32, 1),
                                  Loop("BagNet", "bagnet", {"q": 9, "width": 0.125, "blocks": [1, 1, 1, 1]}, 40, 1),
                                  Loop("with EMA", "resnet18", {"width": 0.125}, 64, 1, ema=True)],
                         ids=lambda loop: loop.what)
def test_the_fake_pass_counts_what_a_real_pass_counts(loop):
    torch.manual_seed(0)
    real = loop.build()
    fake = fake_pass(loop)
    assert fake["activation_bytes"] == activation_bytes(real, (3, loop.resolution, loop.resolution)) > 0
    assert fake["params"] == sum(p.numel() for p in real.parameters())
    assert fake["estimate_bytes"] == training_estimate(real, loop.batch, loop.resolution, loop.ema)


def test_the_fake_pass_scales_with_the_batch():
    one = fake_pass(Loop("one", "resnet50", {}, 224, 1, classes=1000))
    many = fake_pass(Loop("many", "resnet50", {}, 224, 256, classes=1000))
    assert many["activation_bytes"] == 256 * one["activation_bytes"]
    assert many["estimate_bytes"] > 24e9  # ResNet-50 at batch 256 in fp32 does not fit a 24 GB GPU


class HeadFor64(nn.Module):
    """A deliberately wrong model: its linear head is sized for 64-px inputs."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU(), nn.Flatten())
        self.head = nn.Linear(4 * 32 * 32, num_classes)

    def forward(self, x):
        return self.head(self.body(x))


def test_a_model_that_only_fits_64_px_fails_the_fake_pass_at_224():
    if "head_for_64" not in MODELS:
        register("head_for_64")(lambda num_classes: HeadFor64(num_classes))
    assert build_model("head_for_64", 3)(torch.rand(1, 3, 64, 64)).shape == (1, 3)
    assert fake_pass(Loop("fits", "head_for_64", {}, 64, 8, classes=3))["params"] > 0
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied|must have same reduction dim"):
        fake_pass(Loop("does not fit", "head_for_64", {}, 224, 8, classes=3))


def test_a_profile_over_one_accelerator_fails_the_fake_proof(monkeypatch):
    huge = Loop("ResNet-50 at batch 4096", "resnet50", {}, 224, 4096, images=1, classes=1000)
    monkeypatch.setattr(proof, "profile_plans", lambda profile, studies=None: {"cascade": [huge], "data": []})
    with pytest.raises(ValueError, match=r"cascade \(ResNet-50 at batch 4096\) would need \d+ GB"):
        proof.fake_proof("gpu")
    rows = proof.fake_proof("gpu", limit=1e15)
    assert rows[0]["training_peak_bytes"] > proof.LIMIT_BYTES and rows[1]["training_peak_bytes"] == 0


def test_a_chapter_over_the_accelerator_limit_fails_the_real_dry_run(tmp_path):
    folder = tmp_path / "gpu"
    folder.mkdir()
    for study, peak in (("zoo", 1e9), ("cascade", 90e9)):
        (folder / f"{study}.json").write_text(json.dumps({"provenance": {"dry_run": {"peak_estimate_bytes": peak}}}))
    with pytest.raises(ValueError, match="cascade"):
        proof.dry_run_report(tmp_path, "gpu", ["zoo", "cascade"])
    assert proof.dry_run_report(tmp_path, "gpu", ["zoo"])[0] == ("zoo", 1e9)


@pytest.mark.parametrize("profile", ["gpu", "paper"])
def test_every_model_of_the_profile_fits_at_full_size_on_fake_tensors(profile):
    rows = proof.fake_proof(profile)
    assert [r["study"] for r in rows] == [s.name for s in registry.ordered()]
    trains = {r["study"]: r["training_peak_bytes"] for r in rows}
    assert all(trains[s] > 0 for s in ("limited_resnets", "patches", "cascade"))
    assert max(trains.values()) < proof.LIMIT_BYTES
    print("\n".join(proof.report_lines(profile, rows)))


def run_dry(profile: str, out, mode: list[str], timeout: int):
    """``simplecnn run --dry-run [small]`` of ``profile`` into ``out`` (a subprocess, as a user runs it);
    returns ``out`` and what it printed."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    done = subprocess.run([sys.executable, "-m", "simplecnn", "run", "--profile", profile, "--dry-run", *mode,
                           "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out, done.stdout


def recorded_loops(results: dict) -> set[tuple]:
    """(params, batch, resolution) of every training loop a dry run's provenance recorded."""
    return {(r["model_params"], r["batch"], r["resolution"]) for r in results["provenance"]["dry_run"]["training_loops"]}


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["gpu", "paper"])
def test_every_notebook_of_the_profile_runs_small_and_its_plan_names_its_training(profile, tmp_path):
    out, _ = run_dry(profile, tmp_path / f"{profile}-small", ["small"], timeout=1200)
    os.environ["SIMPLECNN_DRY_RUN"] = "small"  # the plan of the small run's own (capped) parameters
    try:
        plans = proof.profile_plans(profile)
    finally:
        del os.environ["SIMPLECNN_DRY_RUN"]
    for study in registry.STUDIES:
        doc = json.loads((out / "results" / profile / f"{study}.json").read_text())
        assert doc["params"]["profile"] == profile and "dry_run" in doc["provenance"], study
        planned = set()
        for loop in plans[study]:
            if loop.trains:
                torch.manual_seed(0)
                planned.add((sum(p.numel() for p in loop.build().parameters()), loop.batch, loop.resolution))
        assert recorded_loops(doc) <= planned, f"{study}: trained something its plan does not list"


@pytest.mark.slow
@pytest.mark.dryrun
@pytest.mark.parametrize("profile", ["gpu", "paper"])
def test_the_profile_runs_dry_at_full_size_on_this_cpu(profile, tmp_path):
    out, printed = run_dry(profile, tmp_path / f"{profile}-dry", [], timeout=2400)
    studies = [s.name for s in registry.ordered(None)]
    for study in studies:
        doc = json.loads((out / "results" / profile / f"{study}.json").read_text())
        assert "dry_run" in doc["provenance"], study
        assert doc["params"]["profile"] == profile
    report = [line for line in printed.splitlines() if line.startswith(f"dry run {profile}:")]
    assert len(report) == len(studies)
    trained = json.loads((out / "results" / profile / "cascade.json").read_text())["provenance"]["dry_run"]
    assert trained["peak_estimate_bytes"] > 0 and trained["training_loops"]
    print("\n".join(report))
