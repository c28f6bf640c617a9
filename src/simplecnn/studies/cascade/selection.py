"""Thresholds chosen on validation, scored once on test: every exit rule (score, calibration,
stage subset, learned gate) through one path, with bootstrap intervals over the test images,
paired comparisons with the report's rule, and the choice's stability over validation
resamples."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch

from simplecnn.core.metrics import bootstrap_accuracy, confidence_interval, holm, paired_p_value
from simplecnn.studies.cascade.maps import choose_thresholds, outcomes, point_outcomes, simulate
from simplecnn.studies.cascade.scores import SCORES, ExitGate, exit_score, interval


def select(scores: list[torch.Tensor], correct: list[torch.Tensor], stage_cost: list[float],
           grids: list[torch.Tensor], target: float) -> list[float] | None:
    """The report's rule on validation: the cheapest threshold combination of ``grids`` whose
    accuracy reaches ``target`` (None: none does)."""
    sim = simulate(scores, correct, stage_cost, grids)
    index = choose_thresholds(sim["acc"], sim["cost"], target)
    return None if index is None else [float(grids[p][i]) for p, i in enumerate(index)]


def compare_accuracy(cascade_correct: np.ndarray, reference_correct: np.ndarray, counts: np.ndarray,
                     level: float = 0.95) -> dict:
    """Cascade minus reference test accuracy with its paired bootstrap interval (same resampled
    images for both). ``matched``: the interval reaches zero, i.e. the test set shows no
    shortfall larger than its own uncertainty (absence of evidence, not proof of equality)."""
    diff = bootstrap_accuracy(cascade_correct, counts) - bootstrap_accuracy(reference_correct, counts)
    d = interval(diff, float(np.mean(cascade_correct) - np.mean(reference_correct)), level)
    return {**d, "matched": bool(d["high"] >= 0)}


def expected_cost(cost: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Expected cost per image of each resample (rows of ``counts``)."""
    return counts @ np.asarray(cost, dtype=np.float64) / counts.sum(1)


@dataclass(frozen=True)
class Variant:
    """An exit rule: the confidence score, whether logits are temperature-scaled (fitted on
    validation), and which stages (indices into the trained stages) form the cascade."""

    score: str = "max_prob"
    calibrated: bool = False
    stages: tuple[int, ...] = (0, 1, 2)

    @property
    def name(self) -> str:
        return f"{self.score}{' + T' if self.calibrated else ''} [{'-'.join(map(str, self.stages))}]"


GATE = "gate"  # the learned exit policy's score name (``ExitGate``)


def variants(scores: list[str], n_stages: int, subsets: list[list[int]] | None = None,
             gate: bool = False) -> list[Variant]:
    """Every exit score, with and without temperature, over every stage subset (default: all
    subsets of at least two stages, in order); the report's rule (top probability,
    uncalibrated, all stages) first. With ``gate`` also the learned gate on every subset
    (uncalibrated only: the logistic regression calibrates its own output)."""
    unknown = [sc for sc in scores if sc not in SCORES]
    if unknown:
        raise ValueError(f"unknown exit scores {unknown}; known: {list(SCORES)} (the learned gate: gate=True)")
    if subsets is None:
        subsets = [list(c) for k in range(n_stages, 1, -1) for c in itertools.combinations(range(n_stages), k)]
    report = Variant("max_prob", False, tuple(range(n_stages)))
    out = [report]
    for sub in subsets:
        if len(sub) < 2 or list(sub) != sorted(set(sub)) or not all(0 <= s < n_stages for s in sub):
            raise ValueError(f"a stage subset needs two or more distinct increasing indices below {n_stages}; got {sub}")
        for score in scores:
            for calibrated in (False, True):
                v = Variant(score, calibrated, tuple(sub))
                if v != report:
                    out.append(v)
        if gate:
            out.append(Variant(GATE, False, tuple(sub)))
    return out


def variant_inputs(logits: list[torch.Tensor], labels: torch.Tensor, variant: Variant, temperatures: list[float],
                   gate_scores: list[torch.Tensor] | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Exit scores and per-image correctness of the variant's stages; the learned gate's
    scores (one tensor per trained stage) come precomputed in ``gate_scores``."""
    if variant.score == GATE:
        if gate_scores is None:
            raise ValueError("a gate variant needs gate_scores (fit_gates: cross-fitted on validation, the fitted "
                             "gates' scores on test)")
        sc = [gate_scores[p] for p in variant.stages]
    else:
        sc = [exit_score(logits[p], variant.score, temperatures[p] if variant.calibrated else 1.0)
              for p in variant.stages]
    return sc, [logits[p].argmax(1) == labels for p in variant.stages]


def variant_scorers(variant: Variant, temperatures: list[float],
                    gates: list[ExitGate] | None = None) -> list[Callable[[torch.Tensor], torch.Tensor]]:
    """The variant's exit scores as deployed: one callable per stage of the variant, from
    that stage's logits to its exit score (for ``classify``)."""
    if variant.score == GATE:
        if gates is None:
            raise ValueError("a gate variant needs its fitted gates (fit_gates)")
        return [gates[p].score for p in variant.stages]
    return [lambda out, t=(temperatures[p] if variant.calibrated else 1.0): exit_score(out, variant.score, t)
            for p in variant.stages]


@dataclass
class Reference:
    """What a cascade is compared with: a single model's per-image correctness on validation
    (its accuracy is the target there) and on test, and its MACs per image."""

    name: str
    val_correct: torch.Tensor
    test_correct: torch.Tensor
    macs: float
    setting: str = ""


def score_variants(logits: dict[str, list[torch.Tensor]], labels: dict[str, torch.Tensor], stage_cost: list[float],
                   grid: torch.Tensor, rules: list[Variant], references: list[Reference], temperatures: list[float],
                   counts: np.ndarray, other_macs: dict[str, float] | None = None, level: float = 0.95,
                   gate_scores: dict[str, list[torch.Tensor]] | None = None) -> pd.DataFrame:
    """Every exit rule, selected on validation for every reference's validation accuracy and
    scored once on test: accuracy, expected MACs and MAC cut with bootstrap intervals over
    the test images (``counts``), the paired accuracy difference and whether it is matched.
    ``other_macs``: further models (e.g. full ResNets at 224 px) the MAC cut is also stated
    against, whose accuracy is not compared. The paired p-value of each rule's expected MACs
    against the first rule's (the report's) is Holm-corrected per reference."""
    rows, paid = [], {}
    for rule in rules:
        val_sc, val_ok = variant_inputs(logits["val"], labels["val"], rule, temperatures,
                                        (gate_scores or {}).get("val"))
        test_sc, test_ok = variant_inputs(logits["test"], labels["test"], rule, temperatures,
                                          (gate_scores or {}).get("test"))
        cost = [stage_cost[p] for p in rule.stages]
        grids = [grid] * (len(rule.stages) - 1)
        sim = simulate(val_sc, val_ok, cost, grids)
        for ref in references:
            row = {"rule": rule.name, "score": rule.score, "calibrated": rule.calibrated, "stages": list(rule.stages),
                   "reference": ref.name, "target_val_acc": float(ref.val_correct.float().mean())}
            index = choose_thresholds(sim["acc"], sim["cost"], row["target_val_acc"])
            if index is None:
                rows.append({**row, "reached": False})
                continue
            deltas = [float(grids[p][i]) for p, i in enumerate(index)]
            test = point_outcomes(test_sc, test_ok, cost, deltas)
            samples = expected_cost(test["cost"], counts)
            paid[(rule.name, ref.name)] = samples
            acc = bootstrap_accuracy(test["correct"], counts)
            row.update({"reached": True, "thresholds": deltas, "val_acc": float(sim["acc"][index]),
                        "val_macs": float(sim["cost"][index]),
                        "test_acc": interval(acc, test["correct"].mean(), level),
                        "expected_macs": interval(samples, test["cost"].mean(), level),
                        "stage_fractions": [float((test["exit"] == p).mean()) for p in range(len(rule.stages))],
                        "reference_test_acc": float(ref.test_correct.float().mean()),
                        "acc_difference": compare_accuracy(test["correct"], ref.test_correct.numpy(), counts, level),
                        "mac_cut": interval(ref.macs / samples, ref.macs / test["cost"].mean(), level),
                        "mac_cut_other": {k: interval(m / samples, m / test["cost"].mean(), level)
                                          for k, m in (other_macs or {}).items()}})
            rows.append(row)
    first = rules[0].name
    for ref in references:
        base = paid.get((first, ref.name))
        keys = [k for k in paid if k[1] == ref.name and k[0] != first]
        if base is None or not keys:
            continue
        raw = {k[0]: paired_p_value(paid[k], base) for k in keys}
        adjusted = holm(raw)
        for row in rows:
            if row["reference"] == ref.name and row["rule"] in raw:
                row["macs_p_vs_report"], row["macs_p_holm"] = raw[row["rule"]], adjusted[row["rule"]]
    return pd.DataFrame(rows)


def selection_stability(val_scores: list[torch.Tensor], val_correct: list[torch.Tensor],
                        test_scores: list[torch.Tensor], test_correct: list[torch.Tensor], stage_cost: list[float],
                        grids: list[torch.Tensor], reference: Reference, val_counts: np.ndarray,
                        level: float = 0.95) -> dict:
    """How much the chosen operating point's MAC cut depends on which validation images were
    drawn: on each bootstrap resample of the validation set the thresholds are re-selected
    (target: the reference's accuracy on that resample) and scored on the whole test set.
    Returns the interval of the test MAC cut and test accuracy over resamples, and the share
    of resamples on which no threshold reached the target."""
    val = outcomes(val_scores, val_correct, stage_cost, grids)
    n = val["correct"].shape[-1]
    w = torch.as_tensor(val_counts, dtype=torch.float32)
    acc = (w @ val["correct"].reshape(-1, n).T) / w.sum(1, keepdim=True)  # resamples × combinations
    cost = (w @ val["cost"].reshape(-1, n).T) / w.sum(1, keepdim=True)
    target = torch.as_tensor(bootstrap_accuracy(reference.val_correct.numpy(), val_counts), dtype=torch.float32)
    masked = torch.where(acc >= target[:, None] - 1e-6, cost, torch.full_like(cost, float("inf")))
    chosen, reached = masked.argmin(1), torch.isfinite(masked.min(1).values)
    test = simulate(test_scores, test_correct, stage_cost, grids)
    test_cost, test_acc = test["cost"].flatten()[chosen[reached]], test["acc"].flatten()[chosen[reached]]
    out = {"resamples": int(len(val_counts)), "unreached_share": float(1 - reached.float().mean())}
    if reached.any():
        cut = (reference.macs / test_cost).numpy().astype(np.float64)
        out["mac_cut"] = dict(zip(("low", "high"), confidence_interval(cut, level)), median=float(np.median(cut)))
        out["test_acc"] = dict(zip(("low", "high"), confidence_interval(test_acc.numpy().astype(np.float64), level)),
                               median=float(test_acc.median()))
    return out


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows of a variants table as json-ready dicts (a row's missing fields left out)."""
    out = []
    for row in frame.to_dict("records"):
        out.append({k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()
                    if not (isinstance(v, float) and np.isnan(v))})
    return out


def targets_from(frame: pd.DataFrame, rule: str, stability: dict[str, dict] | None = None) -> dict[str, dict]:
    """The ``rule``'s rows of a ``score_variants`` table keyed by reference, each with its
    stability interval (``selection_stability``) where one was computed."""
    out = {}
    for row in records(frame[frame["rule"] == rule]):
        ref = row.pop("reference")
        out[ref] = {**row, **({"stability": stability[ref]} if stability and ref in stability else {})}
    return out


def judge_rules(judged: dict[str, str], rules: list[Variant], logits: dict, labels: dict, stage_cost: list[float],
                fine: torch.Tensor, references: list[Reference], temperatures: list[float], gate_scores: dict,
                table: pd.DataFrame, val_counts: np.ndarray, level: float = 0.95) -> dict[str, dict[str, dict]]:
    """For each rule declared before the test set was looked at (``judged``: label -> rule
    name), its targets (``targets_from``) with the stability of each chosen point over
    validation resamples."""
    out = {}
    for label, name in judged.items():
        rule = next(r for r in rules if r.name == name)
        vs, vc = variant_inputs(logits["val"], labels["val"], rule, temperatures, gate_scores["val"])
        ts, tc = variant_inputs(logits["test"], labels["test"], rule, temperatures, gate_scores["test"])
        stability = {ref.name: selection_stability(vs, vc, ts, tc, stage_cost, [fine] * (len(stage_cost) - 1), ref,
                                                   val_counts, level) for ref in references}
        out[label] = targets_from(table, name, stability)
    return out


def target_values(targets: dict[str, dict], ref: str, key: str) -> dict[str, object]:
    """The glue of one target for the prose: ``<key>_cut`` and ``<key>_diff`` (points) with their
    bounds, ``<key>_status`` (matched or not) and the cut's range over validation resamples."""
    t = targets.get(ref, {})
    nan = float("nan")
    out = {}
    for name, src, scale in (("cut", "mac_cut", 1), ("diff", "acc_difference", 100)):
        d = t.get(src, {})
        out |= {f"{key}_{name}": scale * d.get("value", nan), f"{key}_{name}_low": scale * d.get("low", nan),
                f"{key}_{name}_high": scale * d.get("high", nan)}
    out[f"{key}_status"] = (("matched" if t["acc_difference"]["matched"] else "not matched") if t.get("reached")
                            else "not reached on validation")
    st = t.get("stability", {}).get("mac_cut", {})
    out |= {f"{key}_stab_low": st.get("low", nan), f"{key}_stab_high": st.get("high", nan)}
    return out


def target_lines(judged_targets: dict[str, dict[str, dict]]) -> list[str]:
    """The printed checks of every judged target: accuracy matched or not, point stable or not."""
    lines = []
    for label, tg in judged_targets.items():
        for ref, t in tg.items():
            if not t.get("reached"):
                lines.append(f"check: {label}, at {ref}'s validation accuracy: NOT REACHED by any threshold on validation")
                continue
            d = t["acc_difference"]
            lines.append(f"check: {label}, at {ref}'s accuracy: cascade − {ref} on test = {100 * d['value']:+.2f} "
                         f"points [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}] (over test images, this trained "
                         f"ladder) -> {'matched' if d['matched'] else 'NOT MATCHED'}")
            st = t["stability"]
            if "mac_cut" not in st or st["unreached_share"] > 0:
                lines.append(f"check: {label}, at {ref}'s accuracy, no threshold reaches the target on "
                             f"{st['unreached_share']:.0%} of {st['resamples']} validation resamples: the point is "
                             f"NOT stable")
    return lines


def targets_frame(judged_targets: dict[str, dict[str, dict]]) -> pd.DataFrame:
    """The judged targets as a table (one column per target and rule)."""
    from simplecnn.core.present import interval_of
    rows = []
    for label, tg in judged_targets.items():
        for ref, t in tg.items():
            if not t.get("reached"):
                rows.append({"target": f"{ref}, {label}", "accuracy": "not reached on validation"})
                continue
            st = t["stability"]
            rows.append({"target": f"{ref}, {label}", "thresholds": ", ".join(f"{x:.3f}" for x in t["thresholds"]),
                         "val acc": f"{t['val_acc']:.1%}", "test acc (%)": interval_of(t["test_acc"], 100, "{:.1f}"),
                         "stage's test acc": f"{t['reference_test_acc']:.1%}",
                         "difference (points)": interval_of(t["acc_difference"], 100, "{:+.1f}"),
                         "accuracy": "matched" if t["acc_difference"]["matched"] else "not matched",
                         "expected MACs (M)": interval_of(t["expected_macs"], 1e-6, "{:.1f}"),
                         "exit shares": ", ".join(f"{x:.2f}" for x in t["stage_fractions"]),
                         "MAC cut vs the stage (own px)": interval_of(t["mac_cut"]),
                         "cut, validation resamples": "{low:.2f}–{high:.2f}".format(**st["mac_cut"])
                         if "mac_cut" in st else "—"})
    return pd.DataFrame(rows).set_index("target").T


def variants_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Every rule's selection and test scores, intervals as text."""
    from simplecnn.core.present import interval_of
    show = ["rule", "reference", "thresholds", "val_acc", "test_acc", "acc_difference", "expected_macs", "mac_cut",
            "macs_p_holm"]
    view = table[[c for c in show if c in table.columns]].copy()
    for c in ("test_acc", "acc_difference"):
        view[c] = [interval_of(d, 100, "{:.1f}") if isinstance(d, dict) else "not reached" for d in view[c]]
    view["expected_macs"] = [interval_of(d, 1e-6, "{:.1f}") if isinstance(d, dict) else "" for d in view["expected_macs"]]
    view["mac_cut"] = [interval_of(d) if isinstance(d, dict) else "" for d in view["mac_cut"]]
    view["thresholds"] = [", ".join(f"{x:.3f}" for x in d) if isinstance(d, list) else "" for d in view["thresholds"]]
    return view


def cut_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The reached rows of a variants table with their MAC cut, interval and match as columns."""
    reached = table[table["reached"]].copy()
    reached["cut"] = [d["value"] for d in reached["mac_cut"]]
    reached["cut_low"] = [d["low"] for d in reached["mac_cut"]]
    reached["cut_high"] = [d["high"] for d in reached["mac_cut"]]
    reached["matched"] = [d["matched"] for d in reached["acc_difference"]]
    return reached
