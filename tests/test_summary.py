"""The closing table on fake studies: row formatting, columns only for profiles that ran,
missing results named with their fix, and the figure's numbers."""

from __future__ import annotations

import json
import math
import sys
import types
from pathlib import Path

import matplotlib
import pytest

from simplecnn.core.paths import results_root
from simplecnn.core.results import Headline
from simplecnn.studies import summary

matplotlib.use("Agg")


def fake_headline(results: dict) -> list[Headline]:
    """A study whose results are {"acc": [mean, std], "ci": [value, low, high], "n": count}."""
    mean, std = results["acc"]
    value, low, high = results["ci"]
    return [Headline("BagNet-33 image accuracy (%)", mean, mean - std, mean + std, "mean ± std, 3 seeds",
                     results.get("setting", "top-1, Imagenette test, 64 px"), 87.0,
                     "ImageNet top-5, 224 px (BagNet paper)"),
            Headline("patch AUC", value, low, high, "95% bootstrap CI", "Imagenette test, q = 33"),
            Headline("images", results["n"], interval="exact count", setting="Imagenette train"),
            Headline("parameters (M)", 11.7, interval="exact count", setting="ResNet-18, 1000 classes", source=11.69,
                     source_setting="the lecture's table", comparable=True, rule="exact")] + \
        ([Headline("BagNet-9 image accuracy (%)", results["extra"], setting="top-1, Imagenette test")]
         if "extra" in results else [])


@pytest.fixture
def fake_studies(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Two fake study modules in place of the real seven."""
    alpha = types.ModuleType("fake_alpha")
    alpha.headline = fake_headline
    no_headline = types.ModuleType("fake_beta")
    monkeypatch.setitem(sys.modules, "fake_alpha", alpha)
    monkeypatch.setitem(sys.modules, "fake_beta", no_headline)
    studies = {"alpha": "fake_alpha"}
    monkeypatch.setattr(summary, "STUDIES", studies)
    return studies


def write(profile: str, study: str, results: dict) -> Path:
    path = results_root() / profile / f"{study}.json"  # tests/conftest.py points this at a tmp dir
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"study": study, "profile": profile, "results": results}))
    return path


SMOKE = {"acc": [75.23, 0.4], "ci": [0.7431, 0.7312, 0.7554], "n": 1200}


def test_rows_carry_value_interval_setting_and_source(fake_studies):
    write("smoke", "alpha", SMOKE)
    table = summary.headline_table("smoke", ["paper"]).set_index("quantity")
    bag = table.loc["BagNet-33 image accuracy (%)"]
    assert bag["smoke"] == "75.2 ± 0.4" and bag["interval"] == "mean ± std, 3 seeds"
    assert bag["setting"] == "top-1, Imagenette test, 64 px"
    assert bag["source"] == "87" and bag["source setting"] == "ImageNet top-5, 224 px (BagNet paper)"
    assert table.loc["patch AUC", "smoke"] == "0.743 [0.731, 0.755]"
    assert table.loc["patch AUC", "source"] == "—" and table.loc["patch AUC", "source setting"] == ""
    assert table.loc["images", "smoke"] == "1,200"
    assert list(table["study"].unique()) == ["alpha"]


def test_a_profile_without_results_gets_no_column(fake_studies):
    write("smoke", "alpha", SMOKE)
    table = summary.headline_table("smoke", ["paper", "gpu"])
    assert list(table.columns) == ["study", "quantity", "setting", "smoke", "interval", "source", "source setting",
                                   "comparable", "goal"]
    assert "not run" not in table.to_string()


def test_a_profile_that_ran_gets_a_column_naming_a_different_setting(fake_studies):
    write("smoke", "alpha", SMOKE)
    write("paper", "alpha", {"acc": [81.46, 0.12], "ci": [0.91, 0.9, 0.92], "n": 9469,
                             "setting": "top-1, Imagenette test, 224 px", "extra": 70.25})
    table = summary.headline_table("smoke", "paper,gpu").set_index("quantity")
    assert "paper" in table.columns and "gpu" not in table.columns
    assert table.loc["BagNet-33 image accuracy (%)", "paper"] == "81.46 ± 0.12 (top-1, Imagenette test, 224 px)"
    assert table.loc["images", "paper"] == "9,469"  # same setting: not repeated
    assert table.loc["BagNet-9 image accuracy (%)", ["smoke", "paper"]].tolist() == ["—", "70.25"]  # paper only


def test_missing_results_name_the_command_that_writes_them(fake_studies):
    with pytest.raises(FileNotFoundError, match=r"python -m simplecnn run --profile cpu --only alpha"):
        summary.headline_table("cpu")


def test_a_study_without_headline_fails_clearly(fake_studies, monkeypatch):
    monkeypatch.setitem(fake_studies, "beta", "fake_beta")
    write("smoke", "alpha", SMOKE)
    write("smoke", "beta", {})
    with pytest.raises(NotImplementedError, match="fake_beta has no headline"):
        summary.headline_table("smoke")


def test_numbers_are_formatted_for_reading():
    assert summary.format_number(None) == "—" and summary.format_number("3 / 4") == "3 / 4"
    assert summary.format_number(11689512) == "11,689,512" and summary.format_number(95.67) == "95.67"
    assert summary.format_number(1.81864) == "1.819" and summary.format_number(2048.0) == "2,048"
    assert summary.interval_decimals(0.4) == 1 and summary.interval_decimals(0.012) == 3
    assert summary.interval_decimals(3.5) == 0 and summary.interval_decimals(0.15) == 2
    assert summary.format_value(Headline("q", 0.5, 0.5, 0.5)) == "0.5"  # empty interval: value alone


def test_comparison_frame_divides_only_what_measures_the_same_thing(fake_studies):
    write("smoke", "alpha", SMOKE)
    frame = summary.comparison_frame("smoke", ["paper"])
    assert list(frame["quantity"]) == ["parameters (M)"]  # BagNet's top-1 beside ImageNet top-5: never divided
    assert math.isclose(frame.iloc[0]["ratio"], 11.7 / 11.69)
    fig = summary.comparison_figure(frame)
    assert fig.axes and "ours ÷ the source" in fig.axes[0].get_xlabel()


def test_one_table_per_study_keeps_settings_in_notes(fake_studies):
    write("smoke", "alpha", SMOKE)
    table, notes = summary.study_table("alpha", summary.headlines("smoke")["alpha"])
    assert table.loc["BagNet-33 image accuracy (%)", "ours ÷ source"] == ""
    assert table.loc["parameters (M)", "ours ÷ source"] == "1.001"
    assert notes[0] == "[1] top-1, Imagenette test, 64 px; source: ImageNet top-5, 224 px (BagNet paper)"
    assert table.loc["BagNet-33 image accuracy (%)", "note"] == 1


def test_summary_knows_the_registry_studies():
    from simplecnn.pipeline import registry  # tests may import the pipeline; the study may not

    modules = {s.name: s.module for s in registry.STUDIES.values()
               if s.name not in ("summary", "reproducibility", "costs")}  # the closing pages read the studies
    assert summary.STUDIES == modules
    assert set(registry.get("summary").upstream) == set(summary.STUDIES)


def test_results_older_than_the_code_say_so(fake_studies):
    write("smoke", "alpha", {"acc": [75.0, 0.4]})  # no "ci": written by older code
    with pytest.raises(ValueError, match=r"cannot read the alpha results \(smoke profile\).*--only alpha"):
        summary.headline_table("smoke")
