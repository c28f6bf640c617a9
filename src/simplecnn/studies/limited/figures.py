"""The limited-ResNet chapter's figures: accuracy against compute, the pairwise difference
matrix, the paper's accuracies beside this run's, and the ablation's gains."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from simplecnn.studies.limited.designs import ANCHORS
from simplecnn.studies.limited.stats import difference_matrix, gains


def accuracy_vs_macs(by_design: pd.DataFrame) -> plt.Figure:
    """Mean test accuracy (± std over seeds) against MACs per image, bubble size: parameters."""
    bubble = by_design.reset_index()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sns.scatterplot(data=bubble, x=bubble["macs"] / 1e6, y="acc_mean", size="params", hue="design", sizes=(80, 400),
                    legend="brief", ax=ax)
    ax.errorbar(bubble["macs"] / 1e6, bubble["acc_mean"], yerr=bubble["acc_std"], fmt="none", ecolor="grey")
    ax.set_xlabel("multiply-accumulates per image (M), as trained"), ax.set_ylabel("test accuracy (%)")
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1, 1))
    return fig


def differences(pairs: pd.DataFrame, designs: list[str]) -> plt.Figure:
    """Mean difference of every pair (row minus column), a star on the resolved ones."""
    matrix, stars = difference_matrix(pairs, designs)
    fig, ax = plt.subplots(figsize=(7, 5.5))
    sns.heatmap(matrix, annot=matrix.round(1).astype(str) + stars, fmt="", cmap="vlag", center=0, ax=ax,
                cbar_kws={"label": "row − column, test accuracy (points)"})
    ax.set_xlabel(""), ax.set_ylabel("")
    ax.set_title("Differences between designs (* resolved after Holm, seed variance pooled)")
    return fig


def beside_paper(by_design: pd.DataFrame, width: float, epochs: int) -> plt.Figure:
    """The paper's accuracies beside this run's means (± std over seeds), published small
    CIFAR-10 networks as dotted lines."""
    compare = by_design[["paper_acc", "acc_mean"]].rename(columns={"paper_acc": "paper (full width, long training)",
                                                                   "acc_mean": f"here (×{width}, {epochs} epochs)"})
    fig, ax = plt.subplots(figsize=(8, 4))
    compare.plot.bar(rot=0, yerr={compare.columns[1]: by_design["acc_std"]}, ax=ax)
    ax.set_ylabel("CIFAR-10 test accuracy (%)")
    ax.set_ylim(max(0, compare.min().min() - 10), 100)
    for _, anchor in ANCHORS.iterrows():
        ax.axhline(anchor["acc"], ls=":", c="grey", lw=1)
        ax.annotate(anchor["model"], (len(compare) - 0.5, anchor["acc"]), fontsize=7, ha="right", va="bottom")
    return fig


def ablation(runs: pd.DataFrame, order: list[str]) -> plt.Figure:
    """Each setting's change in test accuracy against no augmentation, paired by seed."""
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(order) + 1.5))
    sns.barplot(data=gains(runs), y="setting", x="gain", order=order, errorbar="sd", ax=ax)
    ax.axvline(0, c="black", lw=1)
    ax.set_xlabel("test accuracy change against no augmentation (percentage points; bar: ± one std over seeds)")
    return fig
