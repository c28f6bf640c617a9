"""Saliency maps of the full-image CNN, and the checks that make a map worth reading.

captum computes the maps: ``LayerGradCam`` (ReLU'd, bilinearly upsampled), ``GuidedGradCam``,
``IntegratedGradients`` and ``Occlusion``. This module adds what captum lacks:

- faithfulness metrics: deletion and insertion curves against a blurred copy (Petsiuk et
  al., 2018) and ROAD's remove-and-debias with noisy linear imputation (Rong et al., 2022;
  pytorch-grad-cam ships it but is not a dependency, so it is written here), all scored on
  the model's probability of its own predicted class;
- reference maps a method must beat: a random map as smooth as Grad-CAM's and a centre
  prior, compared by paired bootstrap over images, against each and against the better one;
- sanity checks: cascading model-parameter randomisation from the top (Adebayo et al.,
  2018) with Spearman rank correlation and SSIM per step, and agreement with BagNet's
  window evidence as a rank correlation at window resolution.
"""

from __future__ import annotations

from simplecnn.core import params as P
from simplecnn.core.plan import Loop
from simplecnn.core.results import Headline
from simplecnn.studies.gradcam.agreement import bagnet_agreement, region_rows
from simplecnn.studies.gradcam.checks import WHY, cells_check, checks, difference_finding, sanity_check
from simplecnn.studies.gradcam.faithfulness import (METRIC_LABELS, METRICS, class_probability, compare, curve_auc,
                                                    deletion_insertion, faithfulness, image_auc, interval,
                                                    noisy_linear_impute, predicted_classes, ranked_pixels, road,
                                                    score_rows)
from simplecnn.studies.gradcam.maps import (BEST, CAM_CODE, LABELS, METHODS, REFERENCES, attribute, attribution_copy,
                                            blurred, centre_map, display_maps, grad_cam, layer_cells, named_layer,
                                            centre_share, overlay_picks, patch_weights, predicted_class_cam,
                                            smooth_random_maps,
                                            stage_layer, stratified_sample, window_weights)
from simplecnn.studies.gradcam.sanity import (cascade_blocks, cascading_randomisation, randomise_, randomised_copy,
                                              rank_correlations, sanity_rows, ssim, unit_range)

__all__ = [
    "BEST", "CAM_CODE", "LABELS", "METHODS", "METRICS", "METRIC_LABELS", "REFERENCES", "WHY", "attribute",
    "attribution_copy", "bagnet_agreement", "blurred", "cascade_blocks", "cascading_randomisation", "cells_check",
    "centre_map", "centre_share", "checks", "class_probability", "compare", "curve_auc", "deletion_insertion",
    "difference_finding", "display_maps",
    "faithfulness", "grad_cam", "headline", "image_auc", "interval", "layer_cells", "named_layer",
    "noisy_linear_impute", "overlay_picks", "patch_weights", "plan", "predicted_class_cam", "predicted_classes",
    "randomise_", "randomised_copy", "rank_correlations", "ranked_pixels", "region_rows", "results_doc", "road",
    "sanity_check", "sanity_rows", "score_rows", "smooth_random_maps", "ssim", "stage_layer", "stratified_sample",
    "summary_of", "unit_range", "window_weights"]


PARAMETERS = {**P.COMMON, "min_cells": P.whole(1), "methods": P.some_of(list(METHODS)), "curve_images": P.whole(1),
         "steps": P.whole(2), "road_noise": P.number(0), "ig_steps": P.whole(1), "occlusion_window": P.whole(1),
         "centre_sigma": P.number(0, low_open=True), "sanity_images": P.whole(1),
         "sanity_methods": P.some_of(list(METHODS), 0), "sanity_max_corr": P.number(-1, 1),
         "bootstrap_rounds": P.whole(10), "level": P.fraction(), "object_share": P.fraction(),
         "agreement_q": P.one_of([3, 5, 9, 17, 33]), "centre_area": P.fraction()}
"""Every parameter's allowed values, checked before the chapter computes anything (``core.params``)."""

def summary_of(rows: list[dict], key: str = "map") -> dict[str, dict[str, dict]]:
    """Rows of ``score_rows`` as metric -> map -> {value, low, high}."""
    out: dict[str, dict[str, dict]] = {}
    for r in rows:
        out.setdefault(r["metric"], {})[r[key]] = {k: r[k] for k in ("value", "low", "high")}
    return out


def results_doc(setting: dict, scores: list[dict], comparisons: list[dict], curves: dict, sanity: list[dict],
                agreement: list[dict], agreement_comparisons: list[dict], checks_: list[dict],
                regions: list[dict], **sections) -> dict:
    """The chapter's results json: every row it shows, and the headline keys under stable
    names (``deletion_auc``, ``insertion_auc``, ``road``, ``randomisation_rank_corr``,
    ``bagnet_agreement``: map -> {value, low, high}), and further ``sections`` (the centre
    share, the checks across seeds)."""
    by_metric = summary_of(scores)
    last = max(r["step"] for r in sanity)
    return {"setting": setting, "scores": scores, "comparisons": comparisons, "curves": curves,
            "deletion_auc": by_metric["deletion"], "insertion_auc": by_metric["insertion"],
            "road_morf": by_metric["road_morf"], "road_lerf": by_metric["road_lerf"], "road": by_metric["road"],
            "randomisation": sanity,
            "randomisation_rank_corr": {r["method"]: {k: r[k] for k in ("value", "low", "high")} for r in sanity
                                        if r["step"] == last and r["metric"] == "spearman"},
            "bagnet_agreement": summary_of(agreement)["bagnet_agreement"], "bagnet_comparisons": agreement_comparisons,
            "checks": checks_, "regions": regions, **sections}


def headline(results: dict) -> list[Headline]:
    """Grad-CAM's faithfulness (insertion and deletion AUC, ROAD) and each against the better
    of the reference maps (over test images: the trained model), the checks across training
    seeds where the patch study trained several, its map change under full randomisation
    (goal: near 0, not a source figure) and its agreement with BagNet."""
    s = results["setting"]
    ci = f"{s['level']:.0%} bootstrap CI over test images (one trained model)"
    where = (f"{s['dataset']} test, {s['n_images']} images (stratified), {s['resolution']} px, "
             f"{s['layer']} ({s['cells'][0]}×{s['cells'][1]} cells), p(predicted class)")
    rows = []
    for metric in ("insertion", "deletion", "road"):
        key = {"insertion": "insertion_auc", "deletion": "deletion_auc", "road": "road"}[metric]
        v = results[key]["gradcam"]
        rows.append(Headline(f"Grad-CAM {METRIC_LABELS[metric]}", v["value"], v["low"], v["high"], ci,
                             f"{where}; {'higher' if METRICS[metric] else 'lower'} is more faithful", rule="bootstrap",
                             margin=0.03, better="higher" if METRICS[metric] else "lower"))
        d = next(r for r in results["comparisons"]
                 if (r["method"], r["reference"], r["metric"]) == ("gradcam", BEST, metric))
        status = difference_finding("gradcam", BEST, d).status
        rows.append(Headline(f"Grad-CAM {METRIC_LABELS[metric]} − best reference map", d["difference"], d["low"],
                             d["high"], f"{s['level']:.0%} paired bootstrap CI over test images (one trained model), "
                             f"best reference re-chosen per resample", where, rule="difference", status=status))
    for c in results.get("checks_across_seeds", []):
        rows.append(Headline(f"Grad-CAM − {LABELS[c['reference']]}, {METRIC_LABELS[c['metric']]}, across seeds",
                             c["diff"], c["low"], c["high"], c["covers"], where, rule="difference", status=c["status"]))
    r = results["randomisation_rank_corr"]["gradcam"]
    rows.append(Headline("Grad-CAM rank correlation, trained vs fully randomised model", r["value"], r["low"], r["high"],
                         ci, f"Spearman ρ per image, {s['dataset']} test, {s['sanity_images']} images; near 1: the map "
                             f"ignores the weights", goal=0.0, rule="bootstrap", margin=0.1, better="lower"))
    sanity = next((c for c in results.get("checks", []) if c.get("metric") == "randomisation"), None)
    if sanity:
        rows.append(Headline("Grad-CAM's map changes when the weights are randomised", sanity["status"],
                             interval=ci, setting=where, rule="check", status=sanity["status"]))
    b = results["bagnet_agreement"]["gradcam"]
    rows.append(Headline(f"Grad-CAM agreement with BagNet-{s['agreement_q']} evidence", b["value"], b["low"], b["high"],
                         ci, f"Spearman ρ over windows per image, {s['dataset']} test, {s['n_images']} images",
                         rule="bootstrap", margin=0.05, better="higher"))
    centre = results.get("centre_share", {})
    for name, c in centre.items():
        rows.append(Headline(f"share of {name} mass in the central {100 * c['area']:.0f} % of the image", c["value"],
                             c["low"], c["high"], ci, f"{s['dataset']} test; {100 * c['area']:.0f} % for mass spread "
                             f"evenly", rule="bootstrap", margin=0.05))
    return rows


def plan(params: dict, upstream: dict | None = None) -> list[Loop]:
    """The patch study's full-image CNN (``upstream["patches"]``: that chapter's parameters)
    attributed in batches of 64 (with its randomised copies) and scored in batches of 256; with
    the patch study's ``extra_seeds``, the CNN trained once more per extra seed (the patch
    chapter trains its own seed only), for the claims across seeds."""
    p = (upstream or {}).get("patches")
    if p is None:
        raise ValueError("the Grad-CAM chapter's plan needs the patch chapter's parameters (upstream['patches'])")
    from simplecnn.core.data import split_sizes
    from simplecnn.core.recipes import recipe
    cnn = recipe(p["ceiling_recipe"], p["dataset"], like=p.get("like"), resolution=p["resolution"])
    loops = [Loop("full-image CNN, attribution", cnn.model, cnn.model_kwargs, p["resolution"], 64),
             Loop("full-image CNN, scoring", cnn.model, cnn.model_kwargs, p["resolution"], 256)]
    if p.get("extra_seeds"):
        n = p["train_size"] or split_sizes(p["dataset"], p["val_fraction"])["train"]
        loops.append(Loop(f"full-image CNN, {len(p['extra_seeds'])} more training seeds", cnn.model, cnn.model_kwargs,
                          p["resolution"], cnn.config.batch_size, n * p["ceiling_epochs"] * len(p["extra_seeds"]),
                          ema=bool(cnn.config.ema)))
    return loops
