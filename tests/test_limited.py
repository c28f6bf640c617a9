"""The limited-ResNet study's helpers, each on small data whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from simplecnn.core.data import ImageSet
from simplecnn.core.models import build_model, count_params
from simplecnn.studies import limited


def solid(*rgb: int, side: int = 4) -> torch.Tensor:
    return torch.tensor(rgb, dtype=torch.uint8).view(1, 3, 1, 1).expand(1, 3, side, side).clone()


@pytest.mark.parametrize("rgb, factor, expected", [
    ((0, 255, 0), 1.5, (0, 255, 255)),    # green (1/3 turn) × 1.5 = cyan (1/2)
    ((0, 255, 0), 0.5, (255, 255, 0)),    # green × 0.5 = yellow (1/6)
    ((0, 0, 255), 1.5, (255, 0, 0)),      # blue (2/3) × 1.5 = one turn = red
    ((255, 0, 0), 1.37, (255, 0, 0)),     # red's hue is 0: any factor keeps it
    ((90, 90, 90), 0.5, (90, 90, 90)),    # grey has no hue
])
def test_scale_hue_multiplies_the_hue_angle(rgb, factor, expected):
    out = limited.scale_hue(solid(*rgb), torch.tensor([factor]))
    assert out[0, :, 0, 0].tolist() == list(expected)


def test_paper_colour_augmentation_keeps_grey_grey_and_shapes():
    x = torch.cat([solid(90, 90, 90, side=8), solid(200, 30, 60, side=8)])
    out = limited.color_hue_scale(x, torch.Generator().manual_seed(0), torch.arange(2), 0)
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert (out[0, 0] == out[0, 1]).all() and (out[0, 1] == out[0, 2]).all()


def test_hue_reading_is_checked_and_picks_the_fifth_augmentation():
    assert limited.augmentations("scale")[-1] == "color_hue_scale"
    assert limited.augmentations("shift")[-1] == "color"
    with pytest.raises(ValueError, match="hue"):
        limited.augmentations("rotate")


def test_ablation_settings_are_none_all_each_alone_and_each_left_out():
    settings = limited.ablation_settings(("flip", "crop", "color_hue_scale"))
    assert settings["none"] == () and settings["all"] == ("flip", "crop", "color_hue_scale")
    assert settings["only color"] == ("color_hue_scale",)
    assert settings["without flip"] == ("crop", "color_hue_scale")
    assert len(settings) == 2 + 2 * 3


def tiny_set(n: int = 6) -> ImageSet:
    g = torch.Generator().manual_seed(1)
    return ImageSet(torch.randint(0, 256, (n, 3, 8, 8), generator=g, dtype=torch.uint8),
                    torch.arange(n) % 3, ["a", "b", "c"])


def test_offline_copies_are_the_originals_plus_fixed_copies():
    train = tiny_set()
    assert limited.offline_copies_of(train, ("flip", "crop"), 0, seed=0) is train
    out = limited.offline_copies_of(train, ("flip", "crop"), 3, seed=0)
    n = len(train)
    assert len(out) == 4 * n and out.labels.tolist() == train.labels.tolist() * 4
    assert torch.equal(out.images[:n], train.images)  # the originals first
    assert torch.equal(out.images[n:2 * n], train.images.flip(3))  # the flip copy is mirrored outright
    assert not torch.equal(out.images[2 * n:3 * n], train.images)  # copy 2: crop (after a random flip)
    again = limited.offline_copies_of(train, ("flip", "crop"), 3, seed=0)
    assert torch.equal(out.images, again.images)  # drawn once with a fixed seed: the same set
    other = limited.offline_copies_of(train, ("flip", "crop"), 3, seed=1)
    assert not torch.equal(out.images, other.images)
    with pytest.raises(ValueError):
        limited.offline_copies_of(train, (), 2, seed=0)


def test_t_interval_of_two_values():
    mean, low, high = limited.t_interval(np.array([1.0, 3.0]))
    half = 12.7062047361747  # t(0.975, 1) × std √2 / √2
    assert mean == 2.0 and low == pytest.approx(2 - half) and high == pytest.approx(2 + half)
    assert math.isnan(limited.t_interval(np.array([1.0]))[1])


def runs_frame(acc: dict[str, list[float]], setting_key: str = "design") -> pd.DataFrame:
    return pd.DataFrame([{setting_key: k, "seed": s, "acc": a, "train_s": 1.0}
                         for k, values in acc.items() for s, a in enumerate(values)])


def test_pairwise_differences_resolve_a_steady_gap_and_not_noise():
    noise = [0.00, 0.01, -0.01, 0.005, -0.005]
    jitter = [0.001, -0.001, 0.002, -0.002, 0.0]
    runs = runs_frame({"A": [0.60 + e + j for e, j in zip(noise, jitter)], "B": [0.55 + e for e in noise],
                       "C": [0.55 + e for e in noise[::-1]]})
    pairs = limited.pairwise_differences(runs).set_index(["a", "b"])
    assert pairs.loc[("A", "B"), "diff"] == pytest.approx(5.0)
    assert pairs.loc[("A", "B"), "std"] == pytest.approx(np.std(jitter, ddof=1) * 100)
    assert pairs.loc[("A", "B"), "resolved"]
    assert pairs.loc[("B", "C"), "diff"] == pytest.approx(0.0, abs=1e-9)
    assert not pairs.loc[("B", "C"), "resolved"]
    low, high = pairs.loc[("B", "C"), ["low", "high"]]
    assert low < 0 < high
    one_seed = limited.pairwise_differences(runs_frame({"A": [0.6], "B": [0.5]}))
    assert not one_seed["resolved"].any() and math.isnan(one_seed["p"].iloc[0])


def test_rank_agreement_with_exact_permutation_p_values():
    same = limited.rank_agreement(limited.PAPER_ACC, {k: v - 60 for k, v in limited.PAPER_ACC.items()})
    assert same["kendall"] == pytest.approx(1.0) and same["spearman"] == pytest.approx(1.0)
    assert same["kendall_p"] == pytest.approx(1 / 720) and same["spearman_p"] == pytest.approx(1 / 720)
    reversed_ = limited.rank_agreement(limited.PAPER_ACC, {k: -v for k, v in limited.PAPER_ACC.items()})
    assert reversed_["kendall"] == pytest.approx(-1.0) and reversed_["kendall_p"] == 1.0
    two = limited.rank_agreement(limited.PAPER_ACC, {"IIa": 40.0, "IV": 30.0})
    assert two["n"] == 2 and two["kendall"] == pytest.approx(1.0) and two["kendall_p"] == pytest.approx(0.5)
    many = limited.rank_agreement({str(i): float(i) for i in range(10)}, {str(i): float(i) for i in range(10)},
                                  permutations=199)
    assert many["spearman_p"] == pytest.approx(1 / 200)  # Monte Carlo above eight items: (0 + 1) / (199 + 1)


def test_ablation_summary_and_gains_pair_by_seed():
    runs = runs_frame({"none": [0.50, 0.60], "all": [0.55, 0.61]}, "setting")
    summary = limited.ablation_summary(runs)
    assert summary.loc["all", "acc_mean"] == pytest.approx(58.0)
    assert summary.loc["all", "acc_std"] == pytest.approx(math.sqrt(2) * 3.0)
    assert summary.loc["all", "gain_mean"] == pytest.approx(3.0)  # gains 5 and 1 points
    assert summary.loc["all", "gain_std"] == pytest.approx(math.sqrt(8))
    assert summary.loc["none", "gain_mean"] == 0.0
    assert limited.gains(runs)["gain"].tolist() == pytest.approx([5.0, 1.0])


def test_paper_regimen_puts_milestones_where_the_paper_does():
    config = limited.paper_regimen(50, 32, 0.1, (), 0)
    assert config.milestones == pytest.approx((15, 25, 35, 45)) and config.momentum == 0.9 and not config.nesterov
    assert limited.paper_regimen(10, 32, 0.1, (), 0).milestones == pytest.approx((3, 5, 7, 9))


def test_summarise_uses_the_sample_std():
    by = limited.summarise(runs_frame({"A": [0.5, 0.7]}), "design")
    assert by.loc["A", "acc_mean"] == pytest.approx(60.0) and by.loc["A", "acc_std"] == pytest.approx(math.sqrt(200))


def test_design_IV_reading_matches_the_built_model():
    kernels = limited.kernel_text("IV")
    assert kernels == {"stem": "3×3", "first": "7×7", "second": "7×7", "skip": "5×5"}
    model = build_model("limited_IV", 10, width=0.25)
    assert model.stem[0].kernel_size == (3, 3)
    block = model.stages[1][0]
    assert block.body[0][0].kernel_size == (7, 7) and block.body[1][0].kernel_size == (7, 7)
    assert block.skip[0].kernel_size == (5, 5)
    full = count_params(build_model("limited_IV", 10))
    assert limited.params_with_stem_kernel("IV", 3) == full
    assert limited.params_with_stem_kernel("IV", 7) - full == 3 * 16 * (49 - 9)


def test_headline_states_uncertainty_and_the_papers_setting():
    results = {"designs": {"IIa": {"acc_mean": 40.0, "acc_std": 2.0, "paper_acc": 95.67, "n": 2}},
               "rank_corr": {"n": 2, "kendall": 1.0, "kendall_p": 0.5, "spearman": 1.0, "spearman_p": 0.5},
               "augmentation": {"none": {"acc_mean": 30.0, "acc_std": 1.0, "gain_mean": 0.0, "gain_std": 0.0, "n": 2},
                                "all": {"acc_mean": 33.0, "acc_std": 1.0, "gain_mean": 3.0, "gain_std": 1.5, "n": 2}},
               "setting": {"n_test": 100, "n_train": 200, "resolution": 32, "width": 0.25, "epochs": 1,
                           "seeds": [0, 1], "augmentation": "online", "ablation_design": "IIa"}}
    rows = limited.headline(results)
    design = rows[0]
    assert (design.value, design.low, design.high, design.source) == (40.0, 38.0, 42.0, 95.67)
    assert "2 seeds" in design.interval and "offline" in design.source_setting
    gain = [r for r in rows if "augmentations" in r.quantity][0]
    assert (gain.low, gain.high) == (1.5, 4.5)
