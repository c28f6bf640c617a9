"""The chapter's checks in words: is the map faithful beyond the references, does it change
when the weights are randomised, does its layer have cells enough to rank pixels."""

from __future__ import annotations

from collections.abc import Sequence

from simplecnn.core import findings
from simplecnn.studies.gradcam.faithfulness import METRIC_LABELS
from simplecnn.studies.gradcam.maps import BEST, LABELS, REFERENCES

WHY = {"centre": "'look at the centre' already orders these images' pixels better (how central the evidence "
                 "sits is measured below); a map must find the object better than that to win",
       "smooth_random": "the map orders pixels no better than smooth noise of its own resolution: at this layer "
                        "it does not carry the evidence the model uses",
       BEST: "no single map of the references is beaten, see the two rows above"}


def difference_finding(method: str, reference: str, row: dict) -> findings.Finding:
    """A ``compare`` row (method − reference on one metric, interval over test images) in the
    shared words of ``core.findings``: the winner named by the metric's direction."""
    return findings.compare(LABELS[method], LABELS[reference], row["difference"], row["low"], row["high"],
                            findings.IMAGES, f"{METRIC_LABELS[row['metric']]} difference", digits=3,
                            higher_is_better=bool(row["higher_is_better"]))


def checks(rows: list[dict], method: str = "gradcam", references: Sequence[str] = REFERENCES) -> list[dict]:
    """The chapter's faithfulness checks for ``method``: its insertion AUC above each
    reference's and its deletion AUC below, for the trained model (intervals over images).
    Each says whether it is resolved either way ("resolved: Grad-CAM better", "resolved:
    <reference> better") or not (the CI straddles zero: too few images to tell)."""
    out = []
    for metric, word in (("insertion", "above"), ("deletion", "below")):
        for ref in references:
            r = next((r for r in rows if (r["method"], r["reference"], r["metric"]) == (method, ref, metric)), None)
            if r is None:
                raise ValueError(f"no comparison of {method} with {ref} on {metric}; compare() them first")
            claim = f"{LABELS[method]}'s {METRIC_LABELS[metric]} is {word} the {LABELS[ref]}'s"
            f = difference_finding(method, ref, r)
            text = f"{claim}? {f.words[0].upper()}{f.words[1:]}" + (f": {WHY[ref]}." if r["loses"] else ".")
            out.append({"claim": claim, "metric": metric, "reference": ref, "status": f.status, "text": text,
                        "difference": r["difference"], "low": r["low"], "high": r["high"]})
    return out


def sanity_check(rows: list[dict], method: str = "gradcam", max_corr: float = 0.5) -> dict:
    """The map must change when the model does: at full randomisation (the last step) the
    upper CI bound of the trained-vs-randomised rank correlation is below ``max_corr``."""
    last = max(r["step"] for r in rows)
    r = next(r for r in rows if (r["step"], r["method"], r["metric"]) == (last, method, "spearman"))
    claim = f"{LABELS[method]}'s map changes when every layer is randomised (Spearman ρ below {max_corr:.2f})"
    ci = f"ρ = {r['value']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"
    if r["high"] < max_corr:
        status, text = "met", f"{claim}: {ci}, resolved."
    elif r["low"] >= max_corr:
        status, text = "NOT met", (f"{claim}? No: {ci}; the map survives the loss of the weights, so it shows the "
                                   f"image (its edges and colours), not what the model learnt.")
    else:
        status, text = "not resolved", f"{claim}? Not resolved: {ci} straddles the bound; more images would tell."
    return {"claim": claim, "metric": "randomisation", "reference": "", "status": status, "text": text,
            "difference": r["value"], "low": r["low"], "high": r["high"]}


def cells_check(cells: tuple[int, int], minimum: int = 8) -> dict:
    """Grad-CAM's layer has at least ``minimum`` × ``minimum`` cells: enough to rank pixels."""
    claim = f"the Grad-CAM layer has at least {minimum}×{minimum} cells"
    ok = min(cells) >= minimum
    text = (f"{claim} ({cells[0]}×{cells[1]}): resolved." if ok else
            f"{claim}? No, {cells[0]}×{cells[1]}: at this input size the map has too few cells to order "
            f"pixels, so its faithfulness scores say little; take an earlier layer or a larger input.")
    return {"claim": claim, "metric": "cells", "reference": "", "status": "met" if ok else "NOT met",
            "text": text, "difference": float(min(cells)), "low": None, "high": None}
