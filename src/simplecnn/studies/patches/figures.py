"""The patch chapter's figures: scores against the patch size, ROC curves, what a window
costs, the training-memory test, and the background analysis per detector."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch

from simplecnn.core import metrics


def size_figure(table: pd.DataFrame, families: list[str], qs: list[int]) -> plt.Figure:
    """Patch AUC, image AUC and image accuracy against q, one line per family; the SIFT
    bag of words and the full-image CNN as image-level references."""
    patch_table = table[table["method"].isin(families)]
    cnn = table[table["method"] == "full_cnn"].iloc[0]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, metric in zip(axes, ["patch_auc", "image_auc", "image_acc"]):
        sns.lineplot(data=patch_table, x="q", y=metric, hue="method", marker="o", ax=ax, legend=ax is axes[0])
        ax.set_xticks(qs)
        if metric.startswith("image"):
            bovw = table[table["method"] == "sift_bovw"]
            ax.plot(bovw["q"], bovw[metric], "k--", label="SIFT bag of words")
            ax.axhline(cnn[metric], color="grey", ls=":", label="full-image CNN")
        ax.set_title(metric.replace("_", " "))
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    return fig


def roc_figure(preds: dict, labels: torch.Tensor, families: list[str], q: int, windows: int,
               aucs: pd.Series) -> plt.Figure:
    """Micro-averaged one-vs-rest ROC curve of every family's windows at ``q``."""
    fig, ax = plt.subplots(figsize=(5, 5))
    patch_labels = labels.repeat_interleave(windows)
    for method in families:
        probs = preds[method, q]["test"].reshape(len(patch_labels), -1)
        fpr, tpr = metrics.micro_roc(probs, patch_labels)
        ax.plot(fpr, tpr, label=f"{method} (macro AUC {aucs[method]:.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set_xlabel("false positive rate"), ax.set_ylabel("true positive rate")
    ax.legend(fontsize=8)
    return fig


def cost_figure(patch_table: pd.DataFrame) -> plt.Figure:
    """Patch AUC against inference time per window."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sns.scatterplot(data=patch_table, x="us_per_window", y="patch_auc", hue="method", style="q", s=80, ax=ax)
    ax.set_xscale("log")
    ax.set_xlabel("inference time per window (µs, log)"), ax.set_ylabel("patch macro AUC")
    return fig


def inference_memory_figure(memory: dict) -> plt.Figure:
    """Peak memory of the BagNet on a large image, whole and in tiles."""
    fig, ax = plt.subplots(figsize=(5, 2.5))
    sns.barplot(x=[memory["whole_peak_bytes"] / 2 ** 20, memory["tiled_peak_bytes"] / 2 ** 20],
                y=["whole image", f"tiles of {memory['tile_windows']} windows"], ax=ax)
    ax.set_xlabel(f"peak memory of BagNet-{memory['q']} inference on {memory['image_px']} px (MiB)")
    return fig


def train_memory_figure(table: pd.DataFrame, q: int) -> plt.Figure:
    """Peak memory of one training step against the image side, whole and in tiles."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    sns.lineplot(data=table, x="image_px", y="peak_mib", hue="mode", marker="o", ax=ax)
    ax.set_xticks(sorted(table["image_px"].unique()))
    ax.set_xlabel("image side (px)"), ax.set_ylabel("peak memory of one training step (MiB)")
    ax.set_title(f"BagNet-{q}, one image, fresh process")
    return fig


def background_figure(rows: pd.DataFrame) -> plt.Figure:
    """Per detector, each family × q row's patch-AUC gap and image-accuracy change when
    background is ignored, with their intervals."""
    detectors = list(dict.fromkeys(rows["detector"]))
    fig, axes = plt.subplots(2, len(detectors), figsize=(4.5 * len(detectors), 6), squeeze=False, sharey="row")
    for j, (d, g) in enumerate(rows.groupby("detector", sort=False)):
        names = [f"{m}-{q}" for m, q in zip(g.method, g.q)]
        for i, (key, scale, label) in enumerate((("auc_gap", 1, "patch AUC, object − background"),
                                                 ("image_acc_change", 100, "image accuracy change (points)"))):
            ax = axes[i, j]
            ax.errorbar(range(len(g)), g[key] * scale, yerr=[(g[key] - g[f"{key}_low"]) * scale,
                                                             (g[f"{key}_high"] - g[key]) * scale], fmt="o", capsize=3)
            ax.axhline(0, color="grey", ls=":")
            ax.set_xticks(range(len(g)), names if i else [], rotation=90, fontsize=7)
            ax.set_title(d if i == 0 else ""), ax.set_ylabel(label if j == 0 else "")
    fig.tight_layout()
    return fig
