"""``simplecnn verify``: every rule on synthetic results with known answers, the report's
exit status, and unreadable input."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from simplecnn.core.reproduce import judge, pairs_of
from simplecnn.core.results import Headline
from simplecnn.pipeline import cli, verify

ACC = Headline("accuracy (%)", 80.0, 78.0, 82.0, "95% bootstrap CI over test images", "top-1, test", rule="bootstrap",
               margin=3.0, better="higher")


def h(**changes) -> dict:
    return asdict(replace(ACC, **changes))


def test_an_equal_run_reproduces_every_rule():
    for rule, extra in (("exact", {}), ("bootstrap", {}), ("seeds", {"n": 2}), ("check", {"status": "met"}),
                        ("difference", {"status": "resolved: A > B"}), ("order", {"status": "a>b*; c>a"})):
        row = h(rule=rule, **extra)
        assert judge(row, row).verdict == "reproduced", rule


def test_a_bootstrap_estimate_inside_the_margin_reproduces_and_a_far_one_changes():
    near = judge(h(), h(value=80.4, low=78.4, high=82.4))  # Δ 0.4, SE of Δ ≈ 1.44: 90% interval within ±3
    assert near.verdict == "reproduced" and "within ±3" in near.note
    far = judge(h(), h(value=86.0, low=84.0, high=88.0))  # Δ 6 beyond 1.96 SE, and beyond the margin
    assert far.verdict == "changed" and "(better)" in far.note and far.delta == pytest.approx(6.0)
    worse = judge(h(), h(value=74.0, low=72.0, high=76.0))
    assert worse.verdict == "changed" and "(worse)" in worse.note
    unsure = judge(h(), h(value=82.5, low=80.5, high=84.5))  # Δ 2.5: not resolved, not within ±3 either
    assert unsure.verdict == "inconclusive"


def test_overlapping_intervals_can_still_be_a_change():
    # each interval ±0.5 overlaps the other, yet the difference's interval excludes 0
    a = h(value=80.0, low=79.5, high=80.5, margin=0.2)
    b = h(value=80.8, low=80.3, high=81.3, margin=0.2)
    assert judge(a, b).verdict == "changed"


def test_a_seed_mean_is_judged_by_the_pooled_standard_error():
    a = h(rule="seeds", value=71.5, low=71.4, high=71.6, n=2, margin=1.0)  # ± 0.1 std
    assert judge(a, h(rule="seeds", value=71.6, low=71.5, high=71.7, n=2, margin=1.0)).verdict == "reproduced"
    assert judge(a, h(rule="seeds", value=74.0, low=73.9, high=74.1, n=2, margin=1.0)).verdict == "changed"
    one = h(rule="seeds", value=71.5, low=None, high=None, n=1, margin=1.0)
    assert judge(one, replace_dict(one, value=72.0)).verdict == "inconclusive"


def replace_dict(d: dict, **changes) -> dict:
    return {**d, **changes}


def test_a_flipped_check_or_difference_changes():
    assert judge(h(rule="check", status="met"), h(rule="check", status="NOT met")).verdict == "changed"
    flipped = judge(h(rule="difference", status="resolved: A > B"), h(rule="difference", status="resolved: A < B"))
    assert flipped.verdict == "changed"
    weaker = judge(h(rule="difference", status="resolved: A > B"), h(rule="difference", status="not resolved"))
    assert weaker.verdict == "inconclusive"


def test_an_ordering_keeps_its_resolved_pairs():
    assert pairs_of("a>b*; c>a") == {("a", "b"): True, ("c", "a"): False}
    old = h(rule="order", status="a>b*; c>a; c>b*")
    assert judge(old, h(rule="order", status="a>b*; a>c; c>b*")).verdict == "reproduced"  # only unresolved moved
    assert judge(old, h(rule="order", status="b>a*; c>a; c>b*")).verdict == "changed"
    assert judge(old, h(rule="order", status="b>a; c>a; c>b*")).verdict == "inconclusive"


def test_timings_are_reported_and_other_settings_compare_findings_only():
    assert judge(h(rule="report", value=10.0), h(rule="report", value=99.0)).verdict == "reported"
    assert judge(h(), h(value=50.0, low=49.0, high=51.0), same_setting=False).verdict == "reported"
    assert judge(h(rule="check", status="met"), h(rule="check", status="NOT met"), same_setting=False).verdict \
        == "changed"


# --- the command on results folders ------------------------------------------------------------

def write_run(folder: Path, profile: str, headlines: dict[str, list[dict]], params: dict | None = None) -> Path:
    for study, rows in headlines.items():
        doc = {"study": study, "profile": profile, "params": params or {}, "results": {}, "headlines": rows,
               "provenance": {"git_commit": "abc", "device": "cpu: test", "threads": 2, "packages": {"torch": "2.14.1"}}}
        (folder / profile).mkdir(parents=True, exist_ok=True)
        (folder / profile / f"{study}.json").write_text(json.dumps(doc))
    return folder / profile


@pytest.fixture
def committed(tmp_path) -> Path:
    return write_run(tmp_path / "committed", "cpu", {"zoo": [h(quantity="params", rule="exact", value=11)],
                                                      "patches": [h(), h(quantity="check", rule="check", status="met")]})


def test_a_run_against_itself_reproduces_and_exits_0(committed, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(committed.parent, run)
    report = verify.verify(run, committed)
    assert report.counts()["reproduced"] == 3 and report.exit_status() == 0
    assert cli.main(["verify", str(run), "--against", str(committed)]) == 0
    assert "3 reproduced" in capsys.readouterr().out


def test_one_changed_finding_exits_1_naming_it(committed, tmp_path, capsys):
    run = write_run(tmp_path / "run", "cpu", {"zoo": [h(quantity="params", rule="exact", value=11)],
                                              "patches": [h(), h(quantity="check", rule="check", status="NOT met")]})
    assert cli.main(["verify", str(run), "--against", str(committed), "--md", str(tmp_path / "r.md")]) == 1
    out = capsys.readouterr().out
    assert "changed" in out and "met → NOT met" in out
    assert "| check | 80 | 80 | 0 | check | changed: met → NOT met |" in (tmp_path / "r.md").read_text()


def test_missing_and_new_quantities_are_listed_and_fail_only_when_strict(committed, tmp_path):
    run = write_run(tmp_path / "run", "cpu", {"zoo": [h(quantity="params", rule="exact", value=11)],
                                              "patches": [h(), h(quantity="renamed", rule="check", status="met")]})
    report = verify.verify(run, committed)
    verdicts = {j.quantity: j.verdict for j in report.chapters["patches"]}
    assert verdicts == {"accuracy (%)": "reproduced", "check": "missing", "renamed": "new"}
    assert report.exit_status() == 0 and report.exit_status(strict=True) == 1


def test_a_missing_chapter_or_unreadable_results_exit_2(committed, tmp_path, capsys):
    run = write_run(tmp_path / "run", "cpu", {"zoo": [h(quantity="params", rule="exact", value=11)]})
    assert verify.verify(run, committed).exit_status() == 2
    (run / "zoo.json").write_text("{not json")
    assert cli.main(["verify", str(run), "--against", str(committed)]) == 2
    err = capsys.readouterr().err
    assert "cannot read" in err and "zoo.json" in err
    assert cli.main(["verify", str(tmp_path / "nowhere"), "--against", str(committed)]) == 2
    assert "no results under" in capsys.readouterr().err


def test_another_profile_compares_findings_not_values(committed, tmp_path):
    run = write_run(tmp_path / "run", "gpu", {"zoo": [h(quantity="params", rule="exact", value=11)],
                                              "patches": [h(value=90.0, low=89.0, high=91.0, setting="gpu setting"),
                                                          h(quantity="check", rule="check", status="met")]})
    report = verify.verify(run, committed)
    assert "gpu against cpu" in report.tier
    verdicts = {j.quantity: j.verdict for j in report.chapters["patches"]}
    assert verdicts == {"accuracy (%)": "reported", "check": "reproduced"}


def test_two_undefined_exact_values_are_the_same_answer():
    nan = float("nan")
    assert judge(h(rule="exact", value=nan), h(rule="exact", value=nan)).verdict == "reproduced"
    assert judge(h(rule="exact", value=nan), h(rule="exact", value=1.0)).verdict == "changed"


def test_explanations_must_name_a_finding_that_did_not_reproduce(committed, tmp_path, capsys):
    run = write_run(tmp_path / "run", "cpu", {"zoo": [h(quantity="params", rule="exact", value=11)],
                                              "patches": [h(), h(quantity="check", rule="check", status="NOT met")]})
    why = tmp_path / "why.yml"
    why.write_text("patches:\n  check: the check's threshold moved from 0.5 to 0.3\n")
    assert cli.main(["verify", str(run), "--against", str(committed), "--explain", str(why), "--save", "r"]) == 1
    assert "explained: the check's threshold moved" in capsys.readouterr().out
    saved = json.loads((tmp_path / "results" / "cpu" / "verify" / "r.json").read_text())
    explained = {j["quantity"]: j["explained"] for j in saved["chapters"]["patches"]}
    assert explained == {"accuracy (%)": "", "check": "the check's threshold moved from 0.5 to 0.3"}
    assert "(explained: the check's threshold moved" in (tmp_path / "results" / "cpu" / "verify" / "r.md").read_text()
    from simplecnn.studies import reproducibility
    [report] = reproducibility.reports("cpu")
    table = reproducibility.judged_table(report)
    assert table.set_index("quantity").loc["check", "explained"].startswith("the check's threshold")
    assert reproducibility.report_header(report).startswith("**r**: `")
    # a reason for a finding that reproduced, or for one the report does not judge, is refused
    why.write_text("patches:\n  accuracy (%): nothing happened\n")
    assert cli.main(["verify", str(run), "--against", str(committed), "--explain", str(why)]) == 2
    assert "which is reproduced" in capsys.readouterr().err
    why.write_text("zoo:\n  speed: faster\n")
    assert cli.main(["verify", str(run), "--against", str(committed), "--explain", str(why)]) == 2
    err = capsys.readouterr().err
    assert "does not judge" in err and "patches: check" in err
