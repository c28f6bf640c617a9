"""The fusion chapter's figures: every rule's test AUC per classifier, ROC curves of the
chosen classifier, AUC against object size, and the centre rule's σ sweep."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from simplecnn.core import metrics


def auc_heatmap(result, rules: list[str], names: list[str]) -> plt.Figure:
    """Test AUC of every (classifier, rule); red boxes: each classifier's validation choice."""
    auc = result.table.pivot(index="classifier", columns="rule", values="image_auc")[rules].loc[names]
    fig, ax = plt.subplots(figsize=(12, 0.45 * len(auc) + 1.5))
    sns.heatmap(auc, annot=True, fmt=".3f", cmap="viridis", ax=ax, cbar_kws={"label": "image macro AUC (test)"})
    for i, name in enumerate(names):
        ax.add_patch(plt.Rectangle((rules.index(result.chosen.loc[name, "rule"]), i), 1, 1, fill=False, ec="red",
                                   lw=2))
    ax.set_xlabel("rule (red box: chosen on validation)"), ax.set_ylabel("")
    return fig


def roc(result, classifier: str, rules: list[str]) -> plt.Figure:
    """Micro-averaged test ROC curves of ``rules`` for one classifier."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for rule in dict.fromkeys(rules):
        if (classifier, rule) in result.scores:
            fpr, tpr = metrics.micro_roc(result.scores[classifier, rule], result.labels)
            ax.plot(fpr, tpr, label=f"{rule} ({metrics.macro_auc(result.scores[classifier, rule], result.labels):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set_xlabel("false positive rate"), ax.set_ylabel("true positive rate"), ax.legend(fontsize=8)
    return fig


def by_size(table: pd.DataFrame) -> plt.Figure:
    """Each rule's AUC per object-size bin, averaged over classifiers."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    sns.pointplot(data=table, x="size bin (small → large)", y="image_auc", hue="rule", errorbar=None, ax=ax)
    ax.legend(fontsize=7, ncol=2)
    ax.set_ylabel("image AUC, mean over classifiers")
    return fig


def sigma_sweep(sweep: pd.DataFrame) -> plt.Figure:
    """Validation (solid) and test (dashed) AUC of the centre rule against σ, per classifier."""
    long = sweep.melt(id_vars=["classifier", "sigma"], value_vars=["val_auc", "test_auc"], var_name="split",
                      value_name="image_auc")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    sns.lineplot(data=long, x="sigma", y="image_auc", hue="classifier", style="split", marker="o", ax=ax)
    ax.set_xscale("log"), ax.set_xlabel("σ (image sides, log)"), ax.legend(fontsize=7, ncol=2)
    return fig
