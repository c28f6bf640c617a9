"""Grad-CAM's claims across training seeds: for the patch study's full-image CNN trained with
each seed, Grad-CAM against each reference map on each faithfulness metric (mean over the
same images), tested across seeds: a claim about Grad-CAM on this kind of model, where one
model's bootstrap over images is a claim about that model."""

from __future__ import annotations

import torch

from simplecnn.core import findings
from simplecnn.studies.gradcam.faithfulness import METRICS, faithfulness, predicted_classes
from simplecnn.studies.gradcam.maps import LABELS, REFERENCES, attribute, centre_map, layer_cells, smooth_random_maps


def seed_differences(model: torch.nn.Module, images: torch.Tensor, layer: str, steps: int,
                     road_fractions: list[float], road_noise: float, centre_sigma: float, seed: int) -> dict:
    """(reference, metric) -> Grad-CAM's mean score minus the reference's, for one model."""
    pred = predicted_classes(model, images)
    size, cells = images.shape[-1], layer_cells(model, layer, images.shape[-1])
    maps = {"gradcam": attribute("gradcam", model, images, pred, layer),
            "smooth_random": smooth_random_maps(len(images), size, cells, seed),
            "centre": centre_map(len(images), size, centre_sigma)}
    scores = {k: faithfulness(model, images, pred, m, steps, road_fractions, road_noise, seed)["scores"]
              for k, m in maps.items()}
    return {(ref, metric): float(scores["gradcam"][metric].mean() - scores[ref][metric].mean())
            for ref in REFERENCES for metric in ("insertion", "deletion", "road")}


def across_seeds(per_seed: list[dict], seeds: list[int], level: float = 0.95) -> list[dict]:
    """Each (reference, metric) difference across seeds, worded by its test (a positive
    difference is better on insertion and ROAD, worse on deletion). Empty with one seed."""
    if len(per_seed) < 2:
        return []
    rows = []
    for ref, metric in per_seed[0]:
        values = [d[(ref, metric)] for d in per_seed]
        mean, low, high, p = findings.across_seeds(values, level)
        status = findings.compare(LABELS["gradcam"], LABELS[ref], mean, low, high, findings.SEEDS, digits=3,
                                  higher_is_better=METRICS[metric]).status
        rows.append({"reference": ref, "metric": metric, "per_seed": values, "seeds": list(seeds), "diff": mean,
                     "low": low, "high": high, "p": p, "status": status,
                     "covers": findings.covers_text(findings.SEEDS, len(seeds), level),
                     "text": f"Grad-CAM − {LABELS[ref]}, {metric}, over {len(seeds)} training seeds: {mean:+.3f} "
                             f"[{low:+.3f}, {high:+.3f}]: {status}"})
    return rows
