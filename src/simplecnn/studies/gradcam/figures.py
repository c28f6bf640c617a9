"""The Grad-CAM chapter's figures and tables: overlays, faithfulness curves, the sanity
check's decay, and patch accuracy on object and background windows."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch

from simplecnn.core import plots
from simplecnn.studies.gradcam.faithfulness import METRIC_LABELS
from simplecnn.studies.gradcam.maps import LABELS, REFERENCES, display_maps, overlay_picks


def overlays(images: torch.Tensor, labels: torch.Tensor, pred: torch.Tensor, maps: dict, methods: list[str],
             classes: list[str], correct: bool) -> plt.Figure:
    """One image per class, each method's map over it: the model's correct predictions, or its
    mistakes (true → predicted)."""
    shown = {LABELS[m]: display_maps(maps[m]) for m in methods}
    rows = overlay_picks(labels, pred, correct)
    names = [classes[labels[i]] + ("" if correct else f" → {classes[pred[i]]}") for i in rows]
    fig = plots.overlay_grid(images[rows], {k: v[rows] for k, v in shown.items()}, names, cmap="jet", alpha=0.45,
                             vmax=1.0)
    fig.suptitle("correct predictions" if correct else "wrong predictions", y=1.0)
    return fig


def curves(faith: dict[str, dict]) -> plt.Figure:
    """Deletion, insertion and both ROAD curves of every map (references dashed)."""
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for name, f in faith.items():
        c, style = f["curves"], ("--" if name in REFERENCES else "-")
        for ax, (x, y) in zip(axes, [("fractions", "deletion"), ("fractions", "insertion"),
                                     ("road_fractions", "road_morf"), ("road_fractions", "road_lerf")]):
            ax.plot(c[x], c[y], style, marker="." if x == "road_fractions" else None, label=LABELS[name])
    for ax, title in zip(axes, ["deletion (blur)", "insertion (blur)", "ROAD, most relevant removed",
                                "ROAD, least relevant removed"]):
        ax.set_title(title), ax.set_xlabel("fraction of pixels")
    axes[0].set_ylabel("p(predicted class)")
    axes[-1].legend(fontsize=8)
    return fig


def score_frame(score_rows: list[dict], maps: list[str]) -> pd.DataFrame:
    """Every map's score on every metric with its interval."""
    t = pd.DataFrame([{"map": LABELS[r["map"]], "metric": METRIC_LABELS[r["metric"]],
                       "score": f"{r['value']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"} for r in score_rows])
    return t.pivot(index="map", columns="metric", values="score").loc[[LABELS[m] for m in maps]]


def difference_frame(comparisons: list[dict]) -> pd.DataFrame:
    """Each method minus each reference (✓ resolved on the good side, ✗ on the bad side)."""
    t = pd.DataFrame([{"method": LABELS[r["method"]], "reference": LABELS[r["reference"]],
                       "metric": METRIC_LABELS[r["metric"]],
                       "difference": f"{r['difference']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]"
                                     + (" ✓" if r["beats"] else " ✗" if r["loses"] else "")} for r in comparisons])
    return t.pivot(index=["method", "reference"], columns="metric", values="difference")


def sanity(rows: list[dict]) -> plt.Figure:
    """Spearman ρ (signed and absolute) and SSIM of trained vs randomised maps per step."""
    san = pd.DataFrame(rows)
    blocks = list(dict.fromkeys(san.block))
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.6), sharey=True)
    for ax, metric in zip(axes, ("spearman", "spearman_abs", "ssim")):
        for m, part in san[san.metric == metric].groupby("method", sort=False):
            ax.plot(part.step, part.value, marker="o", label=LABELS[m])
            ax.fill_between(part.step, part.low, part.high, alpha=0.2)
        ax.set_xticks(range(len(blocks)), blocks, rotation=60, fontsize=7)
        ax.set_title({"spearman": "Spearman ρ", "spearman_abs": "Spearman ρ of |map|", "ssim": "SSIM of |map|"}[metric])
        ax.axhline(0, color="grey", lw=0.5)
    axes[0].set_ylabel("trained vs randomised (mean, CI)")
    axes[0].legend(fontsize=8)
    return fig


def regions(table: pd.DataFrame):
    """Patch accuracy on object and background windows, per family and q."""
    grid = sns.catplot(data=table, x="q", y="patch_acc", hue="region", col="method", kind="bar", height=3, aspect=0.9)
    grid.set_axis_labels("q", "patch accuracy")
    return grid
