"""The cascade's claims across training seeds: the report rule's MAC cut at the middle and
the top stage's accuracy, for a ladder trained with each seed, tested across seeds (a claim
about the method, where one trained ladder's bootstrap interval is a claim about that ladder)."""

from __future__ import annotations

import numpy as np
import torch

from simplecnn.core import findings
from simplecnn.studies.cascade.selection import Reference, Variant, score_variants
from simplecnn.studies.cascade.stages import Stage, train_stage


def ladder_cuts(specs: list[Stage], splits: dict, labels: dict, stage_cost: list[float], fine: torch.Tensor,
                rule: Variant, recipe_name: str, seed: int, label_smoothing: float, cpu_bf16: bool,
                like: str | None = None) -> dict[str, float]:
    """The test MAC cut of ``rule`` (selected on validation) at every stage's accuracy, for the
    ladder trained with ``seed``; NaN where no threshold reaches the target."""
    trained = [train_stage(s, splits[s.resolution], recipe_name, seed, label_smoothing=label_smoothing,
                           cpu_bf16=cpu_bf16, like=like) for s in specs]
    logits = {split: [t.logits(getattr(splits[s.resolution], split), split) for s, t in zip(specs, trained)]
              for split in ("val", "test")}
    refs = [Reference(s.name, lv.argmax(1) == labels["val"], lt.argmax(1) == labels["test"], m)
            for s, lv, lt, m in zip(specs, logits["val"], logits["test"], stage_cost)]
    counts = np.ones((1, len(labels["test"])))  # the point values only: intervals come from the seeds
    table = score_variants(logits, labels, stage_cost, fine, [rule], refs, [1.0] * len(specs), counts)
    return {row["reference"]: (row["mac_cut"]["value"] if row["reached"] else float("nan"))
            for row in table.to_dict("records")}


def across_seeds(per_seed: list[dict[str, float]], seeds: list[int], goals: dict[str, float],
                 level: float = 0.95) -> list[dict]:
    """Per target stage with a goal, the cut over seeds: mean, Student-t interval, and the goal
    judged on it (met when the interval lies above it, NOT met when below, not resolved
    otherwise). Empty with one seed."""
    if len(per_seed) < 2:
        return []
    rows = []
    for ref, goal in goals.items():
        values = [d.get(ref, float("nan")) for d in per_seed]
        mean, low, high, _ = findings.across_seeds(values, level)
        status = ("met" if low >= goal else "NOT met" if high < goal else "not resolved") if np.isfinite(low) \
            else "not resolved"
        rows.append({"target": ref, "per_seed": values, "seeds": list(seeds), "mean": mean, "low": low, "high": high,
                     "goal": goal, "status": status,
                     "covers": findings.covers_text(findings.SEEDS, len(seeds), level),
                     "text": f"MAC cut at {ref}'s accuracy over {len(seeds)} training seeds: {mean:.2f}× "
                             f"[{low:.2f}, {high:.2f}] against the goal {goal:g}×: {status}"})
    return rows
