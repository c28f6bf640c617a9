"""One protocol for every patch family: the same test windows, two scores, bootstrap CIs.

(a) Per-window macro one-vs-rest AUC-ROC, each window labelled by its image. (b) The
image decision by each family's natural aggregation, the mean of the windows' logits: for
a BagNet that is its own output (it is trained through it), and since log p = logit −
logsumexp(logits) differs from the logits by one number per window, the softmax of the
mean log-probability is exactly the softmax of the mean logits; for the linear read-outs it
is the mean of their log-probabilities (the renormalised product of the window
probabilities). The mean of probabilities, the earlier rule, is kept beside it.

Intervals resample test images (all windows of an image together: windows of one image
are not independent), with one set of resamples shared by every family, so differences
are paired.
"""

from __future__ import annotations

import numpy as np
import torch

from simplecnn.core.metrics import (accuracy, bootstrap_accuracy, confidence_interval,
                                    macro_auc, paired_p_value, weighted_macro_auc)
from simplecnn.core.results import Headline

# the BagNet paper's ImageNet top-5 accuracies (%), 224 px: BagNet-33 from its abstract,
# BagNet-9 and -17 read from its Figure 1 (approximate), ResNet-50 as the paper compares it
BAGNET_TOP5 = {9: 70.0, 17: 81.0, 33: 87.6}
RESNET50_TOP5 = 92.9  # torchvision's ResNet-50, the paper's training recipe
PAPER_RESOLUTION = 224  # the paper's image side (px)
BAGNET_SOURCE = "ImageNet top-5, 224 px (Brendel & Bethge 2019)"
RULES = ("mean_logit", "mean_prob")
MEASURABLE_BYTES = 2 ** 20  # resident-set peaks below a MiB are page noise, not a ratio's denominator
INTERVAL = "95% bootstrap CI over test images"  # patch AUC: linearised bootstrap


def image_scores(probs: torch.Tensor, rule: str = "mean_logit") -> torch.Tensor:
    """N × … × classes window probabilities → N × classes image probabilities by ``rule``:
    ``mean_logit`` (softmax of the mean log-probability; probabilities that underflowed to
    zero are clamped to the smallest float32) or ``mean_prob``."""
    if rule not in RULES:
        raise ValueError(f"unknown aggregation {rule!r}; known: {RULES}")
    flat = probs.reshape(len(probs), -1, probs.shape[-1]).double()
    if rule == "mean_prob":
        return flat.mean(1)
    return torch.softmax(flat.clamp_min(torch.finfo(torch.float32).tiny).log().mean(1), -1)


def clustered_macro_auc(scores: np.ndarray, labels: np.ndarray, owner: np.ndarray, counts: np.ndarray,
                        max_values: int = 2 ** 22) -> np.ndarray:
    """Macro one-vs-rest AUC of the windows (``scores`` M × classes, ``labels`` M) for each
    resample of images (``counts`` B × N multiplicities; ``owner``: each window's image),
    every window weighted by its image's multiplicity. One sort per class, resamples in
    chunks of at most ``max_values`` weights (bounded memory)."""
    chunk = max(1, max_values // max(1, len(labels)))
    out = np.empty((scores.shape[1], len(counts)))
    for c in range(scores.shape[1]):
        order = np.argsort(scores[:, c], kind="stable")
        s, own, pos = scores[order, c], owner[order], labels[order] == c
        starts = np.r_[0, np.flatnonzero(np.diff(s)) + 1]
        for b in range(0, len(counts), chunk):
            w = counts[b:b + chunk][:, own]
            wp = np.add.reduceat(w * pos, starts, axis=1)
            wn = np.add.reduceat(w - w * pos, starts, axis=1)
            below = np.cumsum(wn, 1) - wn
            denom = wp.sum(1) * wn.sum(1)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[c, b:b + chunk] = np.where(denom > 0, (wp * (below + wn / 2)).sum(1) / denom, np.nan)
    return out.mean(0)


def auc_influence(scores: np.ndarray, labels: np.ndarray, owner: np.ndarray, n_images: int
                  ) -> tuple[float, np.ndarray]:
    """Macro AUC of the windows and its derivative with respect to each image's weight
    (all its windows together), from ranks: O(M log M) per class.

    With image weights w, a class's AUC is N(w) / (W+ W−), N the weighted count of
    (positive, negative) window pairs in order (ties one half); at w = 1 its derivative for
    image i is (R_i + Q_i) / (n+ n−) − AUC (p_i / n+ + m_i / n−), R_i the negatives below
    i's positive windows, Q_i the positives above its negative ones, p_i and m_i its
    positive and negative windows."""
    from scipy.stats import rankdata
    aucs, influence = [], np.zeros(n_images)
    for c in range(scores.shape[1]):
        pos = labels == c
        n_pos, n_neg = int(pos.sum()), int((~pos).sum())
        if not n_pos or not n_neg:
            raise ValueError(f"patch AUC needs windows of and not of class {c}")
        r_all = rankdata(scores[:, c])
        below = np.zeros(len(labels))  # positives: negatives below; negatives: positives above
        below[pos] = r_all[pos] - rankdata(scores[pos, c])
        below[~pos] = n_pos - (r_all[~pos] - rankdata(scores[~pos, c]))
        auc = below[pos].sum() / (n_pos * n_neg)
        pairs = np.bincount(owner, below, n_images)
        share = np.bincount(owner, pos / n_pos + ~pos / n_neg, n_images)
        aucs.append(auc)
        influence += pairs / (n_pos * n_neg) - auc * share
    return float(np.mean(aucs)), influence / scores.shape[1]


def linearised_auc_bootstrap(scores: np.ndarray, labels: np.ndarray, owner: np.ndarray, counts: np.ndarray
                             ) -> tuple[float, np.ndarray]:
    """Macro window AUC and its value in each resample of images (``counts``), to first
    order: AUC + Σ_i (count_i − 1) · dAUC/dw_i. Exact resampling (``clustered_macro_auc``)
    costs resamples × windows per class; this costs one sort per class and agrees with it
    to within the resampling noise on thousands of images (a test checks)."""
    auc, influence = auc_influence(scores, labels, owner, counts.shape[1])
    return auc, auc + (counts - 1) @ influence


def _ci(samples: np.ndarray) -> tuple[float, float]:
    return confidence_interval(samples)


def score_windows(probs: torch.Tensor, labels: torch.Tensor, counts: np.ndarray) -> tuple[dict, dict]:
    """Both protocols for one family's N × side × side × classes test probabilities: the row
    (point estimates, CIs) and the resampled statistics (for paired differences)."""
    n, c = len(probs), probs.shape[-1]
    flat = probs.reshape(n, -1, c)
    p = flat.shape[1]
    window_scores = flat.reshape(-1, c).double().numpy()
    window_labels = labels.repeat_interleave(p).numpy()
    auc, patch_boot = linearised_auc_bootstrap(window_scores, window_labels, np.repeat(np.arange(n), p), counts)
    row = {"patch_auc": auc, "patch_acc": accuracy(window_scores, window_labels)}
    boot = {"patch_auc": patch_boot}
    for rule in RULES:
        image = image_scores(probs, rule).numpy()
        suffix = "" if rule == "mean_logit" else "_mean_prob"
        row[f"image_acc{suffix}"], row[f"image_auc{suffix}"] = accuracy(image, labels), macro_auc(image, labels)
        if rule == "mean_logit":
            boot["image_acc"] = bootstrap_accuracy(image.argmax(1) == labels.numpy(), counts)
            boot["image_auc"] = weighted_macro_auc(image, labels.numpy(), counts)
    for key, samples in boot.items():
        row[f"{key}_low"], row[f"{key}_high"] = _ci(samples)
    return row, boot


def score_images(scores: torch.Tensor, labels: torch.Tensor, counts: np.ndarray) -> tuple[dict, dict]:
    """Image-level only (bag of words, the full-image CNN): accuracy and AUC with CIs."""
    s = scores.double().numpy()
    boot = {"image_acc": bootstrap_accuracy(s.argmax(1) == labels.numpy(), counts),
            "image_auc": weighted_macro_auc(s, labels.numpy(), counts)}
    row = {"image_acc": accuracy(s, labels), "image_auc": macro_auc(s, labels)}
    for key, samples in boot.items():
        row[f"{key}_low"], row[f"{key}_high"] = _ci(samples)
    return row, boot


def runtime(seconds: float, n_images: int, windows_per_image: int) -> dict[str, float]:
    """Inference time per window (µs) and per image (ms) of a family on the test set."""
    return {"us_per_window": 1e6 * seconds / (n_images * windows_per_image), "ms_per_image": 1e3 * seconds / n_images}


def difference(a: dict, b: dict, key: str, full: tuple[float, float]) -> dict[str, float]:
    """Paired bootstrap difference a − b of ``key`` (``full``: the two point estimates):
    the difference, its CI, the two-sided p-value, and whether the CI excludes zero."""
    d = a[key] - b[key]
    low, high = confidence_interval(d)
    return {"diff": full[0] - full[1], "low": low, "high": high, "p": paired_p_value(a[key], b[key]),
            "resolved": bool(low > 0 or high < 0)}


# --- headline ---------------------------------------------------------------------------

def _pct(row: dict, key: str) -> tuple[float | None, float | None, float | None]:
    value, low, high = (row.get(k) for k in (key, f"{key}_low", f"{key}_high"))
    scale = lambda v: None if v is None else 100 * v  # noqa: E731
    return scale(value), scale(low), scale(high)


def headline(results: dict) -> list[Headline]:
    """Each BagNet-q's image accuracy beside the paper's top-5, every family's patch AUC and
    image accuracy at the largest q, the full-image CNN's accuracy, and the training-memory
    saving of tiles (where measured)."""
    s = results.get("setting", {})
    where = (f"{s.get('dataset', '?')} test ({s.get('n_test', '?')} images), {s.get('resolution', '?')} px, "
             f"windows every {s.get('stride', '?')} px")
    methods = results["methods"]
    rows = []
    for q, r in sorted(methods.get("bagnet", {}).items(), key=lambda kv: int(kv[0])):
        v, lo, hi = _pct(r, "image_acc")
        rows.append(Headline(f"BagNet-{q} image accuracy (%)", v, lo, hi, INTERVAL if lo is not None else "",
                             f"top-1, mean logits, {where}", BAGNET_TOP5.get(int(q)), BAGNET_SOURCE))
    families = [m for m in methods if m not in ("full_cnn", "sift_bovw")]
    qs = sorted({int(q) for m in families for q in methods[m]})
    if qs:
        q = str(qs[-1])
        for m in families:
            r = methods[m].get(q)
            if r is None or r.get("patch_auc") is None:
                continue
            rows.append(Headline(f"{m} patch AUC (q = {q})", r["patch_auc"], r.get("patch_auc_low"),
                                 r.get("patch_auc_high"), INTERVAL if r.get("patch_auc_low") is not None else "",
                                 f"macro one-vs-rest AUC per window, {where}"))
            if m != "bagnet":
                v, lo, hi = _pct(r, "image_acc")
                rows.append(Headline(f"{m} image accuracy (q = {q}, %)", v, lo, hi, INTERVAL if lo is not None else "",
                                     f"top-1, mean log-probabilities, {where}"))
    cnn = methods.get("full_cnn", {})
    ceiling = next(iter(cnn.values()), {"image_acc": results.get("ceiling_acc")})
    v, lo, hi = _pct(ceiling, "image_acc")
    rows.append(Headline("full-image CNN accuracy (%)", v, lo, hi, INTERVAL if lo is not None else "",
                         f"top-1, {where.split(', windows')[0]}", RESNET50_TOP5, "ResNet-50, " + BAGNET_SOURCE))
    mem = results.get("train_memory")
    if mem:
        top = max(mem["rows"], key=lambda r: r["image_px"])
        measurable = top["tiled_peak_bytes"] >= MEASURABLE_BYTES
        rows.append(Headline(f"training peak memory, whole image ÷ tiles ({top['image_px']} px)",
                             top["whole_peak_bytes"] / top["tiled_peak_bytes"] if measurable
                             else "tiled peak below the measurement's resolution",
                             setting=f"one step of BagNet-{mem['q']} on one image, tiles of {mem['tile_windows']} "
                                     f"windows, fresh process, {mem.get('device', 'CPU')}",
                             source_setting="the proposal's motivation; no source figure"))
    return rows
