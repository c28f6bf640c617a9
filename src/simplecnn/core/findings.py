"""A test turned into words: every chapter states its findings through these helpers, so a
verdict never says more than its statistics.

A comparison of A and B has three outcomes: resolved one way ("A > B"), resolved the other
("A < B"), or not resolved ("no difference detected", which is not evidence of no
difference). ``Finding.status`` is the machine-readable form a re-run is judged by
(``core.reproduce``); ``Finding.words`` the sentence a chapter prints; ``Finding.covers``
says what the interval is about: training seeds (a claim about the method) or test images
(a claim about one trained model). Intervals, p-values and t statistics across seeds are
computed here too, so that the wording and the test come from one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

SEEDS = "seeds"  # the interval covers training variance: a claim about the method
IMAGES = "test images"  # the interval covers the test sample of one trained model


@dataclass(frozen=True)
class Finding:
    """A comparison's outcome: ``status`` ("resolved: A > B", "resolved: A < B", "not
    resolved"), ``words`` (a sentence), the difference with its interval, and ``covers``."""

    status: str
    words: str
    diff: float
    low: float
    high: float
    covers: str

    @property
    def resolved(self) -> bool:
        return self.status.startswith("resolved")


def covers_text(covers: str, n: int | None = None, level: float = 0.95) -> str:
    """What an interval is about, for a table header or a check's text."""
    if covers == SEEDS:
        return f"{level:.0%} interval over {n} training seeds" if n else f"{level:.0%} interval over training seeds"
    return f"{level:.0%} bootstrap interval over test images (one trained model)"


def compare(a: str, b: str, diff: float, low: float, high: float, covers: str, what: str = "",
            unit: str = "", digits: int = 1, p: float | None = None, higher_is_better: bool | None = None,
            resolved: bool | None = None) -> Finding:
    """A − B = ``diff`` with its interval [low, high]: resolved when the interval excludes
    zero (``p``, when given, is printed beside it).

    ``higher_is_better`` names the winner for a quantity with a direction (a deletion AUC is
    better low): the status reads "resolved: A better" / "resolved: B better" instead of
    "A > B". ``resolved`` is an adjusted test's verdict (Holm) and decides over the interval:
    False keeps an interval that excludes zero "not resolved"; True resolves in the direction
    of ``diff`` even where the unadjusted percentile interval just touches zero."""
    fmt = lambda v: f"{v:+.{digits}f}{unit}"  # noqa: E731
    stat = f"{fmt(diff)} [{fmt(low)}, {fmt(high)}]" + (f", p = {p:.2g}" if p is not None else "")
    subject = f"{what} " if what else ""
    scope = "" if covers == SEEDS else " for these trained models"
    above, below = np.isfinite(low) and low > 0, np.isfinite(high) and high < 0
    if resolved is True and not (above or below):  # the test rejected; its direction is the estimate's
        above, below = diff > 0, diff < 0
    a_wins, b_wins = (below, above) if higher_is_better is False else (above, below)
    if resolved is False and (a_wins or b_wins):
        return Finding("not resolved", f"no difference between {a} and {b} detected after Holm{scope}: {subject}{stat}",
                       float(diff), float(low), float(high), covers)
    directed = higher_is_better is not None
    if a_wins:
        status, words = (f"resolved: {a} better" if directed else f"resolved: {a} > {b}"), f"{a} beats {b}{scope}: {subject}{stat}"
    elif b_wins:
        status, words = (f"resolved: {b} better" if directed else f"resolved: {a} < {b}"), f"{b} beats {a}{scope}: {subject}{stat}"
    else:
        status = "not resolved"
        words = f"no difference between {a} and {b} detected{scope}: {subject}{stat} (not evidence of none)"
    return Finding(status, words, float(diff), float(low), float(high), covers)


def across_seeds(values: np.ndarray | list[float], level: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, Student-t interval of the mean and two-sided p-value (mean = 0) of per-seed
    values (differences paired by seed); NaN interval and p with fewer than two seeds."""
    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean()) if len(x) else math.nan
    if len(x) < 2:
        return mean, math.nan, math.nan, math.nan
    se = float(x.std(ddof=1)) / math.sqrt(len(x))
    if se == 0:
        return mean, mean, mean, (1.0 if mean == 0 else 0.0)
    half = stats.t.ppf(0.5 + level / 2, len(x) - 1) * se
    return mean, mean - half, mean + half, float(2 * stats.t.sf(abs(mean) / se, len(x) - 1))


def pooled_paired(diffs: dict[str, np.ndarray], level: float = 0.95) -> dict[str, dict]:
    """Contrasts each measured on the same seeds (``diffs``: name -> per-seed differences),
    tested with the seed-to-seed variance of the differences pooled over all contrasts (the
    residual of a setting × seed design: Σ (n_c − 1) degrees of freedom): with two seeds a
    contrast alone has one degree of freedom, the pool one per contrast. Returns per
    contrast the mean, standard error, interval, degrees of freedom and two-sided p."""
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in diffs.items() if len(v)}  # an unmeasured contrast adds nothing
    dof = int(sum(len(v) - 1 for v in arrays.values()))
    ss = sum(float(((v - v.mean()) ** 2).sum()) for v in arrays.values())
    var = ss / dof if dof > 0 else math.nan
    out = {}
    for name, v in arrays.items():
        mean = float(v.mean())
        se = math.sqrt(var / len(v)) if dof > 0 else math.nan
        if not np.isfinite(se):
            out[name] = {"mean": mean, "se": se, "low": math.nan, "high": math.nan, "df": dof, "p": math.nan}
            continue
        half = stats.t.ppf(0.5 + level / 2, dof) * se
        p = (1.0 if mean == 0 else 0.0) if se == 0 else float(2 * stats.t.sf(abs(mean) / se, dof))
        out[name] = {"mean": mean, "se": se, "low": mean - half, "high": mean + half, "df": dof, "p": p}
    return out


def agreement(statistic: float, p: float, n_resolved_with: int, n_resolved: int, alpha: float = 0.05,
              what: str = "the paper's order") -> tuple[str, str]:
    """A one-sided test of agreement (a rank correlation and its permutation p) in words:
    agreement detected, or not detected (never "contradicted": a large p is absence of
    evidence), with how many resolved pairs go the agreeing way. Returns (status, words)."""
    pairs = (f"; {n_resolved_with} of the {n_resolved} pairs resolved after Holm go its way"
             if n_resolved else "; no pair of designs is resolved")
    if not np.isfinite(p):
        return "not tested", f"With fewer than two items there is no order to compare with {what}."
    if p < alpha and statistic > 0:
        return "agreement detected", (f"Agreement with {what} is detected: an agreement this close arises under a "
                                      f"random order with probability {p:.2g}{pairs}.")
    return "agreement not detected", (f"Agreement with {what} is not detected (an agreement this close or closer "
                                      f"arises under a random order with probability {p:.2f}); that is not evidence "
                                      f"against it{pairs}.")
