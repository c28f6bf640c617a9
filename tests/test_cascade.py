"""Cascade maps: the vectorised simulation against a per-image loop, the deployed run, calibration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from simplecnn.studies import cascade


def random_cascade(n=200, stages=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    scores = [torch.rand(n, generator=g) for _ in range(stages)]
    correct = [torch.rand(n, generator=g) < 0.5 + 0.15 * p for p in range(stages)]
    return scores, correct, [1.0 * 4 ** p for p in range(stages)]


def brute_force(scores, correct, cost, deltas):
    n, last = len(scores[0]), len(scores) - 1
    acc = paid = 0.0
    exits = [0] * len(scores)
    for i in range(n):
        for p in range(len(scores)):
            paid += cost[p]
            if p == last or scores[p][i] >= deltas[p]:
                acc += float(correct[p][i])
                exits[p] += 1
                break
    return acc / n, paid / n, [e / n for e in exits]


@pytest.mark.parametrize("stages", [2, 3, 4])
def test_simulation_matches_a_per_image_loop(stages):
    scores, correct, cost = random_cascade(stages=stages)
    grids = [torch.tensor([0.0, 0.3, 0.8, 1.0])] * (stages - 1)
    sim = cascade.simulate(scores, correct, cost, grids)
    assert sim["acc"].shape == (4,) * (stages - 1)
    for index in itertools.product(range(4), repeat=stages - 1):
        deltas = [float(grids[p][i]) for p, i in enumerate(index)]
        acc, paid, fractions = brute_force(scores, correct, cost, deltas)
        assert sim["acc"][index] == pytest.approx(acc, abs=1e-6)
        assert sim["cost"][index] == pytest.approx(paid, rel=1e-6)
        assert [float(f[index]) for f in sim["stage_fractions"]] == pytest.approx(fractions, abs=1e-6)


def test_thresholds_outside_zero_one_are_rejected():
    scores, correct, cost = random_cascade()
    with pytest.raises(ValueError, match=r"thresholds must lie in \[0, 1\]"):
        cascade.simulate(scores, correct, cost, [torch.tensor([0.5, 1.2]), torch.tensor([0.5])])
    with pytest.raises(ValueError, match="3 stages need"):
        cascade.simulate(scores, correct, cost, [torch.tensor([0.5])])


class Lookup(nn.Module):
    """Returns a fixed logit row per image; the image's index is written in its first pixel."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = table
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.table[(x[:, 0, 0, 0] * 255).round().long()]


def test_deployed_cascade_agrees_with_the_simulation():
    n, classes = 120, 4
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, classes, (n,), generator=g)
    tables = [torch.randn(n, classes, generator=g) * (1 + p) + 2.0 * nn.functional.one_hot(labels, classes) * p
              for p in range(3)]
    images = torch.zeros(n, 3, 4, 4, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)
    models = [Lookup(t) for t in tables]
    deltas = [0.6, 0.5]
    preds, exits = cascade.classify(models, [images] * 3, deltas)
    scores = [cascade.exit_score(t) for t in tables]
    correct = [t.argmax(1) == labels for t in tables]
    point = cascade.evaluate_thresholds(scores, correct, [1.0, 2.0, 3.0], deltas)
    assert float((preds == labels).float().mean()) == pytest.approx(point["acc"], abs=1e-6)
    assert [float((exits == p).float().mean()) for p in range(3)] == pytest.approx(point["stage_fractions"], abs=1e-6)


def test_exit_scores_are_confidences():
    logits = torch.tensor([[5.0, 0.0, 0.0], [1.0, 1.0, 1.0], [2.0, 1.9, -3.0]])
    for score in cascade.SCORES:
        s = cascade.exit_score(logits, score)
        assert ((s >= 0) & (s <= 1 + 1e-6)).all()
        assert s[0] > s[1] and s[1] == pytest.approx(0.0 if score != "max_prob" else 1 / 3, abs=1e-6)
    with pytest.raises(ValueError, match="unknown exit score"):
        cascade.exit_score(logits, "variance")


def test_temperature_scaling_recovers_the_true_temperature():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4000, 5, generator=g) * 2
    labels = torch.multinomial(torch.softmax(z, 1), 1, generator=g)[:, 0]
    assert cascade.fit_temperature(z * 3.0, labels) == pytest.approx(3.0, rel=0.1)


def test_pareto_front_and_threshold_choice():
    acc = np.array([0.5, 0.7, 0.6, 0.9, 0.9])
    cost = np.array([1.0, 2.0, 3.0, 5.0, 4.0])
    assert cascade.pareto_front(acc, cost).tolist() == [0, 1, 4]
    index = cascade.choose_thresholds(torch.tensor(acc), torch.tensor(cost), 0.65)
    assert index == (1,)
    assert cascade.choose_thresholds(torch.tensor(acc), torch.tensor(cost), 0.95) is None


@pytest.mark.parametrize("stages", [2, 3])
def test_threshold_map_draws_one_cell_per_threshold_pair(stages):
    import matplotlib.pyplot as plt

    from simplecnn.core import plots
    scores, correct, cost = random_cascade(stages=stages)
    grid = cascade.threshold_grid(5)
    sim = cascade.simulate(scores, correct, cost, [grid] * (stages - 1))
    fig, ax = plt.subplots()
    plots.threshold_map(sim["acc"], grid, ax, "acc", "accuracy")
    cells = ax.collections[0].get_array()
    assert cells.size == 5 * (5 if stages == 3 else 1)
    plt.close(fig)


# --- selection on the fine grid, variants, intervals ---------------------------------------

def test_fine_grid_is_the_sorted_union():
    fine = cascade.fine_grid(torch.tensor([0.0, 0.5, 1.0]), torch.tensor([0.7, 1.0]))
    assert fine.tolist() == pytest.approx([0.0, 0.5, 0.7, 1.0])


def test_outcomes_average_to_the_simulation():
    scores, correct, cost = random_cascade(stages=3)
    grids = [torch.tensor([0.0, 0.4, 1.0])] * 2
    per_image, sim = cascade.outcomes(scores, correct, cost, grids), cascade.simulate(scores, correct, cost, grids)
    assert torch.allclose(per_image["correct"].mean(-1), sim["acc"], atol=1e-6)
    assert torch.allclose(per_image["cost"].mean(-1), sim["cost"], rtol=1e-6)
    for p in range(3):
        assert torch.allclose((per_image["exit"] == p).float().mean(-1), sim["stage_fractions"][p], atol=1e-6)


def two_stage_toy(copies=1):
    """Stage 0 is right on images 0 and 1 (score 0.9), wrong on 2 (0.8) and 3 (0.2); stage 1
    is always right. Full accuracy costs 11 per image at δ = 1, 6 at any δ in (0.8, 0.9]."""
    scores = [torch.tensor([0.9, 0.9, 0.8, 0.2]).repeat(copies), torch.ones(4 * copies)]
    correct = [torch.tensor([True, True, False, False]).repeat(copies), torch.ones(4 * copies, dtype=torch.bool)]
    return scores, correct, [1.0, 10.0]


def test_selection_on_the_fine_grid_finds_the_zoomed_threshold():
    scores, correct, cost = two_stage_toy()
    coarse = torch.tensor([0.0, 0.5, 1.0])
    assert cascade.select(scores, correct, cost, [coarse], 1.0) == pytest.approx([1.0])
    fine = cascade.fine_grid(coarse, torch.tensor([0.85, 1.0]))
    assert cascade.select(scores, correct, cost, [fine], 1.0) == pytest.approx([0.85])
    assert cascade.evaluate_thresholds(scores, correct, cost, [0.85])["cost"] == pytest.approx(6.0)
    assert cascade.select(scores, correct, cost, [fine], 1.01) is None


def test_matched_means_the_paired_interval_reaches_zero():
    n = 400
    counts = cascade_counts(n)
    reference = np.ones(n)
    same = cascade.compare_accuracy(reference.copy(), reference, counts)
    assert same["value"] == 0 and same["matched"]
    worse = reference.copy()
    worse[:100] = 0  # 25 points below, far outside any bootstrap interval on 400 images
    d = cascade.compare_accuracy(worse, reference, counts)
    assert d["value"] == pytest.approx(-0.25) and d["high"] < 0 and not d["matched"]
    slightly = reference.copy()
    slightly[:2] = 0  # two images: within the interval
    assert cascade.compare_accuracy(slightly, reference, counts)["matched"]


def cascade_counts(n, rounds=300, seed=0):
    from simplecnn.core.metrics import bootstrap_counts
    return bootstrap_counts(n, rounds, seed)


def test_variants_put_the_report_rule_first_and_reject_bad_subsets():
    rules = cascade.variants(["max_prob", "margin"], 3)
    assert rules[0] == cascade.Variant("max_prob", False, (0, 1, 2))
    assert len(rules) == 4 * 2 * 2 and len(set(rules)) == len(rules)  # 4 subsets × 2 scores × calibration
    assert {r.stages for r in rules} == {(0, 1, 2), (0, 1), (0, 2), (1, 2)}
    with pytest.raises(ValueError, match="stage subset"):
        cascade.variants(["max_prob"], 3, [[2, 1]])


def toy_logits(correct_rows, confident_rows, n_classes=3):
    """Logits whose argmax is the label where ``correct_rows`` and whose top probability is
    high (0.9+) where ``confident_rows``, low (under 0.5) elsewhere."""
    n = len(correct_rows)
    labels = torch.zeros(n, dtype=torch.long)
    logits = torch.zeros(n, n_classes)
    for i, (ok, conf) in enumerate(zip(correct_rows, confident_rows)):
        logits[i, 0 if ok else 1] = 4.0 if conf else 0.5
    return logits, labels


def test_score_variants_known_answer():
    copies = 25
    ok0, conf0 = [True, True, False, False] * copies, [True, True, False, False] * copies
    l0, labels = toy_logits(ok0, conf0)
    l1, _ = toy_logits([True] * 4 * copies, [True] * 4 * copies)
    logits = {"val": [l0, l1], "test": [l0, l1]}
    lab = {"val": labels, "test": labels}
    refs = [cascade.Reference("big", torch.ones(4 * copies, dtype=torch.bool), torch.ones(4 * copies, dtype=torch.bool),
                              10.0)]
    rules = cascade.variants(["max_prob"], 2)
    counts = cascade_counts(4 * copies)
    table = cascade.score_variants(logits, lab, [1.0, 10.0], cascade.threshold_grid(21), rules, refs, [1.0, 1.0],
                                   counts, other_macs={"huge": 60.0})
    row = table.iloc[0]
    assert row["rule"] == rules[0].name and row["reached"]
    assert row["test_acc"]["value"] == pytest.approx(1.0)
    assert row["expected_macs"]["value"] == pytest.approx(6.0)  # half the images go on
    assert row["mac_cut"]["value"] == pytest.approx(10 / 6)
    assert row["mac_cut_other"]["huge"]["value"] == pytest.approx(10.0)
    assert row["mac_cut"]["low"] <= 10 / 6 <= row["mac_cut"]["high"]
    assert row["acc_difference"]["matched"] and row["stage_fractions"] == pytest.approx([0.5, 0.5])
    assert "macs_p_holm" in table.columns  # the calibrated rule is compared with the report's
    unreachable = cascade.Reference("oracle", torch.ones(4 * copies, dtype=torch.bool),
                                    torch.ones(4 * copies, dtype=torch.bool), 10.0)
    hard = cascade.score_variants({"val": [l0, l0], "test": [l0, l1]}, lab, [1.0, 10.0], cascade.threshold_grid(5),
                                  rules[:1], [unreachable], [1.0, 1.0], counts)
    assert not hard.iloc[0]["reached"]
    targets = cascade.targets_from(table, rules[0].name, {"big": {"resamples": 3}})
    assert set(targets) == {"big"} and targets["big"]["stability"] == {"resamples": 3}


def test_selection_stability_of_a_robust_choice_is_a_point():
    scores, correct, cost = two_stage_toy(copies=50)
    grid = cascade.fine_grid(torch.tensor([0.0, 0.5, 1.0]), torch.tensor([0.85]))
    ref = cascade.Reference("big", torch.ones(200, dtype=torch.bool), torch.ones(200, dtype=torch.bool), 10.0)
    out = cascade.selection_stability(scores, correct, scores, correct, cost, [grid], ref, cascade_counts(200, 50))
    assert out["unreached_share"] == 0 and out["resamples"] == 50
    assert out["mac_cut"]["low"] == pytest.approx(10 / 6) and out["mac_cut"]["high"] == pytest.approx(10 / 6)
    assert out["test_acc"]["median"] == pytest.approx(1.0)


def test_map_position_interpolates_between_cells():
    grid = torch.tensor([0.0, 0.5, 1.0])
    assert cascade.map_position(0.0, grid) == pytest.approx(0.5)
    assert cascade.map_position(0.25, grid) == pytest.approx(1.0)
    assert cascade.map_position(1.0, grid) == pytest.approx(2.5)


# --- the report's cost model -----------------------------------------------------------

def test_feasible_range_of_a_known_polygon():
    # r1 + r2 = 1 with 1 >= r1 >= r2 >= 0: r1 in [0.5, 1], r2 in [0, 0.5]
    assert cascade.feasible_range([0.0, 1.0, 1.0], (1.0, 1.0), [0.0, 1.0, 0.0]) == pytest.approx((0.5, 1.0))
    assert cascade.feasible_range([0.0, 1.0, 1.0], (1.0, 1.0), [0.0, 0.0, 1.0]) == pytest.approx((0.0, 0.5), abs=1e-9)
    assert all(np.isnan(cascade.feasible_range([0.0, 1.0, 1.0], (3.0, 3.0), [0.0, 1.0, 0.0])))


def test_report_cost_model_is_parameters_times_squared_resolution_ratio():
    params = cascade.report_params()
    assert {m: round(p / 1e6, 2) for m, p in params.items()} == {"resnet18": 11.69, "resnet34": 21.80,
                                                                  "resnet50": 25.56}
    # real MACs proportional to the report's cost model: the real cut is the quoted ratio
    model = {f"{m}@{px}": fig * (px / 224) ** 2 * 1e6 for m, px, fig, _ in cascade.REPORT_STAGES}
    real = {**model, "resnet34@224": 21.80e6}
    out = cascade.report_cost_model(real, params)
    assert out["reproduces"] and out["params_match"]
    for key in ("mid", "top"):
        c = out["claims"][key]
        assert c["cut_reproduced"]
        assert c["real_macs_range"] == pytest.approx([x * 1e6 for x in c["cost_range"]], rel=1e-6)
    low, high = out["claims"]["mid"]["real_cut_range"]["resnet34@224"]
    assert low <= 3.05 <= high and round(21.80 / 7.15, 1) == 3.0
    low, high = out["claims"]["top"]["real_cut_range"]["resnet50@224"]
    assert low <= 25.56 / 11.04 <= high
    r = out["claims"]["mid"]["reach_range"]["resnet50@224"]  # all three stages reached: r1 = r2
    assert r[1] == pytest.approx((7.155 - 11.69 * (32 / 224) ** 2) / (21.80 * (96 / 224) ** 2 + 25.56), rel=1e-6)


def test_headline_states_intervals_and_the_reports_figures():
    from simplecnn.core.results import Headline
    copies = 25
    l0, labels = toy_logits([True, True, False, False] * copies, [True, True, False, False] * copies)
    l1, _ = toy_logits([True] * 4 * copies, [True] * 4 * copies)
    logits, lab = {"val": [l0, l1], "test": [l0, l1]}, {"val": labels, "test": labels}
    refs = [cascade.Reference(n, lg.argmax(1) == labels, lg.argmax(1) == labels, m)
            for n, lg, m in (("a@8", l0, 1.0), ("b@16", l1, 10.0))]
    rules = cascade.variants(["max_prob"], 2)
    table = cascade.score_variants(logits, lab, [1.0, 10.0], cascade.threshold_grid(11), rules, refs, [1.0, 1.0],
                                   cascade_counts(100), other_macs={"resnet50@224": 100.0})
    model = {f"{m}@{px}": fig * (px / 224) ** 2 * 1e6 for m, px, fig, _ in cascade.REPORT_STAGES}
    results = {"setting": {"dataset": "toy", "n_test": 100, "level": 0.95},
               "stages": {"a@8": {"resolution": 8}, "b@16": {"resolution": 16}},
               "targets": cascade.targets_from(table, rules[0].name),
               "report": cascade.report_cost_model({**model, "resnet34@224": 21.80e6})}
    rows = cascade.headline(results)
    assert all(isinstance(h, Headline) for h in rows)
    assert len({h.quantity for h in rows}) == len(rows)
    top = next(h for h in rows if h.quantity == "cascade MAC cut at b@16's accuracy (×)")
    assert top.value == pytest.approx(10 / 6) and top.low <= top.value <= top.high
    assert top.source == 2.3 and "matched" in top.setting and "validation" in top.source_setting
    claim = next(h for h in rows if h.quantity.startswith("report's §2.2.5"))
    assert claim.source == 3.0 and claim.low <= 21.80 / 7.15 <= claim.high
