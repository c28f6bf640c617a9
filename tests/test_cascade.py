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
    assert low <= 21.80 / 7.15 <= high  # the quoted cost's own ratio lies in the range it allows
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
    # the learned gate, the timings and the calibration, where the results hold them
    results["setting"]["latency_images"] = 20
    results["gate_targets"] = results["targets"]
    results["speedup"] = {"report rule": {"batched": 2.5, "one_image_mean": 1.5, "one_image_p50": 3.0}}
    ece = {"value": 0.05, "low": 0.04, "high": 0.06}
    results["calibration"] = [{"stage": "b@16", "test_ece_raw": ece, "test_ece_calibrated": {**ece, "value": 0.045}}]
    more = cascade.headline(results)
    assert len({h.quantity for h in more}) == len(more) == len(rows) + 1 + 2 + 2
    gate = next(h for h in more if "learned exit gate" in h.quantity)
    assert gate.value == pytest.approx(top.value)
    one = next(h for h in more if "one image at a time" in h.quantity)
    assert one.value == 1.5


# --- calibration, the learned gate, goals and timing -----------------------------------------

def test_expected_calibration_error_known_answers():
    # bin (0.6, 0.8]: confidences 0.7, 0.7, right 1 of 2 -> gap 0.2 on half the images;
    # bin (0.8, 1.0]: 0.9, 0.9, both right -> gap 0.1 on the other half: ECE 0.15
    conf, ok = np.array([0.7, 0.7, 0.9, 0.9]), np.array([1, 0, 1, 1])
    assert cascade.expected_calibration_error(conf, ok, bins=5) == pytest.approx(0.15)
    assert cascade.expected_calibration_error(np.ones(10), np.ones(10)) == pytest.approx(0.0)
    # resampling weights: drawing image 1 (0.7, wrong) twice and image 0 not at all
    counts = np.array([[1, 1, 1, 1], [0, 2, 1, 1]], dtype=float)
    out = cascade.expected_calibration_error(conf, ok, bins=5, counts=counts)
    assert out == pytest.approx([0.15, 0.5 * 0.7 + 0.5 * 0.1])
    with pytest.raises(ValueError, match="confidence in"):
        cascade.expected_calibration_error(np.array([1.5]), np.array([1]))


def test_temperature_scaling_removes_the_calibration_error_of_overconfident_logits():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(6000, 5, generator=g) * 2
    labels = torch.multinomial(torch.softmax(z, 1), 1, generator=g)[:, 0]
    hot = z * 3.0  # over-confident by a factor of three
    half = 3000
    logits = {"val": [hot[:half]], "test": [hot[half:]]}
    lab = {"val": labels[:half], "test": labels[half:]}
    t = cascade.fit_temperature(logits["val"][0], lab["val"])
    rows = cascade.calibration_table(logits, lab, ["s"], [t], cascade_counts(half, 100))
    row = rows[0]
    raw, cal = row["test_ece_raw"], row["test_ece_calibrated"]
    assert raw["value"] > 0.1 and cal["value"] < 0.03  # scaled on validation, calibrated on test
    assert raw["low"] <= raw["value"] <= raw["high"] and cal["high"] < raw["low"]
    assert row["test_confidence_raw"] > row["test_acc"] + 0.1


def ambiguous_logits(n=2000, seed=0):
    """Logits whose top probability is 0.5 for every image; whether the prediction is right
    is written only in the runner-up's probability (right iff it is below 0.35)."""
    g = torch.Generator().manual_seed(seed)
    second = 0.25 + 0.2 * torch.rand(n, generator=g)
    probs = torch.stack([torch.full((n,), 0.5), second, 0.5 - second], 1)
    right = second < 0.35
    return probs.log(), right


def test_the_learned_gate_ranks_right_before_wrong_where_the_top_probability_cannot():
    logits, right = ambiguous_logits()
    labels = torch.where(right, 0, 1)  # the prediction is always class 0
    assert torch.equal(logits.argmax(1) == labels, right)
    gates, cross = cascade.fit_gates([logits], labels, folds=5)
    assert cascade.ranking_auc(cascade.exit_score(logits), right) == pytest.approx(0.5, abs=0.05)
    assert cascade.ranking_auc(cross[0], right) > 0.9  # cross-fitted: no image scored by a gate that saw it
    fresh, fresh_right = ambiguous_logits(seed=1)
    assert cascade.ranking_auc(gates[0].score(fresh), fresh_right) > 0.9
    assert ((cross[0] >= 0) & (cross[0] <= 1)).all()


def test_gate_variants_and_deployment_agree_with_the_simulation():
    n, classes = 120, 4
    g = torch.Generator().manual_seed(2)
    labels = torch.randint(0, classes, (n,), generator=g)
    tables = [torch.randn(n, classes, generator=g) * (1 + p) + 2.0 * nn.functional.one_hot(labels, classes) * p
              for p in range(3)]
    gates, _ = cascade.fit_gates(tables, labels, folds=3)
    scores = [gt.score(t) for gt, t in zip(gates, tables)]
    rules = cascade.variants(["max_prob"], 3, gate=True)
    gate_rule = next(r for r in rules if r.score == cascade.GATE and r.stages == (0, 1, 2))
    sc, ok = cascade.variant_inputs(tables, labels, gate_rule, [1.0] * 3, scores)
    deltas = [float(sc[0].median()), float(sc[1].median())]
    point = cascade.evaluate_thresholds(sc, ok, [1.0, 2.0, 3.0], deltas)
    images = torch.zeros(n, 3, 4, 4, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)
    preds, exits = cascade.classify([Lookup(t) for t in tables], [images] * 3, deltas,
                                    cascade.variant_scorers(gate_rule, [1.0] * 3, gates))
    assert float((preds == labels).float().mean()) == pytest.approx(point["acc"], abs=1e-6)
    assert [float((exits == p).float().mean()) for p in range(3)] == pytest.approx(point["stage_fractions"], abs=1e-6)
    with pytest.raises(ValueError, match="gate_scores"):
        cascade.variant_inputs(tables, labels, gate_rule, [1.0] * 3)
    with pytest.raises(ValueError, match="unknown exit scores"):
        cascade.variants(["gate"], 3)


def test_oracle_cost_known_answer():
    # stage 0 right on images 0, 1; stage 1 right on 2; nobody right on 3. Costs 1 and 10.
    correct = [torch.tensor([True, True, False, False]), torch.tensor([True, False, True, False])]
    assert cascade.oracle_cost(correct, [1.0, 10.0], 0.75) == pytest.approx((1 + 1 + 11 + 1) / 4)
    assert cascade.oracle_cost(correct, [1.0, 10.0], 0.5) == pytest.approx(1.0)  # drop image 2: all leave at once
    assert cascade.oracle_cost(correct, [1.0, 10.0], 1.0) is None


def test_goal_checks_and_their_reasons():
    assert cascade.goal_check("cut", 3.0, 2.5, 2.7, 3.3, True)["status"] == "met"
    assert cascade.goal_check("cut", 3.0, 2.5, 2.7, 3.3, True)["resolved"]
    straddle = cascade.goal_check("cut", 2.6, 2.5, 2.2, 3.0, True)
    assert straddle["met"] and straddle["resolved"] is False
    assert cascade.goal_check("cut", 3.0, 2.5, 2.7, 3.3, matched=False)["status"] == "NOT met"
    assert cascade.goal_check("speed", 1.5, 2.0)["status"] == "NOT met"
    assert "ladder" in cascade.mac_goal_reason(1.8, 2.0, 3.5)
    assert "exit rule" in cascade.mac_goal_reason(1.8, 5.0, 3.5)
    assert "validation" in cascade.mac_goal_reason(None, 5.0, 3.5)
    assert "overhead" in cascade.speed_goal_reason(1.5, 3.0, 2.0)
    assert "MACs themselves" in cascade.speed_goal_reason(1.5, 1.8, 2.0)
    assert "≥" in cascade.speed_goal_reason(2.5, 3.0, 2.0)


def test_goals_table_judges_every_declared_rule():
    hit = {"reached": True, "mac_cut": {"value": 3.0, "low": 2.8, "high": 3.2}, "acc_difference": {"matched": True}}
    targets = {"report rule": {"mid": {"reached": False}, "top": hit}}
    goals = cascade.goals_table(targets, {"mid": {"cut": 2.0}, "top": {"cut": 9.0}},
                                {"report rule": {"batched": 2.4, "one_image_mean": 1.2}}, "mid", "top", 3.5, 2.5, 2.0)
    by = {g["target"]: g for g in goals}
    assert set(by) == {"mid", "top", "speed_batched", "speed_one"}
    assert by["mid"]["status"] == "NOT met" and "validation" in by["mid"]["reason"]
    assert by["top"]["status"] == "met" and by["top"]["resolved"] and by["top"]["oracle_cut"] == 9.0
    assert by["speed_batched"]["met"] and not by["speed_one"]["met"] and "overhead" in by["speed_one"]["reason"]


def test_latency_percentiles_are_ordered_and_measure_the_calls():
    import time
    out = cascade.latency(lambda i: time.sleep(0.004 if i % 4 == 0 else 0.001), 40, warmup=2)
    assert out["n"] == 40
    assert 0 < out["min"] <= out["p50"] <= out["p95"] <= out["max"]
    assert out["p50"] >= 0.001 and out["p95"] >= 0.004  # a quarter of the calls sleep 4 ms
    assert out["min"] <= out["mean"] <= out["max"]
    with pytest.raises(ValueError, match="at least one"):
        cascade.latency(lambda i: None, 0)
    assert cascade.wall_time(lambda: time.sleep(0.002)) >= 0.002


def test_train_stage_rejects_bad_label_smoothing():
    with pytest.raises(ValueError, match="label_smoothing"):
        cascade.train_stage(cascade.Stage("resnet18", 32), None, label_smoothing=1.0)
