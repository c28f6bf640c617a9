"""The cascade chapter's figures: threshold maps with the chosen points, every exit rule's
MAC cut, Pareto frontiers, and wall-clock time."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from simplecnn.core import plots
from simplecnn.studies.cascade.maps import frontier_table, map_position, simulate
from simplecnn.studies.cascade.selection import GATE, variant_inputs


def threshold_maps(val_scores: list[torch.Tensor], val_correct: list[torch.Tensor], stage_cost: list[float],
                   grid: torch.Tensor, zoom: torch.Tensor, zoom_low: float, chosen: pd.DataFrame) -> plt.Figure:
    """Validation accuracy and expected MACs over (δ₀, δ₁), coarse and zoomed (later
    thresholds of a deeper cascade at the top of the grid), with the chosen points starred."""
    n = len(stage_cost)
    fixed = [grid[-1:]] * max(0, n - 3)
    maps = simulate(val_scores, val_correct, stage_cost, [grid, grid, *fixed][:n - 1])
    zoomed = simulate(val_scores, val_correct, stage_cost, [zoom, zoom, *fixed][:n - 1])
    fig, axes = plt.subplots(2, 2, figsize=(12, 10))
    panels = [(maps["acc"], grid, "validation accuracy", "accuracy"),
              (maps["cost"] / 1e6, grid, "expected MACs per image (M)", "M MACs"),
              (zoomed["acc"], zoom, f"accuracy, zoom δ ≥ {zoom_low}", "accuracy"),
              (zoomed["cost"] / 1e6, zoom, f"expected MACs, zoom δ ≥ {zoom_low}", "M MACs")]
    for ax, (values, g, title, label) in zip(axes.flat, panels):
        plots.threshold_map(values, g, ax, title, label)
        for k, (ref, row) in enumerate(chosen.iterrows()):
            d = row["thresholds"]
            if min(d[:2]) < float(g[0]):
                continue  # outside the zoom
            x = map_position(d[1], g) if len(d) > 1 else 0.5
            ax.scatter([x], [map_position(d[0], g)], marker="*", s=220, color=f"C{k + 1}", edgecolor="w",
                       label=f"target {ref}")
    axes[0, 0].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def rule_cuts(reached: pd.DataFrame, references: list[str], rule_names: list[str]) -> plt.Figure:
    """Every rule's test MAC cut with its interval, one panel per target; filled: accuracy
    matched."""
    fig, axes = plt.subplots(1, len(references), figsize=(5 * len(references), 0.3 * len(rule_names) + 1.5),
                             sharey=True)
    axes = np.atleast_1d(axes)
    for ax, ref in zip(axes, references):
        part = reached[reached["reference"] == ref].set_index("rule").reindex(rule_names)
        y = np.arange(len(part))
        ok = part["matched"].fillna(False).astype(bool).to_numpy()
        ax.errorbar(part["cut"], y, xerr=[part["cut"] - part["cut_low"], part["cut_high"] - part["cut"]], fmt="none",
                    ecolor="0.5")
        ax.scatter(part["cut"][ok], y[ok], color="C0", label="matched", zorder=3)
        ax.scatter(part["cut"][~ok], y[~ok], facecolor="w", edgecolor="C3", label="not matched", zorder=3)
        ax.axvline(1.0, color="0.3", ls="--", lw=1)
        ax.set_title(f"at {ref}'s accuracy"), ax.set_xlabel(f"test MAC cut vs {ref} (×)")
        ax.set_yticks(y, part.index, fontsize=7)
    axes[0].invert_yaxis()
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def pareto(rules, logits: dict, labels: dict, temperatures: list[float], gate_scores: dict, stage_cost: list[float],
           fine: torch.Tensor, judged_targets: dict, stage_table: pd.DataFrame) -> plt.Figure:
    """Validation Pareto frontiers of every all-stage rule, the judged rules' chosen points
    on test with their intervals, and the single stages."""
    n = len(stage_cost)
    fig, ax = plt.subplots(figsize=(8, 5))
    for rule in [r for r in rules if r.stages == tuple(range(n))]:
        sc, corr = variant_inputs(logits["val"], labels["val"], rule, temperatures, gate_scores["val"])
        sim = simulate(sc, corr, stage_cost, [fine] * (n - 1))
        front = frontier_table(sim["acc"], sim["cost"], [fine] * (n - 1))
        gate = rule.score == GATE
        ax.step(front["cost"] / 1e6, front["acc"], where="post", label=f"{rule.name}, validation",
                ls=":" if rule.calibrated else "-", lw=2.5 if gate else 1.2, color="k" if gate else None)
    for label, marker in (("report rule", "*"), ("learned gate", "D")):
        for k, (ref, t) in enumerate((r, t) for r, t in judged_targets.get(label, {}).items() if t.get("reached")):
            m, a = t["expected_macs"], t["test_acc"]
            ax.errorbar(m["value"] / 1e6, a["value"],
                        xerr=[[(m["value"] - m["low"]) / 1e6], [(m["high"] - m["value"]) / 1e6]],
                        yerr=[[a["value"] - a["low"]], [a["high"] - a["value"]]], fmt=marker,
                        ms=14 if marker == "*" else 8, color=f"C{k + 1}", mec="k", label=f"{label} for {ref}, test")
    ax.scatter(stage_table["macs"] / 1e6, stage_table["test_acc"], color="k", zorder=3, label="single stages, test")
    for name, row in stage_table.iterrows():
        ax.annotate(name, (row["macs"] / 1e6, row["test_acc"]), xytext=(4, -10), textcoords="offset points",
                    fontsize=8)
    ax.set_xscale("log"), ax.set_xlabel("expected MACs per image (M, log)"), ax.set_ylabel("accuracy")
    ax.legend(fontsize=6, ncol=2)
    return fig


def timing(table: pd.DataFrame) -> plt.Figure:
    """Images/s in batches and per-image latency (p50 and p95) of every model and cascade."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 2.8), sharey=True)
    sns.barplot(x=table["images/s (batches)"].values, y=table.index, ax=axes[0])
    axes[0].set_xlabel("images per second (this machine, batches of 256)")
    axes[1].barh(table.index, table["p95 latency (ms)"], color="0.8", label="p95")
    axes[1].barh(table.index, table["p50 latency (ms)"], color="C0", label="p50")
    axes[1].set_xlabel("latency per image, one at a time (ms)"), axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig
