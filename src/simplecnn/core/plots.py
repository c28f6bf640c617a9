"""Figures shared by the chapters (seaborn on matplotlib, one style for the book)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch

sns.set_theme(context="notebook", style="whitegrid")


def image_grid(images: torch.Tensor, labels: torch.Tensor, classes: list[str], per_class: int = 6,
               title: str | None = None) -> plt.Figure:
    """The first ``per_class`` images of each class, one row per class, class names on the left."""
    fig, axes = plt.subplots(len(classes), per_class, figsize=(per_class * 1.1, len(classes) * 1.1), squeeze=False)
    for c, name in enumerate(classes):
        idx = (labels == c).nonzero().flatten()[:per_class]
        for k, ax in enumerate(axes[c]):
            ax.set_xticks([]), ax.set_yticks([])
            ax.grid(False)
            if k < len(idx):
                ax.imshow(images[idx[k]].permute(1, 2, 0).numpy())
        axes[c][0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def labelled_scatter(df: pd.DataFrame, x: str, y: str, hue: str | None = None, size: str | None = None,
                     log: bool = True, xlabel: str | None = None, ylabel: str | None = None,
                     ax: plt.Axes | None = None, skip_label: str | None = None) -> plt.Axes:
    """Scatter with each point labelled by the frame's index (model names), log-log by default.

    Index entries ending in ``skip_label`` stay unlabelled (variants that sit on a twin)."""
    ax = ax or plt.subplots(figsize=(7, 5))[1]
    sns.scatterplot(data=df, x=x, y=y, hue=hue, size=size, ax=ax, s=None if size else 60)
    for name, row in df.iterrows():
        if not (skip_label and str(name).endswith(skip_label)):
            ax.annotate(str(name), (row[x], row[y]), xytext=(4, 3), textcoords="offset points", fontsize=8)
    if log:
        ax.set_xscale("log"), ax.set_yscale("log")
    ax.set_xlabel(xlabel or x), ax.set_ylabel(ylabel or y)
    return ax


def overlay_grid(images: torch.Tensor, maps: dict[str, torch.Tensor], row_labels: list[str],
                 cmap: str = "magma", alpha: float = 0.6, vmin: float | None = 0.0, vmax: float | None = None
                 ) -> plt.Figure:
    """One row per image: the image, then each named N×H×W map over it (NaN: transparent).

    Patch-evidence maps and Grad-CAMs use it alike; ``vmin``/``vmax`` fix the colour scale."""
    cols = 1 + len(maps)
    fig, axes = plt.subplots(len(images), cols, figsize=(cols * 1.7, len(images) * 1.75), squeeze=False)
    for r, img in enumerate(images):
        rgb = img.permute(1, 2, 0).numpy()
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([]), ax.set_yticks([])
            ax.grid(False)
            ax.imshow(rgb)
            if c:
                name = list(maps)[c - 1]
                ax.imshow(maps[name][r].numpy(), cmap=cmap, alpha=alpha, vmin=vmin, vmax=vmax)
                if r == 0:
                    ax.set_title(name, fontsize=9)
        axes[r][0].set_ylabel(row_labels[r], rotation=0, ha="right", va="center", fontsize=8)
    fig.tight_layout()
    return fig


def threshold_map(values: torch.Tensor, thresholds: torch.Tensor, ax: plt.Axes, title: str, label: str) -> None:
    """A cascade map over (δ₀, δ₁), δ₀ upwards; a two-stage cascade's 1-D map is one column."""
    v = values.reshape(len(thresholds), -1)
    ticks = [f"{t:.2f}" for t in thresholds.tolist()]
    sns.heatmap(pd.DataFrame(v.numpy(), index=ticks, columns=ticks if v.shape[1] > 1 else [""]), ax=ax,
                cmap="viridis", cbar_kws={"label": label}, xticklabels=max(1, len(ticks) // 8),
                yticklabels=max(1, len(ticks) // 8))
    ax.invert_yaxis()
    ax.set_ylabel("δ₀ (stage 0)"), ax.set_xlabel("δ₁ (stage 1)" if v.shape[1] > 1 else "")
    ax.set_title(title)


def training_curves(history: pd.DataFrame, hue: str, title: str) -> plt.Figure:
    """Training loss per epoch (and validation accuracy where it was tracked), one line per
    ``hue`` value, mean over seeds with a band of ± one standard deviation."""
    panels = [("train_loss", "training loss")] + ([("val_acc", "validation accuracy")]
                                                  if "val_acc" in history and history["val_acc"].notna().any() else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, (column, label) in zip(axes[0], panels):
        sns.lineplot(data=history, x="epoch", y=column, hue=hue, errorbar="sd", ax=ax)
        ax.set_ylabel(label)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
