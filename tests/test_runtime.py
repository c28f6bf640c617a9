"""What a run costs and shows: the expected minutes before a run, the terminal's progress
lines, the thread governor that shares the machine, and the recipe a user's data borrows."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from simplecnn.core import progress, recipes, sharing
from simplecnn.core.plan import Loop
from simplecnn.pipeline import console, estimate


def test_the_last_cold_cost_is_used_only_for_the_same_parameters(tmp_path):
    params = {"profile": "cpu", "epochs": 5}
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "zoo.json").write_text(json.dumps({"params": params, "provenance": {"cold_seconds": 123.0}}))
    assert estimate.recorded_seconds("zoo", params, [tmp_path]) == 123.0
    assert estimate.recorded_seconds("zoo", {**params, "epochs": 6}, [tmp_path]) is None
    assert estimate.recorded_seconds("limited_resnets", params, [tmp_path]) is None


def test_the_expected_time_counts_only_what_the_cache_does_not_hold(tmp_path, cache):
    params = {"profile": "cpu"}
    (tmp_path / "cpu").mkdir()
    entries = {"computed": {"weights/a": 500.0}, "loaded": {"weights/b": 300.0}}
    for study in ("patches", "gradcam"):  # gradcam's recorded run loaded what patches computed
        (tmp_path / "cpu" / f"{study}.json").write_text(json.dumps({"params": params, "provenance": {
            "wall_time_s": 600.0 if study == "patches" else 60.0, "cold_seconds": 0.0,
            "cache": entries if study == "patches" else {"computed": {}, "loaded": {"weights/a": 500.0}}}}))
    seen: set[str] = set()
    assert estimate.recorded_seconds("patches", params, [tmp_path], cache, seen) == 900.0  # empty cache
    assert estimate.recorded_seconds("gradcam", params, [tmp_path], cache, seen) == 60.0  # patches trains it first
    for name in ("weights/a", "weights/b"):
        (cache.root / name).mkdir(parents=True)
        (cache.root / name / "manifest.json").write_text("{}")
    assert estimate.recorded_seconds("patches", params, [tmp_path], cache, set()) == 100.0  # warm: only the rest


def test_the_estimate_is_training_images_over_measured_rate(monkeypatch, cache):
    loops = [Loop("a", "cifar_resnet18", {"width": 0.125}, 16, 8, images=800),
             Loop("b", "cifar_resnet18", {"width": 0.125}, 16, 8)]  # inference: not counted
    monkeypatch.setattr(estimate, "plan_of", lambda study, params, upstream: loops)
    monkeypatch.setattr(estimate, "loop_rate", lambda loop, cache=None: 100.0)
    assert estimate.estimated_seconds("x", {}, {}) == pytest.approx(estimate.OVERHEAD_S + estimate.EVALUATION * 8)


def test_a_measured_rate_is_cached_per_device(cache):
    loop = Loop("tiny", "cifar_resnet18", {"width": 0.0625}, 16, 4, images=10)
    first = estimate.loop_rate(loop, cache, steps=1)
    assert first > 0 and estimate.loop_rate(loop, cache, steps=1) == first  # the second is the cache's


def test_the_plan_lines_say_what_will_run_and_for_how_long():
    lines = console.plan_lines("cpu", [("data", "00_data.py", 30.0, "recorded"),
                                       ("zoo", "01_zoo.py", 0.0, "up to date"),
                                       ("limited_resnets", "02_limited_resnets.py", 1800.0, "estimate")])
    assert lines[0] == "cpu profile: 2 of 3 chapters to execute, expected 30.5 min on this machine"
    assert "—" in lines[2] and "30.0 min" in lines[3]


def test_the_console_shows_only_progress_lines_with_elapsed_and_remaining(capsys):
    clock = console.Clock({"patches": 600.0, "gradcam": 60.0})
    handler = console.ChapterConsole("patches", clock, "[4/8]")
    for text in ("Executing Cell 3---", f"{progress.MARK}training bagnet q=17 seed 0", "<Figure size 660x1100>"):
        handler.emit(logging.LogRecord("papermill", logging.INFO, "", 0, text, None, None))
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("  [4/8] patches 0 s, ~11.0 min left | training bagnet q=17")
    assert progress.minutes(45) == "45 s" and progress.minutes(3 * 3600 + 5 * 60) == "3 h 05 min"


def test_the_governor_gives_up_threads_while_others_load_the_machine(monkeypatch):
    readings = iter([(0.0, 0.0, 0.0), (2.0, 4.0, 2.0), (4.0, 6.0, 4.0)])  # time, system busy, this process

    monkeypatch.setattr(sharing.os, "cpu_count", lambda: 2)
    torch.set_num_threads(2)
    g = sharing.ThreadGovernor.__new__(sharing.ThreadGovernor)
    g.interval, g.full, g.proc = 2.0, 2, None
    g._read = lambda: next(readings)
    g._mark = g._read()
    monkeypatch.setattr(sharing.time, "monotonic", lambda: 10.0)
    assert g.step() == 1 and torch.get_num_threads() == 1  # another process used a whole core
    assert g.step() == 2 and torch.get_num_threads() == 2  # alone again: every core
    g.restore()


def test_a_data_set_without_a_recipe_borrows_one_chosen_by_its_resolution(capsys):
    small = recipes.recipe("fast", "pics", resolution=32)
    photos = recipes.recipe("fast", "pics", resolution=96)
    assert small == recipes.RECIPES["fast"]["cifar10"] and photos == recipes.RECIPES["fast"]["imagenette"]
    assert "recipe 'fast' for pics: cifar10's settings (pics at 32 px is small like CIFAR-10" in capsys.readouterr().err
    assert recipes.recipe("fast", "pics", like="imagenette", resolution=32) == photos
    with pytest.raises(ValueError, match="like='mnist'"):
        recipes.recipe("fast", "pics", like="mnist")
    with pytest.raises(ValueError, match="no settings for data set 'pics'.*like='imagenette'"):
        recipes.recipe("fast", "pics")


def test_progressive_resizing_trains_early_epochs_small(bands):
    from simplecnn.core.train import TrainConfig, build_normalized, fit
    config = TrainConfig(epochs=3, batch_size=32, low_res_epochs=2, low_res_scale=0.5)
    assert [config.side(e, 16) for e in range(3)] == [8, 8, 16]
    seen = []
    model = build_normalized("cifar_resnet18", bands, {"width": 0.125}, 0)
    model.register_forward_pre_hook(lambda m, inputs: seen.append(inputs[0].shape[-1]))
    fit(model, bands.train, config)
    assert sorted(set(seen)) == [8, 16] and seen[-1] == 16


def test_the_costs_page_sums_wall_and_cached_seconds_and_reads_estimates(tmp_path):
    from simplecnn.studies import costs
    (tmp_path / "cpu").mkdir()
    for study, wall, cached in (("zoo", 60.0, 0.0), ("limited_resnets", 30.0, 1770.0)):
        (tmp_path / "cpu" / f"{study}.json").write_text(json.dumps(
            {"results": {}, "provenance": {"wall_time_s": wall, "cached_seconds": cached,
                                           "cold_seconds": wall + cached, "device": "cpu"}}))
    table = costs.cost_table(costs.read_docs("cpu", root=tmp_path))
    assert table.loc["limited_resnets", "cold (min)"] == pytest.approx(30.0)  # half a minute run, 29.5 loaded
    assert table.loc["total", "cold (min)"] == pytest.approx(31.0)
    for study in ("patches", "gradcam"):  # both loaded one CNN (10 min): the book's total counts it once
        (tmp_path / "cpu" / f"{study}.json").write_text(json.dumps(
            {"results": {}, "provenance": {"wall_time_s": 60.0, "cached_seconds": 600.0, "cold_seconds": 660.0,
                                           "cache": {"loaded": {"weights/cnn": 600.0}, "computed": {}}}}))
    shared = costs.cost_table(costs.read_docs("cpu", chapters=("patches", "gradcam"), root=tmp_path))
    assert shared.loc["patches", "cold (min)"] == pytest.approx(11.0)  # alone, a chapter pays for it
    assert shared.loc["total", "cold (min)"] == pytest.approx(12.0)  # 2 × 1 min run + 10 min once
    assert costs.estimates(["gpu"], root=tmp_path).empty  # none committed: left out, no error
    (tmp_path / "gpu").mkdir()
    (tmp_path / "gpu" / "estimate.json").write_text(json.dumps(
        {"device": "NVIDIA X", "threads": 8, "torch": "2", "hours": {"zoo": 0.5, "patches": 1.5}, "total_h": 2.0}))
    hours = costs.estimates(["gpu", "paper"], root=tmp_path)
    assert list(hours.index) == ["zoo", "patches", "total"] and hours.shape == (3, 1)
    assert "NVIDIA X" in hours.columns[0] and hours.iloc[-1, 0] == 2.0
    (tmp_path / "gpu" / "estimate.json").write_text("{")
    with pytest.raises(ValueError, match="profile_hours.py --profile gpu --save"):
        costs.estimates(["gpu"], root=tmp_path)
