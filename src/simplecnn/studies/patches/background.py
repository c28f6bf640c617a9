"""Background windows: which windows of an image are background, how well the patch
classifiers do on them, and whether ignoring them helps the image decision.

The proposal expects majority votes over patches to suffer from background patches and
suggests weighting windows by whether they are background (e.g. by distance from the
centre). Here a *detector* gives every window of an image a score (higher: more likely
object), and in each image the ``share`` of windows with the lowest scores are called
background. Detectors: the full CNN's predicted-class Grad-CAM mass over the window
(model-based; computed by ``studies.gradcam.patch_weights`` and passed in as scores),
OpenCV's spectral-residual saliency mass over the window and the closeness of the window's
centre to the image centre (both model-free). Then, on test images with bootstrap CIs over
images (windows go with their image; one set of resamples, so differences are paired):

- the patch AUC of the object and of the background windows, and their difference;
- the image decision by the family's mean log-probability (``compare.image_scores``) over
  all windows and over the object windows only (background weighted 0), and the change.

Ignoring background at aggregation needs the detector on the test images only. Ignoring it
in training (``refit_rows``) refits the linear read-outs on the centre detector's object
windows of the training images (``LinearOptions(train_windows="centre")``: the same
positions in every image, so no detector pass over the training set) and retrains the
BagNet with its mean logits over those windows only (``object_bagnet``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import cv2
import numpy as np
import pandas as pd
import torch

from simplecnn.core.metrics import (accuracy, bootstrap_accuracy, confidence_interval, macro_auc, paired_p_value,
                                    weighted_macro_auc)
from simplecnn.studies.patches import window_means
from simplecnn.studies.patches.compare import linearised_auc_bootstrap, log_probs
from simplecnn.studies.patches.grid import Grid, background_mask, centre_scores

__all__ = ["DETECTORS", "centre_scores", "saliency_maps", "saliency_scores", "background_mask",
           "weighted_image_scores", "region_auc", "aggregation_change", "background_rows", "detector_summary",
           "refit_rows", "refit_line", "refit_study", "REFIT_CASES",
           "study_rows", "check_line"]

DETECTORS = ("gradcam", "saliency", "centre")  # model-based, then the two model-free ones


# --- detectors: a score per window, higher = more likely object ----------------------------


def saliency_maps(images: torch.Tensor) -> torch.Tensor:
    """N × H × W spectral-residual saliency (Hou & Zhang, 2007; OpenCV contrib) of uint8
    N × 3 × H × W RGB images, each map in [0, 1]."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"saliency needs uint8 N×3×H×W RGB images, got {images.dtype} of shape "
                         f"{tuple(images.shape)}")
    if not hasattr(cv2, "saliency"):
        raise ImportError("cv2.saliency is missing: install opencv-contrib-python(-headless) instead of opencv-python")
    detector = cv2.saliency.StaticSaliencySpectralResidual_create()
    out = np.empty((len(images), *images.shape[-2:]), np.float32)
    for i, img in enumerate(images.permute(0, 2, 3, 1).numpy()):
        ok, sal = detector.computeSaliency(np.ascontiguousarray(img[..., ::-1]))  # OpenCV wants BGR
        if not ok:
            raise RuntimeError(f"OpenCV's spectral-residual saliency failed on image {i}")
        out[i] = sal
    return torch.from_numpy(out)


def saliency_scores(images: torch.Tensor, grid: Grid) -> torch.Tensor:
    """N × side × side: the mean spectral-residual saliency over each window."""
    return window_means(saliency_maps(images), grid)


# --- scores -------------------------------------------------------------------------------

def weighted_image_scores(probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """N × classes image probabilities: softmax of the ``weights``-weighted mean of the
    windows' log-probabilities (weights N × side × side, ≥ 0, each image's summing above
    0); with equal weights this is ``compare.image_scores(probs, "mean_logit")``."""
    n, c = len(probs), probs.shape[-1]
    w = weights.reshape(n, -1, 1).double()
    if (w < 0).any() or (w.sum(1) <= 0).any():
        raise ValueError("window weights must be non-negative with a positive sum in every image")
    logp = log_probs(probs.reshape(n, -1, c))
    return torch.softmax((w * logp).sum(1) / w.sum(1), -1)


def region_auc(probs: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, counts: np.ndarray
               ) -> tuple[float, np.ndarray]:
    """Macro one-vs-rest AUC of the windows where ``mask`` holds (each labelled by its image)
    and its value in each resample of images (``counts``, linearised as in ``compare``)."""
    n, c = len(probs), probs.shape[-1]
    keep = mask.reshape(n, -1).numpy()
    scores = probs.reshape(n, -1, c).double().numpy()[keep]
    owner = np.nonzero(keep)[0]
    return linearised_auc_bootstrap(scores, labels.numpy()[owner], owner, counts)


def _image_decision(probs: torch.Tensor, weights: torch.Tensor, y: np.ndarray, counts: np.ndarray
                    ) -> tuple[dict, dict]:
    """Image accuracy and macro AUC of the ``weights``-weighted mean log-probability, and
    their values in each resample of images."""
    s = weighted_image_scores(probs, weights).numpy()
    return ({"image_acc": accuracy(s, y), "image_auc": macro_auc(s, y)},
            {"image_acc": bootstrap_accuracy(s.argmax(1) == y, counts), "image_auc": weighted_macro_auc(s, y, counts)})


def _paired_change(row: dict, boot: dict, a: str, b: str, key: str) -> np.ndarray:
    """``row[key]`` = ``row[a] − row[b]`` with its paired CI, p-value and whether it is
    resolved (the CI excludes zero); returns the resampled differences."""
    d = boot[a] - boot[b]
    row[key] = row[a] - row[b]
    row[f"{key}_low"], row[f"{key}_high"] = confidence_interval(d)
    row[f"{key}_p"] = paired_p_value(boot[a], boot[b])
    row[f"{key}_resolved"] = bool(row[f"{key}_low"] > 0 or row[f"{key}_high"] < 0)
    return d


def _decisions(cases: dict[str, tuple[torch.Tensor, torch.Tensor]], y: np.ndarray, counts: np.ndarray
               ) -> tuple[dict, dict]:
    """``image_acc_<case>`` and ``image_auc_<case>`` with CIs for each (probs, weights) case."""
    row, boot = {}, {}
    for case, (probs, weights) in cases.items():
        values, resampled = _image_decision(probs, weights, y, counts)
        for metric in values:
            key = f"{metric}_{case}"
            row[key], boot[key] = values[metric], resampled[metric]
            row[f"{key}_low"], row[f"{key}_high"] = confidence_interval(resampled[metric])
    return row, boot


def aggregation_change(probs: torch.Tensor, labels: torch.Tensor, background: torch.Tensor, counts: np.ndarray
                       ) -> tuple[dict, dict]:
    """Image accuracy and macro AUC by mean log-probability over all windows and over the
    object windows only (background weighted 0), their changes with paired CIs; and the
    resampled changes (for summaries across rows)."""
    row, boot = _decisions({"all": (probs, torch.ones(background.shape)), "object": (probs, (~background).double())},
                           labels.numpy(), counts)
    for metric in ("image_acc", "image_auc"):
        boot[f"{metric}_change"] = _paired_change(row, boot, f"{metric}_object", f"{metric}_all", f"{metric}_change")
    return row, boot


def background_rows(probs: torch.Tensor, labels: torch.Tensor, scores: torch.Tensor, share: float,
                    counts: np.ndarray) -> tuple[dict, dict]:
    """One family's test windows (N × side × side × classes) against one detector's window
    ``scores``: patch AUC on object and background windows (and object − background) and
    the image decision with and without the background windows, all with CIs; and the
    resampled differences ``auc_gap``, ``image_acc_change``, ``image_auc_change``."""
    if scores.shape != probs.shape[:3]:
        raise ValueError(f"detector scores are {tuple(scores.shape)} but the windows are {tuple(probs.shape[:3])}; "
                         f"score the same images on the same grid")
    background = background_mask(scores, share)
    row, boot = {"share": share}, {}
    for region, mask in (("object", ~background), ("background", background)):
        row[f"patch_auc_{region}"], boot[region] = region_auc(probs, labels, mask, counts)
        row[f"patch_auc_{region}_low"], row[f"patch_auc_{region}_high"] = confidence_interval(boot[region])
    gap = boot["object"] - boot["background"]
    row["auc_gap"] = row["patch_auc_object"] - row["patch_auc_background"]
    row["auc_gap_low"], row["auc_gap_high"] = confidence_interval(gap)
    row["auc_gap_resolved"] = bool(row["auc_gap_low"] > 0 or row["auc_gap_high"] < 0)
    agg, agg_boot = aggregation_change(probs, labels, background, counts)
    return {**row, **agg}, {"auc_gap": gap, "image_acc_change": agg_boot["image_acc_change"],
                            "image_auc_change": agg_boot["image_auc_change"]}


REFIT_CASES = (("all", "all"), ("all", "object"), ("object", "object"))  # (fitted on, aggregated over)


def refit_rows(fit_all: torch.Tensor, fit_object: torch.Tensor, labels: torch.Tensor, background: torch.Tensor,
               counts: np.ndarray) -> dict:
    """Image decisions (accuracy, macro AUC, mean log-probability) of one read-out fitted on
    all training windows (``fit_all``) and refitted on the object windows only
    (``fit_object``), each aggregated over all or over the object test windows
    (``background``: N × side × side, True on background). Changes with paired CIs over the
    resamples ``counts``: ``refit`` = object-fit − all-fit, both over object windows (what
    refitting adds to ignoring background at aggregation); ``total`` = object-fit over object
    windows − all-fit over all windows (the proposal's full recipe against none)."""
    if fit_all.shape != fit_object.shape or fit_all.shape[:3] != background.shape:
        raise ValueError(f"fits {tuple(fit_all.shape)} / {tuple(fit_object.shape)} and mask "
                         f"{tuple(background.shape)} must cover the same test windows")
    weights = {"all": torch.ones(background.shape), "object": (~background).double()}
    fits = {"all": fit_all, "object": fit_object}
    row, boot = _decisions({f"fit_{f}_agg_{a}": (fits[f], weights[a]) for f, a in REFIT_CASES}, labels.numpy(), counts)
    for metric in ("image_acc", "image_auc"):
        for change, b in (("refit", "fit_all_agg_object"), ("total", "fit_all_agg_all")):
            _paired_change(row, boot, f"{metric}_fit_object_agg_object", f"{metric}_{b}", f"{metric}_{change}")
    return row


def refit_study(fits_all: dict[str, torch.Tensor], data, grid: Grid, options: dict[str, dict], linear,
                seed: int, share: float, counts: np.ndarray) -> tuple[list[dict], list[str]]:
    """The proposal's training without background for each family in ``fits_all`` (method →
    its test window probabilities, trained on all windows): the linear read-outs refitted on
    the centre detector's object windows, the BagNet retrained with its mean logits over
    them (``LinearOptions(train_windows="centre")``, from the cache when it holds them), and
    scored by ``refit_rows`` on the test images. Returns the rows and the chapter's printed
    lines."""
    from simplecnn.studies.patches import patch_predictions  # looked up at call time (the package imports this module)
    refit_linear = replace(linear, train_windows="centre", train_share=share)
    mask = background_mask(centre_scores(len(data.test), grid), share)
    rows, lines = [], []
    for method, fit_all in fits_all.items():
        refit = patch_predictions(method, data, grid, options.get(method, {}), refit_linear, seed)
        row = refit_rows(fit_all, refit["test"], data.test.labels, mask, counts)
        rows.append({"method": method, "q": grid.q, "train_windows": refit.get("train_windows"),
                     "train_s": refit.get("train_s"), **row})
        lines.append(refit_line(method, grid.q, row))
    return rows, lines


def refit_line(method: str, q: int, row: dict) -> str:
    """The chapter's printed check for one refitted read-out (accuracy in points)."""
    parts = []
    for change, label in (("refit", "training on object windows"), ("total", "trained + object-only vote vs neither")):
        d, lo, hi = (round(100 * row[f"image_acc_{change}{k}"], 1) + 0.0 for k in ("", "_low", "_high"))
        parts.append(f"{label} {d:+.1f} [{lo:+.1f}, {hi:+.1f}] points "
                     f"({'resolved' if row[f'image_acc_{change}_resolved'] else 'not resolved'})")
    return f"{method}-{q}: " + "; ".join(parts)


def detector_summary(rows: Sequence[dict], boots: Sequence[dict]) -> dict:
    """Mean over a detector's rows (families × q) of the patch-AUC gap (object − background)
    and of the image accuracy and AUC changes, each with the paired CI of the mean (the
    rows' resampled values averaged within each resample), and whether the proposal's
    hypothesis holds for it: background windows are classified worse (gap > 0, resolved)
    and ignoring them raises image accuracy (change > 0, resolved)."""
    if not rows or len(rows) != len(boots):
        raise ValueError("detector_summary needs the rows and their resamples, one for one")
    out = {"rows": len(rows)}
    for key in ("auc_gap", "image_acc_change", "image_auc_change"):
        mean = np.mean([np.asarray(b[key]) for b in boots], axis=0)
        out[key] = float(np.mean([r[key] for r in rows]))
        out[f"{key}_low"], out[f"{key}_high"] = confidence_interval(mean)
        out[f"{key}_resolved"] = bool(out[f"{key}_low"] > 0 or out[f"{key}_high"] < 0)
        out[f"{key}_rows_up"] = int(sum(r[f"{key}_low"] > 0 for r in rows))
        out[f"{key}_rows_down"] = int(sum(r[f"{key}_high"] < 0 for r in rows))
    out["background_worse"] = bool(out["auc_gap_low"] > 0)
    out["ignoring_helps"] = bool(out["image_acc_change_low"] > 0)
    out["hypothesis_holds"] = out["background_worse"] and out["ignoring_helps"]
    return out


def check_line(detector: str, summary: dict) -> str:
    """The chapter's printed check for one detector (accuracy in points)."""
    d, lo, hi = (round(100 * summary[k], 1) + 0.0 for k in ("image_acc_change", "image_acc_change_low",
                                                              "image_acc_change_high"))  # + 0.0: no "-0.0"
    g, glo, ghi = (round(summary[k], 3) + 0.0 for k in ("auc_gap", "auc_gap_low", "auc_gap_high"))
    verdict = {k: "resolved" if summary[f"{k}_resolved"] else "not resolved"
               for k in ("image_acc_change", "auc_gap")}
    return (f"{detector}: ignoring background windows changes image accuracy by {d:+.1f} [{lo:+.1f}, {hi:+.1f}] "
            f"points: {verdict['image_acc_change']}; patch AUC object − background {g:+.3f} [{glo:+.3f}, {ghi:+.3f}]: "
            f"{verdict['auc_gap']}; hypothesis {'holds' if summary['hypothesis_holds'] else 'does not hold'}")


def study_rows(probs: dict[tuple[str, int], torch.Tensor], labels: torch.Tensor,
               scores: dict[tuple[str, int], torch.Tensor], share: float, counts: np.ndarray
               ) -> tuple[list[dict], dict[str, dict]]:
    """Every (detector, family, q) row of ``background_rows`` (``probs``: (family, q) →
    test windows; ``scores``: (detector, q) → window scores of the same images), and per
    detector the ``detector_summary`` over its rows."""
    rows, boots = [], {}
    for (detector, q), s in scores.items():
        for (method, q_), p in probs.items():
            if q_ != q:
                continue
            row, boot = background_rows(p, labels, s, share, counts)
            rows.append({"detector": detector, "method": method, "q": q, **row})
            boots.setdefault(detector, []).append(boot)
    if not rows:
        raise ValueError("no (family, q) windows share a q with the detector scores; score the chapter's grids")
    summaries = {d: detector_summary([r for r in rows if r["detector"] == d], b) for d, b in boots.items()}
    return rows, summaries


def detector_scores(detectors: Sequence[str], grids: dict, images: torch.Tensor,
                    gradcam_scores: Callable[[Grid], torch.Tensor] | None = None) -> dict[tuple[str, int], torch.Tensor]:
    """(detector, q) -> N × side × side window scores of ``images`` on each grid: the full
    CNN's predicted-class Grad-CAM mass (``gradcam_scores(grid)``, which the chapter takes from
    the Grad-CAM study), spectral-residual saliency mass, or closeness to the centre."""
    unknown = sorted(set(detectors) - set(DETECTORS))
    if unknown:
        raise ValueError(f"unknown background detectors {unknown}; known: {list(DETECTORS)}")
    if "gradcam" in detectors and gradcam_scores is None:
        raise ValueError("the gradcam detector needs gradcam_scores (the CNN's Grad-CAM window means per grid)")
    saliency = saliency_maps(images) if "saliency" in detectors else None
    out = {}
    for q, grid in grids.items():
        for d in detectors:
            if d == "gradcam":
                out[d, q] = gradcam_scores(grid)
            elif d == "saliency":
                out[d, q] = window_means(saliency, grid)
            else:
                out[d, q] = centre_scores(len(images), grid)
    return out


def findings_text(summaries: dict[str, dict]) -> str:
    """Per detector, the mean patch-AUC gap and image-accuracy change with their intervals
    (over test images: these trained models), for the chapter's prose."""
    return "; ".join(
        f"{d}: patch AUC object − background {s['auc_gap']:+.3f} [{s['auc_gap_low']:+.3f}, {s['auc_gap_high']:+.3f}], "
        f"image accuracy {100 * s['image_acc_change']:+.1f} [{100 * s['image_acc_change_low']:+.1f}, "
        f"{100 * s['image_acc_change_high']:+.1f}] points when background is ignored "
        f"({s['image_acc_change_rows_up']} rows up, {s['image_acc_change_rows_down']} down beyond their intervals), "
        f"image AUC {s['image_auc_change']:+.3f} [{s['image_auc_change_low']:+.3f}, {s['image_auc_change_high']:+.3f}]"
        for d, s in summaries.items())


def rows_frame(rows: list[dict]) -> pd.DataFrame:
    """The background table: patch AUC on object and background windows, their gap, and the
    image decision over all windows and over object windows only, with intervals."""
    from simplecnn.core.present import interval_column
    t = pd.DataFrame(rows)
    return pd.DataFrame({
        "patch AUC, object": interval_column(t, "patch_auc_object"),
        "patch AUC, background": interval_column(t, "patch_auc_background"),
        "object − background": interval_column(t, "auc_gap"),
        "image acc, all (%)": interval_column(t, "image_acc_all", 100, "{:.1f}"),
        "image acc, object only (%)": interval_column(t, "image_acc_object", 100, "{:.1f}"),
        "change (points)": interval_column(t, "image_acc_change", 100, "{:+.1f}"),
        "image AUC change": interval_column(t, "image_auc_change", 1, "{:+.3f}")}).set_axis(
        pd.MultiIndex.from_frame(t[["detector", "method", "q"]]), axis=0)


def refit_frame(rows: list[dict]) -> pd.DataFrame:
    """The refit table: image accuracy of each (fitted on, voted over) case and the changes."""
    from simplecnn.core.present import interval_column
    if not rows:
        return pd.DataFrame({"method": ["(not run)"]}).set_index("method")
    t = pd.DataFrame(rows).set_index("method")
    cols = [*((f"fit {f}, vote {a} (%)", f"image_acc_fit_{f}_agg_{a}", "{:.1f}") for f, a in REFIT_CASES),
            ("refit (points)", "image_acc_refit", "{:+.1f}"), ("total (points)", "image_acc_total", "{:+.1f}")]
    return pd.DataFrame({name: interval_column(t, key, 100, fmt) for name, key, fmt in cols})


def analysis(probs: dict[tuple[str, int], torch.Tensor], labels: torch.Tensor, grids: dict, images: torch.Tensor,
             detectors: Sequence[str], share: float, counts: np.ndarray,
             gradcam_scores: Callable[[Grid], torch.Tensor] | None = None, cam_stage: int = 1) -> dict:
    """The chapter's background section on the test images: every detector's window scores,
    every (detector, family, q) row, each detector's summary and printed check, the
    detectors for which the proposal's hypothesis holds, and the seconds it took."""
    import time
    started = time.perf_counter()
    scores = detector_scores(detectors, grids, images, gradcam_scores)
    rows, summaries = study_rows(probs, labels, scores, share, counts)
    return {"share": share, "detectors": list(summaries), "split": "test", "cam_stage": cam_stage,
            "done": "aggregation: background windows of the test images weighted 0 in the mean log-probability; "
                    "refit: the linear read-outs refitted on the centre detector's object windows (see refit)",
            "seconds": time.perf_counter() - started, "rows": rows, "summaries": summaries,
            "checks": [check_line(d, s) for d, s in summaries.items()],
            "hypothesis_holds": [d for d, s in summaries.items() if s["hypothesis_holds"]]}
