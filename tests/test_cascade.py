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
