"""Study: ResNets limited to 5 M parameters (source 004) and what they owe to augmentation.

The six designs are named configurations of the one ResNet builder (``models.LIMITED``);
this module holds the two regimens (the paper's multi-step SGD, and ``budget``: the core's
one-cycle training options that fit a CPU budget without touching the architecture), the
paper's augmentations (online as a policy, or offline as fixed copies), the ablation
settings, the training grid, each design's measured cost, and the statistics and checks the
chapter states: mean ± std over seeds, paired differences between designs with their
intervals, rank agreement with the paper's Table 1, and whether the run's regime can answer
its question at all (accuracy floor, overfitting without augmentation, resolved gains).
"""

from __future__ import annotations

import pandas as pd

from simplecnn.core import params as P
from simplecnn.core.results import Headline
from simplecnn.studies.limited.augment import (AUGMENTATIONS, COLOR_RANGE, HUE_READINGS, augmentations,
                                                color_hue_scale, policy, scale_hue)
from simplecnn.studies.limited.checks import (ablation_tests, ablation_verdict, floor_check, offline_text,
                                               overfit_check, rank_verdict, tests_frame, tests_text)
from simplecnn.studies.limited.designs import (ANCHORS, DESIGNS, PAPER_ACC, PAPER_SETTING, costs_frame, design_costs,
                                                design_table, designs_frame, kernel_text, params_with_stem_kernel,
                                                reading_values)
from simplecnn.studies.limited.stats import (PAIRWISE_TESTS, ablation_summary, difference_matrix, gains,
                                              pairwise_differences, pairwise_text, rank_agreement, resolved_text,
                                              summarise, t_interval)
from simplecnn.studies.limited.training import (CROP_FLIP, MILESTONE_FRACTIONS, PAPER, REGIMENS, Regimen, Setting,
                                                 ablation_extra, ablation_settings, main_setting, history_frame, offline_copies_of, paper_regimen, plan,
                                                 train_and_test, train_grid, with_offline_copies)
from simplecnn.core.models import LIMITED

__all__ = [
    "ANCHORS", "AUGMENTATIONS", "COLOR_RANGE", "CROP_FLIP", "DESIGNS", "HUE_READINGS", "LIMITED",
    "MILESTONE_FRACTIONS", "PAIRWISE_TESTS", "PAPER", "PAPER_ACC", "PAPER_SETTING", "REGIMENS", "Regimen",
    "Setting", "ablation_extra", "ablation_settings", "ablation_summary", "ablation_tests",
    "ablation_verdict", "augmentations", "color_hue_scale", "costs_frame", "design_costs", "design_table",
    "designs_frame", "difference_matrix", "floor_check", "gains", "headline", "history_frame", "kernel_text",
    "main_setting", "offline_copies_of", "offline_text", "order_status", "overfit_check",
    "pairwise_differences", "pairwise_text", "paper_regimen", "params_with_stem_kernel", "plan", "policy",
    "rank_agreement", "rank_verdict", "reading_values", "resolved_text", "results_dict", "scale_hue",
    "summarise", "t_interval", "tests_frame", "tests_text", "train_and_test", "train_grid",
    "with_offline_copies"]


PARAMETERS = {**P.COMMON, "dataset": P.dataset(), "resolution": P.whole(8), "designs": P.some_of(DESIGNS),
         "width": P.number(0, low_open=True), "seeds": P.wholes(0, 1), "train_size": P.whole(2, optional=True),
         "val_size": P.whole(2, optional=True), "test_size": P.whole(2, optional=True), "epochs": P.whole(1),
         "low_res_epochs": P.whole(0), "low_res_scale": P.number(0, 1, low_open=True), "regimen": P.one_of(REGIMENS),
         "batch_size": P.whole(2), "lr": P.number(0, low_open=True), "label_smoothing": P.number(0, 1, high_open=True),
         "ema": P.number(0, 1, high_open=True), "main_augmentation": P.one_of(["crop+flip", "all"]),
         "offline_copies": P.whole(0), "pairwise_test": P.one_of(PAIRWISE_TESTS), "accuracy_floor": P.number(0, 100),
         "hue": P.one_of(HUE_READINGS), "ablation_design": P.one_of(DESIGNS),
         "ablation_width": P.number(0, low_open=True), "ablation_train_size": P.whole(2, optional=True),
         "ablation_epochs": P.whole(1), "ablation_batch_size": P.whole(2), "ablation_lr": P.number(0, low_open=True),
         "ablation_offline_copies": P.whole(0), "cost_batch": P.whole(1)}
"""Every parameter's allowed values, checked before the chapter trains anything (``core.params``)."""

def _plain(value):
    return value.item() if hasattr(value, "item") else value


def results_dict(table: pd.DataFrame, by_design: pd.DataFrame, pairs: pd.DataFrame, rank: dict,
                 ablation: pd.DataFrame, setting: dict, costs: pd.DataFrame | None = None,
                 checks: dict | None = None) -> dict:
    """The chapter's results json: designs, pairwise differences, rank agreement, ablation,
    each design's cost at paper scale, the chapter's checks, and the setting the numbers
    were measured in (for ``headline``)."""
    designs = {d: {"paper_params": int(table.loc[d, "paper_params"]), "params": int(table.loc[d, "params"]),
                   "macs": int(table.loc[d, "macs"]), "acc_mean": float(by_design.loc[d, "acc_mean"]),
                   "acc_std": float(by_design.loc[d, "acc_std"]), "train_s": float(by_design.loc[d, "train_s"]),
                   "n": int(by_design.loc[d, "n"]), "paper_acc": PAPER_ACC[d]} for d in by_design.index}
    out = {"designs": designs,
           "pairwise": [{k: _plain(v) for k, v in row.items()} for row in pairs.to_dict("records")],
           "rank_corr": rank,
           "augmentation": {s: {k: float(v) for k, v in r.items()} for s, r in ablation.iterrows()},
           "setting": setting}
    if costs is not None:
        out["costs"] = {d: {k: _plain(v) for k, v in r.items()} for d, r in costs.iterrows()}
    if checks is not None:
        out["checks"] = checks
    return out


def order_status(pairs: list[dict]) -> str:
    """The designs' pairwise order as ``core.reproduce`` reads it: "IIa>I*; IIb>IIa" (``*``:
    resolved after Holm)."""
    parts = []
    for p in pairs:
        a, b = (p["a"], p["b"]) if p["diff"] >= 0 else (p["b"], p["a"])
        parts.append(f"{a}>{b}{'*' if p.get('resolved') else ''}")
    return "; ".join(parts)


def headline(results: dict) -> list[Headline]:
    """Each design's test accuracy (mean ± std over seeds; the paper's figure beside it, not
    comparable: other width, budget and augmentation) and exact parameter count at paper
    scale (comparable with the paper's "about 4.9 million"); the floor check; the designs'
    resolved order and the agreement with Table 1; the ablation's reference gains and checks."""
    s = results["setting"]
    where = (f"top-1, CIFAR-10 test ({s['n_test']:,} images), {s['resolution']} px, width ×{s['width']}, "
             f"{s['epochs']} epochs on {s['n_train']:,} images, {s['augmentation']}")
    rows = []
    for d, r in results["designs"].items():
        n = int(r.get("n", len(s["seeds"])))
        rows.append(Headline(f"design {d} test accuracy (%)", r["acc_mean"], r["acc_mean"] - r["acc_std"],
                             r["acc_mean"] + r["acc_std"], f"mean ± std over {n} training seeds", where,
                             r["paper_acc"], PAPER_SETTING, rule="seeds", margin=1.0, better="higher", n=n))
        if "paper_params" not in r:
            continue
        rows.append(Headline(f"design {d} parameters at paper scale", r["paper_params"], interval="exact count",
                             setting="full width, 10 classes", source=PAPER["params_m"] * 1e6,
                             source_setting="the paper's \"about 4.9 million\" per design", comparable=True,
                             rule="exact"))
    checks = results.get("checks", {})
    if "floor" in checks:
        f = checks["floor"]
        rows.append(Headline("every design at or above the accuracy floor", "met" if f["met"] else "NOT met",
                             interval=f"lowest design mean {f['lowest']:.1f} %", setting=where, goal=f["floor"],
                             rule="check", status="met" if f["met"] else "NOT met"))
    pairs = results.get("pairwise", [])
    if pairs:
        resolved = sum(bool(p.get("resolved")) for p in pairs)
        rows.append(Headline("order of the designs (pairs resolved after Holm)", f"{resolved} of {len(pairs)}",
                             interval="pooled seed variance, Holm over all pairs", setting=where, rule="order",
                             status=order_status(pairs)))
    rank = results["rank_corr"]
    agree = checks.get("rank", {})
    rows.append(Headline("agreement with Table 1's order of the designs (Kendall's tau)", rank["kendall"],
                         interval=f"one-sided permutation p = {rank['kendall_p']:.3g}",
                         setting=f"{rank['n']} designs' mean accuracies", rule="check",
                         status=agree.get("status", "agreement detected" if rank["kendall_p"] < 0.05
                                          else "agreement not detected")))
    aug = results["augmentation"]
    a = s.get("ablation", {})
    ablation_where = (f"top-1, CIFAR-10 test, design {s['ablation_design']} at width ×{a.get('width', s['width'])}, "
                      f"{a.get('epochs', s['epochs'])} epochs on {a.get('n_train', s['n_train']):,} images")
    tests = checks.get("ablation", {})
    for key, name in (("all", "the five augmentations"), ("crop+flip", "crop+flip")):
        if key in aug and "none" in aug:
            g = aug[key]
            n = int(g["n"])
            rows.append(Headline(f"gain of {name} over none (points)", g["gain_mean"],
                                 g["gain_mean"] - g["gain_std"], g["gain_mean"] + g["gain_std"],
                                 f"mean ± std of per-seed gains over {n} training seeds", ablation_where,
                                 source_setting="not measured by the paper (it credits augmentation with most of its "
                                                "accuracy)", rule="seeds", margin=2.0, better="higher", n=n))
            t = tests.get(f"{key} − none")
            if t:
                rows.append(Headline(f"{name} beats none (paired by seed, pooled variance, Holm)", t["status"],
                                     t["low"], t["high"], f"{0.95:.0%} interval over {t['n']} training seeds",
                                     ablation_where, rule="difference", status=t["status"]))
    if "overfit" in checks:
        o = checks["overfit"]
        rows.append(Headline("the ablation overfits without augmentation", "met" if o["met"] else "NOT met",
                             interval=f"training accuracy {o['train_acc']:.1f} %", setting=ablation_where,
                             goal=o["train_floor"], rule="check", status="met" if o["met"] else "NOT met"))
    return rows
