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
import pandas as pd
import torch

from simplecnn.core import findings
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
INTERVAL = "95% bootstrap CI over test images (one trained model)"  # patch AUC: linearised bootstrap


def log_probs(probs: torch.Tensor) -> torch.Tensor:
    """Window log-probabilities in float64, probabilities that underflowed to zero clamped to
    the smallest normal float32: the one log every aggregation of this book takes (the patch
    chapter's image decision, fusion's mean-logit and geometric rules, background weighting),
    so the same model gives the same number in every chapter."""
    return probs.double().clamp_min(torch.finfo(torch.float32).tiny).log()


def image_scores(probs: torch.Tensor, rule: str = "mean_logit") -> torch.Tensor:
    """N × … × classes window probabilities → N × classes image probabilities by ``rule``:
    ``mean_logit`` (softmax of the mean log-probability, ``log_probs``) or ``mean_prob``."""
    if rule not in RULES:
        raise ValueError(f"unknown aggregation {rule!r}; known: {RULES}")
    flat = probs.reshape(len(probs), -1, probs.shape[-1])
    if rule == "mean_prob":
        return flat.double().mean(1)
    return torch.softmax(log_probs(flat).mean(1), -1)


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


# --- the chapter's method claims: per trained model, and across training seeds -------------

def claim_pairs(methods: list[str], families: list[str], qs: list[int], table: pd.DataFrame) -> list[tuple]:
    """The comparisons the chapter claims: each BagNet against the next smaller one, and at
    every q each BagNet against the probe on its own features and against the best other
    family by patch AUC (of ``table``, the first seed's scores)."""
    if "bagnet" not in methods:
        return []
    pairs = [(("bagnet", hi), ("bagnet", lo)) for lo, hi in zip(qs, qs[1:])]
    for q in qs:
        others = [m for m in families if m != "bagnet"]
        if others:
            best = max(others, key=lambda m: table[(table.method == m) & (table.q == q)]["patch_auc"].iloc[0])
            pairs += [(("bagnet", q), (m, q)) for m in dict.fromkeys(["bagnet_probe", best]) if m in families]
    return pairs


METRIC_UNITS = {"image_acc": (100, " points", 1), "patch_auc": (1, "", 3)}


def check_rows(pairs: list[tuple], boots: dict, table: pd.DataFrame) -> list[dict]:
    """Each claim on each metric for the trained models of one seed: the paired bootstrap
    difference over test images, worded as a claim about these trained models."""
    rows = []
    for a, b in pairs:
        ra = table[(table.method == a[0]) & (table.q == a[1])].iloc[0]
        rb = table[(table.method == b[0]) & (table.q == b[1])].iloc[0]
        for key, (scale, unit, digits) in METRIC_UNITS.items():
            d = difference(boots[a], boots[b], key, (ra[key], rb[key]))
            f = findings.compare(f"{a[0]}-{a[1]}", f"{b[0]}-{b[1]}", d["diff"] * scale, d["low"] * scale,
                                 d["high"] * scale, findings.IMAGES, key.replace("_", " "), unit, digits, d["p"])
            rows.append({"a": f"{a[0]}-{a[1]}", "b": f"{b[0]}-{b[1]}", "metric": key, "diff": f.diff, "low": f.low,
                         "high": f.high, "p": d["p"], "resolved": f.resolved, "status": f.status, "text": f.words,
                         "covers": findings.covers_text(findings.IMAGES)})
    return rows


def seed_differences(pairs: list[tuple], preds: dict, labels) -> dict[tuple, float]:
    """Point differences of every claim on every metric for one seed's predictions
    (``preds``: (method, q) -> test window probabilities)."""
    out = {}
    for a, b in pairs:
        sa = {"image_acc": accuracy(image_scores(preds[a]).numpy(), labels), "patch_auc": _patch_auc(preds[a], labels)}
        sb = {"image_acc": accuracy(image_scores(preds[b]).numpy(), labels), "patch_auc": _patch_auc(preds[b], labels)}
        for key, (scale, _, _) in METRIC_UNITS.items():
            out[(f"{a[0]}-{a[1]}", f"{b[0]}-{b[1]}", key)] = scale * (sa[key] - sb[key])
    return out


def _patch_auc(probs: torch.Tensor, labels: torch.Tensor) -> float:
    n, c = len(probs), probs.shape[-1]
    flat = probs.reshape(n, -1, c)
    return macro_auc(flat.reshape(-1, c).double().numpy(), labels.repeat_interleave(flat.shape[1]).numpy())


def per_seed_differences(splits, grids: dict, pairs: list[tuple], options: dict, linear, seeds: list[int],
                         first: dict) -> list[dict[tuple, float]]:
    """``seed_differences`` for every seed: the first seed's from its predictions
    (``first``: (method, q) -> cached entry), every other seed's from families trained with it."""
    from simplecnn.studies.patches.methods import patch_predictions
    keys = sorted({k for pair in pairs for k in pair})
    out = [seed_differences(pairs, {k: first[k]["test"] for k in keys}, splits.test.labels)]
    for seed in seeds[1:]:
        preds = {(m, q): patch_predictions(m, splits, grids[q], options.get(m, options["bagnet"]), linear, seed)["test"]
                 for m, q in keys}
        out.append(seed_differences(pairs, preds, splits.test.labels))
    return out


def across_seed_rows(per_seed: list[dict[tuple, float]], seeds: list[int], level: float = 0.95) -> list[dict]:
    """Each claim across training seeds (``per_seed``: one ``seed_differences`` per seed):
    the mean difference with its Student-t interval over seeds, worded as a claim about the
    methods; with one seed there is none to make (an empty list)."""
    if len(per_seed) < 2:
        return []
    rows = []
    for (a, b, key) in per_seed[0]:
        values = [d[(a, b, key)] for d in per_seed]
        mean, low, high, p = findings.across_seeds(values, level)
        _, unit, digits = METRIC_UNITS[key]
        f = findings.compare(a, b, mean, low, high, findings.SEEDS, key.replace("_", " "), unit, digits, p)
        rows.append({"a": a, "b": b, "metric": key, "diff": mean, "low": low, "high": high, "p": p,
                     "per_seed": values, "seeds": list(seeds), "resolved": f.resolved, "status": f.status,
                     "text": f.words, "covers": findings.covers_text(findings.SEEDS, len(seeds), level)})
    return rows


# --- scoring every family, and the results file -------------------------------------------

def score_families(splits, grids: dict, families: list[str], options: dict, linear, seed: int,
                   counts: np.ndarray) -> tuple[pd.DataFrame, dict, dict]:
    """Every family at every q on the test windows: the row of both protocols with its
    runtime, training time, parameters and MACs (and the bag-of-words classifier beside
    SIFT); returns the table, the predictions ((method, q) -> cached entry) and the resampled
    statistics ((method, q) -> dict, for paired differences)."""
    from simplecnn.studies.patches.methods import patch_predictions
    rows, preds, boots = [], {}, {}
    n = len(splits.test)
    for q, grid in grids.items():
        for method in families:
            out = patch_predictions(method, splits, grid, options.get(method, options["bagnet"]), linear, seed)
            preds[method, q] = out
            row, boots[method, q] = score_windows(out["test"], splits.test.labels, counts)
            rows.append({"method": method, "q": q, **row, **runtime(out["test_s"], n, grid.count),
                         "train_s": out["train_s"], "patches_per_s": n * grid.count / out["test_s"],
                         "params": out["params"], "macs_per_patch": out["macs_per_patch"]})
            if method == "sift":
                row, boots["sift_bovw", q] = score_images(out["bovw_test"], splits.test.labels, counts)
                rows.append({"method": "sift_bovw", "q": q, **row, "train_s": out["train_s"] + out["bovw_train_s"]})
    return pd.DataFrame(rows), preds, boots


def shown_table(table: pd.DataFrame) -> pd.DataFrame:
    """The chapter's main table: both protocols with their intervals (over test images, one
    trained model per family), costs, one row per family and q."""
    from simplecnn.core.present import interval_column, with_dashes
    shown = pd.DataFrame({
        "patch AUC": interval_column(table, "patch_auc"),
        "image acc (%)": interval_column(table, "image_acc", 100, "{:.1f}"),
        "image AUC": interval_column(table, "image_auc"),
        "image acc, mean prob (%)": (100 * table["image_acc_mean_prob"]).round(1),
        "µs / window": table["us_per_window"].round(2), "ms / image": table["ms_per_image"].round(2),
        "train s": table["train_s"].round(0), "params": table["params"], "MACs / window": table["macs_per_patch"]})
    return with_dashes(shown.set_axis(pd.MultiIndex.from_frame(table[["method", "q"]]), axis=0))


def floor_checks(table: pd.DataFrame, ceiling_floor: float, bagnet_gap: float) -> dict[str, dict]:
    """The regime's floors: the full-image CNN at or above ``ceiling_floor`` % (a ceiling worth
    approaching), and the largest BagNet within ``bagnet_gap`` points of it (BagNets trained
    to strength, not left weak)."""
    cnn = table[table.method == "full_cnn"]["image_acc"].iloc[0] * 100
    out = {"ceiling": {"value": float(cnn), "goal": ceiling_floor, "met": bool(cnn >= ceiling_floor),
                       "text": f"full-image CNN {cnn:.1f} % (floor {ceiling_floor:g} %)"}}
    bag = table[table.method == "bagnet"]
    if len(bag):
        top = bag.loc[bag.q.idxmax()]
        gap = float(cnn - 100 * top["image_acc"])
        out["bagnet_gap"] = {"value": gap, "goal": bagnet_gap, "met": bool(gap <= bagnet_gap), "q": int(top["q"]),
                             "text": f"BagNet-{int(top['q'])} {100 * top['image_acc']:.1f} %, {gap:.1f} points below "
                                     f"the CNN (at most {bagnet_gap:g})"}
    for c in out.values():
        c["status"] = "met" if c["met"] else "NOT met"
        c["text"] += f": {c['status']}"
    return out


RESULT_KEYS = ["patch_auc", "patch_auc_low", "patch_auc_high", "patch_acc", "image_acc", "image_acc_low",
               "image_acc_high", "image_auc", "image_auc_low", "image_auc_high", "image_acc_mean_prob",
               "image_auc_mean_prob", "us_per_window", "ms_per_image", "train_s", "patches_per_s", "params",
               "macs_per_patch"]


def _clean(v):
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)


def results_dict(table: pd.DataFrame, checks: list[dict], seed_checks: list[dict], floors: dict, setting: dict,
                 **sections) -> dict:
    """The chapter's results json: every family's row, the claims (per trained model and
    across seeds), the floors, the setting, and the chapter's other sections (memory,
    training memory, background)."""
    cnn = table[table.method == "full_cnn"].iloc[0]
    out = {"methods": {}, "ceiling_acc": float(cnn["image_acc"]), "ceiling_auc": float(cnn["image_auc"]),
           "checks": checks, "checks_across_seeds": seed_checks, "floors": floors, "setting": setting, **sections}
    for _, row in table.iterrows():
        out["methods"].setdefault(row["method"], {})[str(row["q"])] = {k: _clean(row.get(k)) for k in RESULT_KEYS}
    return out


# --- headline ---------------------------------------------------------------------------

def _pct(row: dict, key: str) -> tuple[float | None, float | None, float | None]:
    value, low, high = (row.get(k) for k in (key, f"{key}_low", f"{key}_high"))
    scale = lambda v: None if v is None else 100 * v  # noqa: E731
    return scale(value), scale(low), scale(high)


def headline(results: dict) -> list[Headline]:
    """Each BagNet-q's image accuracy (the paper's ImageNet top-5 beside it, not comparable),
    every family's patch AUC and image accuracy at the largest q, the full-image CNN's
    accuracy, the floors, the chapter's claims (across seeds where it trained several, else
    about its trained models), and the training-memory saving of tiles (where measured)."""
    s = results.get("setting", {})
    where = (f"{s.get('dataset', '?')} test ({s.get('n_test', '?')} images), {s.get('resolution', '?')} px, "
             f"windows every {s.get('stride', '?')} px")
    methods = results["methods"]
    rows = []
    ci = lambda lo: INTERVAL if lo is not None else ""  # noqa: E731
    for q, r in sorted(methods.get("bagnet", {}).items(), key=lambda kv: int(kv[0])):
        v, lo, hi = _pct(r, "image_acc")
        rows.append(Headline(f"BagNet-{q} image accuracy (%)", v, lo, hi, ci(lo), f"top-1, mean logits, {where}",
                             BAGNET_TOP5.get(int(q)), BAGNET_SOURCE, rule="bootstrap", margin=2.0, better="higher"))
    families = [m for m in methods if m not in ("full_cnn", "sift_bovw")]
    qs = sorted({int(q) for m in families for q in methods[m]})
    if qs:
        q = str(qs[-1])
        for m in families:
            r = methods[m].get(q)
            if r is None or r.get("patch_auc") is None:
                continue
            rows.append(Headline(f"{m} patch AUC (q = {q})", r["patch_auc"], r.get("patch_auc_low"),
                                 r.get("patch_auc_high"), ci(r.get("patch_auc_low")),
                                 f"macro one-vs-rest AUC per window, {where}", rule="bootstrap", margin=0.01,
                                 better="higher"))
            if m != "bagnet":
                v, lo, hi = _pct(r, "image_acc")
                rows.append(Headline(f"{m} image accuracy (q = {q}, %)", v, lo, hi, ci(lo),
                                     f"top-1, mean log-probabilities, {where}", rule="bootstrap", margin=2.0,
                                     better="higher"))
    cnn = methods.get("full_cnn", {})
    ceiling = next(iter(cnn.values()), {"image_acc": results.get("ceiling_acc")})
    v, lo, hi = _pct(ceiling, "image_acc")
    rows.append(Headline("full-image CNN accuracy (%)", v, lo, hi, ci(lo), f"top-1, {where.split(', windows')[0]}",
                         RESNET50_TOP5, "ResNet-50, " + BAGNET_SOURCE, rule="bootstrap", margin=2.0, better="higher"))
    for key, f in results.get("floors", {}).items():
        what = {"ceiling": "full-image CNN at or above its floor",
                "bagnet_gap": f"BagNet-{f.get('q', '')} within its gap of the full-image CNN"}[key]
        rows.append(Headline(what, f["status"], interval=f["text"], setting=where, goal=f["goal"], rule="check",
                             status=f["status"]))
    across = results.get("checks_across_seeds") or []
    for c in across or results.get("checks", []):
        if "status" not in c:
            continue
        rows.append(Headline(f"{c['a']} − {c['b']}, {c['metric'].replace('_', ' ')}", c["diff"], c["low"], c["high"],
                             c.get("covers", ""), where, rule="difference", status=c["status"]))
    mem = results.get("train_memory")
    if mem:
        top = max(mem["rows"], key=lambda r: r["image_px"])
        measurable = top["tiled_peak_bytes"] >= MEASURABLE_BYTES
        rows.append(Headline(f"training peak memory, whole image ÷ tiles ({top['image_px']} px)",
                             top["whole_peak_bytes"] / top["tiled_peak_bytes"] if measurable
                             else "tiled peak below the measurement's resolution", interval="one measurement",
                             setting=f"one step of BagNet-{mem['q']} on one image, tiles of {mem['tile_windows']} "
                                     f"windows, fresh process, {mem.get('device', 'CPU')}",
                             source_setting="the proposal's motivation; no source figure", rule="report"))
    return rows
