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


def test_ablation_settings_are_none_all_crop_flip_each_alone_and_each_left_out():
    names = ("flip", "crop", "color_hue_scale")
    settings = limited.ablation_settings(names)
    assert settings["none"].online() == () and settings["all"].names == names
    assert settings["all"].online() == ("oneof:flip+crop+color_hue_scale",)  # the paper's one-of policy
    assert settings["crop+flip"].online() == ("crop", "flip")  # the modern default: both on every draw
    assert settings["only color"].online() == ("oneof:color_hue_scale",)
    assert settings["without flip"].names == ("crop", "color_hue_scale")
    assert len(settings) == 3 + 2 * 3
    assert len(limited.ablation_settings(names, leave_one_out=False)) == 3 + 3


def test_the_offline_row_takes_as_many_steps_as_the_online_rows():
    settings = limited.ablation_settings(("flip", "crop"), leave_one_out=False, offline_copies=5, epochs=30)
    offline = settings["all, offline ×5"]
    assert offline.offline == 5 and offline.epochs == 5 and offline.online() == ()  # 6 × the images, 1/6 the epochs
    with pytest.raises(ValueError, match="divisible"):
        limited.ablation_settings(("flip",), offline_copies=5, epochs=8)
    with pytest.raises(ValueError):
        limited.Setting(("crop", "flip"), "each", offline=2)  # the paper's copies are one-of
    with pytest.raises(ValueError):
        limited.Setting(("crop",), "sometimes")


def test_regimens_build_the_paper_and_the_budget_configs():
    paper = limited.Regimen("paper", 32, 0.1).config(50, ("oneof:flip",), 3)
    assert paper.schedule == "multistep" and paper.label_smoothing == 0 and not paper.tta and paper.seed == 3
    budget = limited.Regimen("budget", 256, 0.4, label_smoothing=0.1, ema=0.9, tta=True).config(4, ("crop",), 1)
    assert budget.schedule == "onecycle" and budget.lr == 0.4 and budget.batch_size == 256
    assert budget.label_smoothing == 0.1 and budget.ema == 0.9 and budget.tta and budget.augment == ("crop",)
    assert "one-cycle" in limited.Regimen().describe() and "multi-step" in limited.Regimen("paper").describe()
    with pytest.raises(ValueError, match="regimen"):
        limited.Regimen("adam")


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


def test_pooled_seed_variance_resolves_what_two_seeds_alone_cannot():
    # six designs, two seeds each, seed noise ±0.3 points, A four points above the rest:
    # one pair alone has 1 degree of freedom (t critical 12.7), the pool 6 (2.45)
    base = {"A": 0.64, "B": 0.60, "C": 0.60, "D": 0.601, "E": 0.599, "F": 0.60}
    wiggle = {"A": (0.003, -0.002), "B": (-0.003, 0.003), "C": (0.002, -0.003), "D": (-0.002, 0.002),
              "E": (0.003, -0.003), "F": (-0.003, 0.002)}
    runs = runs_frame({k: [v + e for e in wiggle[k]] for k, v in base.items()})
    pooled = limited.pairwise_differences(runs).set_index(["a", "b"])
    paired = limited.pairwise_differences(runs, test="paired").set_index(["a", "b"])
    assert (pooled["df"] == 6).all() and (paired["df"] == 1).all()
    assert pooled.loc[("A", "B"), "resolved"] and not paired.loc[("A", "B"), "resolved"]
    assert not pooled.loc[("B", "C"), "resolved"]
    assert pooled.loc[("A", "B"), "diff"] == pytest.approx(paired.loc[("A", "B"), "diff"])  # equal seeds
    variances = [np.var([v + e for e in wiggle[k]], ddof=1) for k, v in base.items()]
    assert pooled.loc[("A", "B"), "se"] == pytest.approx(100 * np.sqrt(np.mean(variances)))  # √(s²(1/2 + 1/2))
    with pytest.raises(ValueError, match="pairwise test"):
        limited.pairwise_differences(runs, test="welch")


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


def test_floor_check_names_the_designs_below_it():
    by = limited.summarise(runs_frame({"A": [0.71, 0.73], "B": [0.69, 0.70]}), "design")
    check = limited.floor_check(by, 70.0)
    assert not check["met"] and check["below"] == ["B"] and check["lowest"] == pytest.approx(69.5)
    assert "NOT met" in check["text"]
    assert limited.floor_check(by, 69.0)["met"]


def test_a_gain_within_the_seed_noise_is_not_resolved():
    runs = runs_frame({"none": [0.50, 0.51], "all": [0.60, 0.61], "crop+flip": [0.52, 0.50]}, "setting")
    tests = limited.ablation_tests(runs)
    assert tests["all − none"]["resolved"] and tests["all − none"]["mean"] == pytest.approx(10.0)
    # crop+flip: +2 and −1 points on the two seeds: the pooled interval reaches zero
    assert not tests["crop+flip − none"]["resolved"] and tests["crop+flip − none"]["status"] == "not resolved"
    assert tests["all − none"]["df"] == 2  # one degree of freedom per contrast, pooled


def test_the_offline_sentence_compares_offline_with_online_not_with_none():
    runs = runs_frame({"none": [0.50, 0.51], "all": [0.60, 0.61], "all, offline ×5": [0.55, 0.57]}, "setting")
    tests = limited.ablation_tests(runs)
    assert list(tests) == ["all − none", "all, offline ×5 − none", "all, offline ×5 − all"]
    text = limited.offline_text(tests)
    assert text == tests["all, offline ×5 − all"]["text"] and "all, offline ×5 − none" not in text
    assert "all beats all, offline ×5" in text  # online −4.5 points ahead of offline
    assert limited.offline_text({"all − none": tests["all − none"]}) == "the offline row did not run in this profile"


def test_overfit_check_reads_the_training_accuracy():
    runs = runs_frame({"none": [0.50, 0.52], "all": [0.60, 0.61]}, "setting")
    runs["train_acc"] = [0.99, 0.98, 0.80, 0.82]
    summary = limited.ablation_summary(runs)
    assert summary.loc["none", "train_acc_mean"] == pytest.approx(98.5)
    assert limited.overfit_check(summary)["met"]
    assert not limited.overfit_check(summary, train_floor=99.0)["met"]
    verdict = limited.ablation_verdict(limited.overfit_check(summary, train_floor=99.0), {})
    assert "cannot show" in verdict


def test_difference_matrix_is_antisymmetric_and_marks_resolved_pairs():
    pairs = pd.DataFrame([{"a": "A", "b": "B", "diff": 2.0, "resolved": True},
                          {"a": "A", "b": "C", "diff": -1.0, "resolved": False},
                          {"a": "B", "b": "C", "diff": -3.0, "resolved": False}])
    diff, mark = limited.difference_matrix(pairs, ["A", "B", "C"])
    assert diff.loc["A", "B"] == 2.0 and diff.loc["B", "A"] == -2.0 and diff.loc["C", "B"] == 3.0
    assert math.isnan(diff.loc["A", "A"]) and mark.loc["B", "A"] == "*" and mark.loc["A", "C"] == ""


def test_rank_verdict_says_detected_or_not_detected_never_contradicted():
    pairs = pd.DataFrame([{"a": "A", "b": "B", "diff": 2.0, "resolved": True},
                          {"a": "A", "b": "C", "diff": -1.0, "resolved": True},
                          {"a": "B", "b": "C", "diff": 0.5, "resolved": False}])
    paper = {"A": 95.0, "B": 94.0, "C": 93.0}  # A beat B goes the paper's way, C beat A does not
    status, words = limited.rank_verdict({"kendall": 1.0, "kendall_p": 1 / 720}, pairs, paper)
    assert status == "agreement detected" and "1 of the 2 pairs resolved after Holm go its way" in words
    status, words = limited.rank_verdict({"kendall": 0.47, "kendall_p": 0.14}, pairs, paper)
    assert status == "agreement not detected" and "not evidence against it" in words
    assert "does not survive" not in words


def design_i_params_by_hand() -> int:
    """Design I counted from the paper's description: a 3×3 stem of 64 channels, stages of
    1, 2, 3, 1 basic blocks with 1×1 first convolutions, 1×1 projection shortcuts, 10 classes."""
    def conv(a, b, k):
        return a * b * k * k

    def block(cin, cout, skip):
        return conv(cin, cout, 1) + 2 * cout + conv(cout, cout, 3) + 2 * cout + ((conv(cin, cout, 1) + 2 * cout)
                                                                                  if skip else 0)
    return (conv(3, 64, 3) + 2 * 64 + block(64, 64, False) + block(64, 128, True) + block(128, 128, False)
            + block(128, 256, True) + 2 * block(256, 256, False) + block(256, 512, True) + 512 * 10 + 10)


def test_design_costs_at_full_width_without_measuring():
    costs = limited.design_costs(["I", "IIa"], measure=False)
    assert costs.loc["I", "paper_params"] == design_i_params_by_hand() == 4_971_338
    assert costs.loc["IIa", "paper_macs"] > costs.loc["I", "paper_macs"]  # three stages at full resolution cost more
    assert (costs["activation_bytes"] > 0).all() and "train_img_s" not in costs


def test_train_grid_trains_each_setting_and_scores_training_accuracy(tmp_path):
    from simplecnn.core.cache import Cache
    from simplecnn.core.data import DataSplits
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(40) % 2
    images = (labels.view(-1, 1, 1, 1) * 200 + torch.randint(0, 40, (40, 3, 8, 8), generator=g)).to(torch.uint8)
    part = ImageSet(images, labels, ["dark", "bright"])
    splits = DataSplits("toy", part, part.subset(torch.arange(8)), part.subset(torch.arange(8, 16)), {"name": "toy"})
    settings = limited.ablation_settings(("flip", "crop"), leave_one_out=False, offline_copies=1, epochs=2)
    runs = limited.train_grid(["I"], settings, [0], splits, 0.0625, 2, limited.Regimen("budget", 8, 0.05, tta=False),
                              track_val=False, train_acc=True, cache=Cache(tmp_path / "cache"))
    assert list(runs["setting"]) == list(settings)
    assert runs["train_acc"].between(0, 1).all() and runs["acc"].between(0, 1).all()
    offline = runs.set_index("setting").loc["all, offline ×1"]
    assert len(offline["history"]) == 1  # half the epochs over the doubled set


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
    assert "2 training seeds" in design.interval and "offline" in design.source_setting
    assert design.rule == "seeds" and design.n == 2 and not design.comparable  # other width, budget, data
    gain = [r for r in rows if "augmentations" in r.quantity][0]
    assert (gain.low, gain.high) == (1.5, 4.5)
