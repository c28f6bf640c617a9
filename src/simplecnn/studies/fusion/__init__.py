"""Decision fusion: from per-window class probabilities to one score per class and image.

``evaluate`` is the chapter's method: every choice (a classifier's rule, the centre rule's σ)
is made on validation, test is scored once for every rule, and each rule is compared with the
mean-logit rule by a paired bootstrap with Holm's correction over the rules of a classifier.

Every rule takes probabilities N × side × side × classes and a ``Context`` (the grid, the
windows' Grad-CAM weights, a rule's parameters) and returns image scores N × classes (rows
summing to 1, except the unnormalised geometric mean), so accuracy and one-vs-rest AUC
apply to all rules alike. Note that the
normalised geometric mean equals the softmax of the mean patch logit, BagNet's own rule:
log p = logit − logsumexp(logit), and the subtracted term is the same for every class.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from simplecnn.core import params as P
from simplecnn.core import findings, metrics
from simplecnn.core.metrics import normalised_entropy
from simplecnn.core.plan import Loop
from simplecnn.core.results import Headline
from simplecnn.studies.patches import Grid, PatchStudy
from simplecnn.studies.patches.compare import image_scores, log_probs

EPS = 1e-12


RULE_NAMES = ("majority", "mean_prob", "mean_logit", "geometric_mean", "centre", "confidence", "certainty", "top_k",
              "cam_weighted", "cam_masked", "learned")
PARAMETERS = {"device": P.device(), "seed": P.whole(0), "rules": P.some_of(RULE_NAMES, 2),
              "reference": P.one_of(RULE_NAMES), "sigma": P.number(0, low_open=True),
              "top_k": P.whole(1), "cam_share": P.fraction(), "learned_c": P.number(0, low_open=True),
              "bootstrap": P.whole(10), "level": P.fraction(), "alpha": P.fraction(), "size_bins": P.whole(1)}
"""Every parameter's allowed values, checked before the chapter computes anything (``core.params``)."""

@dataclass
class Context:
    grid: Grid
    cam: torch.Tensor | None = None  # N × side × side window means of the predicted-class Grad-CAM
    sigma: float = 0.5  # centre weighting: Gaussian σ in units of the image side
    top_k: int = 5  # windows kept by the top-k rule
    cam_share: float = 0.3  # share of windows kept by the CAM mask
    learned: Callable[[torch.Tensor], torch.Tensor] | None = field(default=None, repr=False)


def _normalise(scores: torch.Tensor) -> torch.Tensor:
    return scores / scores.sum(1, keepdim=True).clamp_min(EPS)


def _weighted(probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean over windows; weights N × side × side (or side × side, shared)."""
    w = weights.expand(probs.shape[:3]).flatten(1)
    return _normalise((probs.flatten(1, 2) * w[..., None]).sum(1))


def majority(probs: torch.Tensor, ctx: Context) -> torch.Tensor:
    """Share of windows voting for each class (ties split by the mean probability)."""
    votes = torch.nn.functional.one_hot(probs.argmax(-1), probs.shape[-1]).float().flatten(1, 2).mean(1)
    return _normalise(votes + 1e-3 * probs.flatten(1, 2).mean(1))


def mean_prob(probs: torch.Tensor, ctx: Context) -> torch.Tensor:
    """The mean window probability (the patch chapter's ``image_scores(…, "mean_prob")``)."""
    return image_scores(probs, "mean_prob")


def mean_logit(probs: torch.Tensor, ctx: Context) -> torch.Tensor:
    """softmax of the mean log-probability: BagNet's mean logit, the normalised geometric mean;
    the patch chapter's image decision (``image_scores``), one implementation for both."""
    return image_scores(probs, "mean_logit")


def geometric_mean(probs: torch.Tensor, ctx: Context) -> torch.Tensor:
    """The geometric mean left unnormalised per image: same ranking within an image as
    ``mean_logit``, different across images (so a different AUC)."""
    return log_probs(probs.flatten(1, 2)).mean(1).exp()


def centre_weights(grid: Grid, sigma: float) -> torch.Tensor:
    """Gaussian weight of each window by the distance of its centre from the image centre,
    distances and σ in units of the image side."""
    if sigma <= 0:
        raise ValueError(f"centre weighting needs σ > 0, got {sigma}")
    d = (grid.centres() - (grid.size - 1) / 2).norm(dim=-1) / grid.size
    return torch.exp(-d ** 2 / (2 * sigma ** 2))


def centre(probs: torch.Tensor, ctx: Context) -> torch.Tensor:
    return _weighted(probs, centre_weights(ctx.grid, ctx.sigma))


def confidence(probs: torch.Tensor, ctx: Context) -> torch.Tensor:
    """Windows weighted by their top probability."""
    return _weighted(probs, probs.max(-1).values)


def certainty(probs: torch.Tensor, ctx: Context) -> torch.Tensor:
    """Windows weighted by one minus their normalised entropy (negative entropy, shifted ≥ 0)."""
    return _weighted(probs, 1 - normalised_entropy(probs))


def top_k(probs: torch.Tensor, ctx: Context) -> torch.Tensor:
    """Mean over the k windows with the highest top probability."""
    flat = probs.flatten(1, 2)
    k = min(ctx.top_k, flat.shape[1])
    keep = flat.max(-1).values.topk(k, 1).indices
    return flat.gather(1, keep[..., None].expand(-1, -1, flat.shape[-1])).mean(1)


def _cam(ctx: Context) -> torch.Tensor:
    if ctx.cam is None:
        raise ValueError("CAM rules need Grad-CAM window weights: run the gradcam chapter first (its cache)")
    return ctx.cam


def cam_weighted(probs: torch.Tensor, ctx: Context) -> torch.Tensor:
    return _weighted(probs, _cam(ctx) + EPS)


def cam_masked(probs: torch.Tensor, ctx: Context) -> torch.Tensor:
    """Mean over the ``cam_share`` of windows with the highest Grad-CAM."""
    cam = _cam(ctx).flatten(1)
    k = max(1, int(round(ctx.cam_share * cam.shape[1])))
    mask = torch.zeros_like(cam).scatter_(1, cam.topk(k, 1).indices, 1.0)
    return _weighted(probs, mask.view_as(_cam(ctx)))


def pooled_features(probs: torch.Tensor, regions: int = 2) -> np.ndarray:
    """Window probabilities averaged over the whole image and over a regions × regions layout."""
    x = probs.permute(0, 3, 1, 2)
    pooled = [x.mean((2, 3)), torch.nn.functional.adaptive_avg_pool2d(x, regions).flatten(1)]
    return torch.cat(pooled, 1).numpy()


def fit_learned(probs: torch.Tensor, labels: torch.Tensor, c: float = 1.0, seed: int = 0):
    """A logistic regression over spatially pooled window probabilities (fit on validation only)."""
    clf = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(pooled_features(probs), labels.numpy())
    return lambda p: torch.from_numpy(clf.predict_proba(pooled_features(p))).float()


def learned(probs: torch.Tensor, ctx: Context) -> torch.Tensor:
    if ctx.learned is None:
        raise ValueError("the learned rule must be fitted on validation first (fusion.fit_learned)")
    return ctx.learned(probs)


RULES: dict[str, Callable[[torch.Tensor, Context], torch.Tensor]] = {
    "majority": majority, "mean_prob": mean_prob, "mean_logit": mean_logit, "geometric_mean": geometric_mean,
    "centre": centre, "confidence": confidence, "certainty": certainty, "top_k": top_k,
    "cam_weighted": cam_weighted, "cam_masked": cam_masked, "learned": learned,
}


SUPERVISED = ("learned",)
"""Rules fitted on labelled images (validation): they add supervision rather than fuse votes,
so they are shown apart and never counted among the fusion rules."""


def fuse(rule: str, probs: torch.Tensor, ctx: Context) -> torch.Tensor:
    if rule not in RULES:
        raise ValueError(f"unknown fusion rule {rule!r}; known: {sorted(RULES)}")
    return RULES[rule](probs.float(), ctx).double()  # one dtype for every rule (the log-based ones are float64)


# --- inputs and evaluation: choose on validation, score on test once ---------------------

@dataclass
class Inputs:
    """What ``evaluate`` reads, per classifier ("method@q") and split: window probabilities and
    contexts; the labels per split; per test image its CAM-estimated object size."""

    classifiers: dict[str, dict[str, torch.Tensor]]
    contexts: dict[str, dict[str, Context]]
    labels: dict[str, torch.Tensor]
    object_size: np.ndarray


def load_inputs(study: PatchStudy, top_k: int = 5, cam_share: float = 0.3) -> Inputs:
    """Every patch classifier of the patch study with the full-image CNN's Grad-CAM window
    weights of its own predicted class (no label used), all from the cache."""
    from simplecnn.studies import gradcam  # the CAM weights only; keeps the rules free of captum
    splits, cnn = study.splits, study.cnn()
    labels = {s: getattr(splits, s).labels for s in ("val", "test")}
    classifiers, contexts, object_size = {}, {}, None
    for q in study.qs:
        grid = study.grid(q)
        cam = {s: gradcam.patch_weights(cnn, getattr(splits, s).images, s, grid) for s in ("val", "test")}
        object_size = cam["test"]["object_size"].numpy()
        for m in study.methods:
            out = study.predictions(m, q)
            classifiers[f"{m}@{q}"] = {s: out[s] for s in ("val", "test")}
            contexts[f"{m}@{q}"] = {s: Context(grid, cam[s]["weights"], top_k=top_k, cam_share=cam_share)
                                    for s in ("val", "test")}
    return Inputs(classifiers, contexts, labels, object_size)


def learned_validation_scores(probs: torch.Tensor, labels: torch.Tensor, c: float = 1.0, seed: int = 0,
                              folds: int = 5) -> torch.Tensor:
    """Out-of-fold scores of the learned rule on validation: its in-sample scores would favour
    it when rules are compared on validation, since it was fitted there."""
    y = labels.numpy()
    smallest = int(np.bincount(y).min()) if len(y) else 0
    folds = min(folds, smallest)
    if folds < 2:
        raise ValueError(f"the learned rule's validation scores need at least two validation images per class "
                         f"(smallest class has {smallest}): enlarge the patch study's val_size, or drop 'learned'")
    clf = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    out = cross_val_predict(clf, pooled_features(probs), y, cv=cv, method="predict_proba")
    return torch.from_numpy(out).float()


def _boot(scores: np.ndarray, y: np.ndarray, counts: np.ndarray) -> np.ndarray:
    return metrics.weighted_macro_auc(scores, y, counts)


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    return metrics.confidence_interval(samples, level)


@dataclass
class FusionResult:
    """Every rule of every classifier on validation and test, and the choices made on validation.

    ``table``: one row per classifier × rule (validation AUC; test AUC, its CI and accuracy; the
    paired test difference to the reference with its CI, raw and Holm-adjusted p). ``chosen``:
    per classifier the rule and σ chosen on validation, with its test row. ``sweep``: the σ
    sweep of the centre rule (validation chooses, test only drawn). ``scores``: test scores of
    every (classifier, rule), for figures. ``counts``: the shared bootstrap resamples."""

    table: pd.DataFrame
    chosen: pd.DataFrame
    sweep: pd.DataFrame
    scores: dict[tuple[str, str], np.ndarray]
    counts: np.ndarray
    labels: np.ndarray
    reference: str
    level: float
    alpha: float

    @property
    def rules(self) -> list[str]:
        return list(dict.fromkeys(self.table["rule"]))

    def verdicts(self, supervised: bool = False) -> pd.DataFrame:
        """Per rule other than the reference: on how many classifiers it beats (or loses to) the
        reference on test after Holm's correction, of how many; the fusion rules, or with
        ``supervised`` the rules fitted on labelled images."""
        t = self.table[(self.table.rule != self.reference) & (self.table.rule.isin(SUPERVISED) == supervised)]
        resolved = t.p_holm < self.alpha
        return pd.DataFrame({"better": (resolved & (t["delta"] > 0)).groupby(t.rule).sum(),
                             "worse": (resolved & (t["delta"] < 0)).groupby(t.rule).sum(),
                             "of": t.groupby("rule").size()}).loc[[r for r in self.rules if r != self.reference
                                                                   and (r in SUPERVISED) == supervised]]

    def to_json(self, **setting) -> dict:
        """The results file's content: every row, the validation choices, the σ sweep."""
        def num(x):
            return None if x is None or (isinstance(x, float) and np.isnan(x)) else float(x)

        rows = {}
        for r in self.table.itertuples():
            rows.setdefault(r.classifier, {})[r.rule] = {
                "val_auc": num(r.val_auc), "image_auc": num(r.image_auc),
                "image_auc_ci": [num(r.ci_low), num(r.ci_high)], "image_acc": num(r.image_acc),
                "diff_vs_reference": {"value": num(r.delta), "low": num(r.delta_low), "high": num(r.delta_high)},
                "p_value": num(r.p_value), "p_holm": num(r.p_holm)}
        best = {name: {"rule": r.rule, "sigma": num(r.sigma), "val_auc": num(r.val_auc),
              "image_auc": num(r.image_auc), "image_auc_ci": [num(r.ci_low), num(r.ci_high)],
              "image_acc": num(r.image_acc), "reference_auc": num(r.reference_auc),
              "diff_vs_reference": {"value": num(r.delta), "low": num(r.delta_low), "high": num(r.delta_high)},
              "p_value": num(r.p_value), "p_holm": num(r.p_holm), "resolved": bool(r.resolved)}
                for name, r in self.chosen.iterrows()}
        sweep = {name: {"chosen": num(self.chosen.loc[name, "sigma"]),
                        "sweep": [{"sigma": num(s.sigma), "val_auc": num(s.val_auc), "test_auc": num(s.test_auc)}
                                  for s in g.itertuples()]}
                 for name, g in self.sweep.groupby("classifier", sort=False)}
        verdicts = {rule: {k: int(v) for k, v in row.items()} for rule, row in self.verdicts().iterrows()}
        supervised = {rule: {k: int(v) for k, v in row.items()} for rule, row in self.verdicts(True).iterrows()}
        return {"setting": {"reference": self.reference, "rules": self.rules, "bootstrap": len(self.counts),
                            "level": self.level, "alpha": self.alpha, "n_test": len(self.labels),
                            "holm_family": "per classifier, every rule against the reference", **setting},
                "classifiers": rows, "best": best, "sigma": sweep, "verdicts": verdicts,
                "supervised_verdicts": supervised}


def evaluate(classifiers: dict[str, dict[str, torch.Tensor]], contexts: dict[str, dict[str, Context]],
             labels: dict[str, torch.Tensor], rules: Sequence[str], sigmas: Sequence[float],
             reference: str = "mean_logit", learned_c: float = 1.0, bootstrap: int = 1000, seed: int = 0,
             level: float = 0.95, alpha: float = 0.05) -> FusionResult:
    """Per classifier: σ of the centre rule and the best rule chosen on validation (highest
    macro AUC; the learned rule scored out of fold there, fitted on all of validation for
    test), then every rule scored once on test with paired bootstrap CIs and its difference
    to ``reference``, p-values Holm-adjusted over the rules compared per classifier.

    ``classifiers[name][split]``: window probabilities N × side × side × classes for splits
    "val" and "test"; ``contexts[name][split]``: their ``Context`` (σ and learned rule are
    set here)."""
    rules = list(rules)
    if reference not in rules:
        raise ValueError(f"rules {rules} must include the reference rule {reference!r} every rule is tested against")
    unknown = sorted(set(rules) - set(RULES))
    if unknown:
        raise ValueError(f"unknown fusion rule(s) {unknown}; known: {sorted(RULES)}")
    if not sigmas:
        raise ValueError("sigmas is empty: give the centre rule at least one σ to choose from on validation")
    for name in classifiers:
        if set(classifiers[name]) < {"val", "test"} or name not in contexts:
            raise ValueError(f"classifier {name!r} needs 'val' and 'test' predictions and contexts")
    y_val, y = labels["val"].numpy(), labels["test"].numpy()
    counts = metrics.bootstrap_counts(len(y), bootstrap, seed)
    rows, chosen, sweep, scores = [], {}, [], {}
    for name, probs in classifiers.items():
        ctx_val, ctx_test = contexts[name]["val"], contexts[name]["test"]
        for sg in sigmas:  # validation chooses; test is drawn beside it, not used
            sweep.append({"classifier": name, "sigma": float(sg),
                          "val_auc": metrics.macro_auc(centre(probs["val"].float(), replace(ctx_val, sigma=sg)), y_val),
                          "test_auc": metrics.macro_auc(centre(probs["test"].float(), replace(ctx_test, sigma=sg)), y)})
        mine = [s for s in sweep if s["classifier"] == name]
        sigma = max(mine, key=lambda s: s["val_auc"])["sigma"]  # first of the best on ties
        ctx_val = replace(ctx_val, sigma=sigma, learned=None)
        ctx_test = replace(ctx_test, sigma=sigma, learned=fit_learned(probs["val"], labels["val"], learned_c, seed)
                           if "learned" in rules else None)
        val_auc = {}
        for rule in rules:
            v = (learned_validation_scores(probs["val"], labels["val"], learned_c, seed) if rule == "learned"
                 else fuse(rule, probs["val"], ctx_val))
            val_auc[rule] = metrics.macro_auc(v, y_val)
            scores[name, rule] = fuse(rule, probs["test"], ctx_test).numpy()
        boots = {rule: _boot(scores[name, rule], y, counts) for rule in rules}
        p = {rule: metrics.paired_p_value(boots[rule], boots[reference]) for rule in rules if rule != reference}
        p_holm = metrics.holm({r: v for r, v in p.items() if r not in SUPERVISED})  # the fusion rules' family
        p_holm |= {r: v for r, v in p.items() if r in SUPERVISED}  # adjusted across classifiers below
        ref_auc = metrics.macro_auc(scores[name, reference], y)
        for rule in rules:
            auc = metrics.macro_auc(scores[name, rule], y)
            lo, hi = _interval(boots[rule], level)
            d_lo, d_hi = _interval(boots[rule] - boots[reference], level) if rule != reference else (0.0, 0.0)
            rows.append({"classifier": name, "rule": rule, "val_auc": val_auc[rule], "image_auc": auc, "ci_low": lo,
                         "ci_high": hi, "image_acc": metrics.accuracy(scores[name, rule], y), "delta": auc - ref_auc,
                         "delta_low": d_lo, "delta_high": d_hi, "p_value": p.get(rule, np.nan),
                         "p_holm": p_holm.get(rule, np.nan)})
        # the reference first on ties: a rule must beat it on validation to be chosen; a
        # supervised rule is not a way of fusing votes and is never chosen
        order = [reference] + [r for r in rules if r != reference and r not in SUPERVISED]
        chosen[name] = {"rule": max(order, key=lambda r: val_auc[r]), "sigma": sigma}
    table = pd.DataFrame(rows)
    for rule in SUPERVISED:  # one comparison per classifier: Holm across the classifiers
        mask = table.rule == rule
        if mask.any():
            table.loc[mask, "p_holm"] = list(metrics.holm(dict(zip(table[mask].classifier, table[mask].p_value)))
                                             .get(c) for c in table[mask].classifier)
    best = []
    for name, c in chosen.items():
        r = table[(table.classifier == name) & (table.rule == c["rule"])].iloc[0]
        ref = table[(table.classifier == name) & (table.rule == reference)].iloc[0]
        best.append({"classifier": name, **c, **r.drop(["classifier", "rule"]).to_dict(),
                     "reference_auc": ref.image_auc,
                     "resolved": bool(c["rule"] != reference and r.p_holm < alpha)})
    return FusionResult(table, pd.DataFrame(best).set_index("classifier"), pd.DataFrame(sweep), scores, counts, y,
                        reference, level, alpha)


def top_classifier(result: FusionResult) -> str:
    """The classifier whose validation-chosen rule scores highest on validation (a choice, so
    made on validation too)."""
    return str(result.chosen["val_auc"].idxmax())


def rule_finding(rule: str, reference: str, delta: float, low: float, high: float, p_holm: float,
                 resolved: bool) -> findings.Finding:
    """A rule against the reference on test (AUC difference, paired bootstrap interval over
    test images, Holm-adjusted p deciding), in the shared words of ``core.findings``."""
    return findings.compare(rule, reference, delta, low, high, findings.IMAGES, "image macro AUC (Holm-adjusted p)",
                            digits=3, p=p_holm, higher_is_better=True, resolved=resolved)


def check_lines(result: FusionResult) -> list[str]:
    """One line per classifier: its validation-chosen rule against the reference on test."""
    lines = []
    for name, r in result.chosen.iterrows():
        if r.rule == result.reference:
            lines.append(f"{name}: best-on-validation rule is {result.reference} itself: nothing to test")
            continue
        f = rule_finding(r.rule, result.reference, r.delta, r.delta_low, r.delta_high, r.p_holm, bool(r.resolved))
        lines.append(f"{name}: best-on-validation rule {r.rule} vs {result.reference} on test: {f.words}")
    return lines


def by_object_size(result: FusionResult, object_size: np.ndarray, bins: int,
                   background_rules: Sequence[str] = ("centre", "cam_weighted", "cam_masked"),
                   ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Test images in ``bins`` quantile bins of CAM-estimated object size. Returns each
    (classifier, rule, bin)'s AUC; per bin the gain of the background-down-weighting rules
    over the reference (mean over those rules and all classifiers), with a paired bootstrap
    CI and p-value; and the size effect the proposal expects (the gain larger on small
    objects): smallest bin's gain − largest bin's, tested on the same bootstrap resamples of
    all test images (``size_effect``), not by whether the two intervals overlap."""
    edges = pd.qcut(np.asarray(object_size), bins, labels=False, duplicates="drop")
    background = [r for r in background_rules if r in result.rules]
    rows, gains, samples_of = [], [], []
    for b in np.unique(edges):
        keep = np.flatnonzero(edges == b)  # the bin's images only: out-of-bin images weigh zero anyway
        labels, counts = result.labels[keep], result.counts[:, keep]
        auc, boot = {}, {}
        for name in result.chosen.index:
            for rule in result.rules:
                s = result.scores[name, rule][keep]
                auc[name, rule] = float(metrics.weighted_macro_auc(s, labels, np.ones(len(keep)))[0])
                rows.append({"rule": rule, "size bin (small → large)": int(b), "classifier": name,
                             "image_auc": auc[name, rule]})
                if rule in background or rule == result.reference:
                    boot[name, rule] = _boot(s, labels, counts)
        if not background:
            continue
        names = list(result.chosen.index)

        def gain(values):
            return np.nanmean([np.nanmean([values[n, r] for r in background], 0) - values[n, result.reference]
                               for n in names], 0)
        samples = gain(boot)
        samples_of.append(samples)
        if np.isnan(samples).all():  # too few images in the bin for any resample to score (e.g. a dry run)
            lo = hi = p = math.nan
        else:
            lo, hi = _interval(samples, result.level)
            p = metrics.paired_p_value(samples, np.zeros_like(samples))
        gains.append({"size bin (small → large)": int(b), "images": len(keep), "gain": float(gain(auc)),
                      "low": lo, "high": hi, "p_value": p, "resolved": bool(p < result.alpha)})
    gains = pd.DataFrame(gains)
    return pd.DataFrame(rows), gains, size_effect(gains, samples_of, result.level)


def size_effect(gains: pd.DataFrame, samples: Sequence[np.ndarray], level: float) -> dict:
    """Smallest-object bin's gain − largest bin's, with its bootstrap interval and p over the
    resamples both bins share (one resample of all test images scores every bin), worded by
    ``core.findings``. Empty with fewer than two bins."""
    if len(gains) < 2:
        return {}
    diff = float(gains["gain"].iloc[0] - gains["gain"].iloc[-1])
    d = samples[0] - samples[-1]
    if np.isnan(d).all():
        lo = hi = p = math.nan
    else:
        lo, hi = _interval(d, level)
        p = metrics.paired_p_value(d, np.zeros_like(d))
    f = findings.compare("the smallest-object bin", "the largest", diff, lo, hi, findings.IMAGES,
                         "background rules' gain in AUC", digits=3, p=p if np.isfinite(p) else None)
    return {"difference": diff, "low": lo, "high": hi, "p_value": p, "status": f.status, "text": f.words,
            "covers": findings.covers_text(f.covers)}


def verdict_sentence(result: FusionResult) -> str:
    """What the rules-against-the-reference table resolves, in one or two sentences."""
    v, ref, m = result.verdicts(), result.reference, len(result.chosen)
    if v.empty or v["better"].max() == 0:
        text = (f"No rule beats {ref} on any of the {m} classifiers after Holm's correction: "
                "nothing is resolved in its favour.")
    else:
        best = v["better"].idxmax()
        text = (f"After Holm's correction, {best} beats {ref} on {v.loc[best, 'better']} of {m} classifiers, "
                "the most of any rule.")
    worse = v[v["worse"] > 0]["worse"]
    return text + (" " + "; ".join(f"{r} loses to it on {n}" for r, n in worse.items()) + "." if len(worse)
                   else f" No rule is resolved as worse than {ref}.")


def supervised_sentence(result: FusionResult, n_val: int) -> str:
    """The supervised rules against the reference, said apart from the fusion rules."""
    v = result.verdicts(supervised=True)
    if v.empty:
        return "No supervised rule was compared."
    return " ".join(f"The {r} rule is a logistic regression fitted on {n_val:,} labelled validation images: it adds "
                    f"supervision rather than fusing votes. After Holm's correction across the classifiers it beats "
                    f"{result.reference} on {row['better']} of {row['of']} and loses on {row['worse']}."
                    for r, row in v.iterrows())


def size_sentence(gains: pd.DataFrame, effect: dict | None = None) -> str:
    """The background rules' gain in the smallest and largest object-size bins, and whether
    the two differ (``size_effect``'s test of the difference); one bin only is said as such."""
    def part(row, where):
        status = "resolved" if row.resolved else "not resolved"
        return (f"{row.gain:+.3f} [{row.low:+.3f}, {row.high:+.3f}] {where} ({row.images} images; "
                f"p = {row.p_value:.2g}, {status})")
    if gains.empty:
        return "no background-down-weighting rule was compared, so there is no gain to report."
    small, large = gains.iloc[0], gains.iloc[-1]
    if len(gains) < 2:
        return (f"the object sizes fell into one bin only, so size cannot be compared; over all images: "
                f"{part(small, 'overall')}.")
    return (f"{part(small, 'in the smallest-object bin')} and {part(large, 'in the largest')}; "
            f"{(effect or {}).get('text', 'the difference between the two was not tested')}.")


def records(frame: pd.DataFrame) -> list[dict]:
    """A table's rows as json-ready dicts (NaN as null)."""
    return json.loads(frame.to_json(orient="records"))


def headline(results: dict) -> list[Headline]:
    """The validation-chosen fusion rule (supervised rules excluded) against the reference
    on test: on how many classifiers it is better or worse after Holm; for the classifier
    chosen on validation, its image AUC and its gain over the reference (bootstrap CIs over
    test images: these trained classifiers); the supervised rule's count apart."""
    s = results["setting"]
    ref, best = s["reference"], results["best"]
    where = f"{s.get('dataset', '?')} test ({s['n_test']} images)"
    if s.get("resolution"):
        where += f", {s['resolution']} px"
    better = sum(b["resolved"] and b["diff_vs_reference"]["value"] > 0 for b in best.values())
    worse = sum(b["resolved"] and b["diff_vs_reference"]["value"] < 0 for b in best.values())
    rows = [Headline(f"fusion: classifiers whose validation-chosen rule beats {ref} after Holm",
                     f"{better} / {len(best)}", interval=f"Holm-adjusted paired bootstrap p < {s['alpha']}",
                     setting=f"image macro AUC, {where}; unsupervised rules, rule and σ chosen on validation",
                     rule="check", status=f"{better} better, {worse} worse")]
    top = max(best, key=lambda n: best[n]["val_auc"])
    b = best[top]
    interval = f"{s['level']:.0%} bootstrap CI over test images ({s['bootstrap']} resamples; these trained models)"
    rows.append(Headline("fusion: image macro AUC, validation-chosen classifier and rule", b["image_auc"],
                         *b["image_auc_ci"], interval, f"{top} with {b['rule']} (both chosen on validation); {where}",
                         rule="bootstrap", margin=0.01, better="higher"))
    d = b["diff_vs_reference"]
    p = b["p_holm"] if b["p_holm"] is not None else 1.0  # None: the chosen rule is the reference
    status = rule_finding(b["rule"], ref, d["value"], d["low"], d["high"], p, bool(b["resolved"])).status
    rows.append(Headline(f"fusion: validation-chosen rule − {ref}, image macro AUC", d["value"], d["low"], d["high"],
                         interval, f"{top}, {b['rule']} vs {ref}; Holm p = {p:.3g}; {where}", rule="difference",
                         status=status))
    for rule, v in results.get("supervised_verdicts", {}).items():
        rows.append(Headline(f"supervised {rule} rule beats {ref} after Holm (classifiers)", f"{v['better']} / {v['of']}",
                             interval="Holm across classifiers", setting=f"fitted on labelled validation images; {where}",
                             rule="check", status=f"{v['better']} better, {v['worse']} worse"))
    return rows


def plan(params: dict, upstream: dict | None = None) -> list[Loop]:
    """The patch study's full-image CNN, whose predicted-class Grad-CAM (batches of 128)
    weights the windows; the window probabilities come from the patch chapter's cache."""
    p = (upstream or {}).get("patches")
    if p is None:
        raise ValueError("the fusion chapter's plan needs the patch chapter's parameters (upstream['patches'])")
    from simplecnn.core.recipes import recipe
    cnn = recipe(p["ceiling_recipe"], p["dataset"], like=p.get("like"), resolution=p["resolution"])
    return [Loop("full-image CNN, Grad-CAM weights", cnn.model, cnn.model_kwargs, p["resolution"], 128)]
