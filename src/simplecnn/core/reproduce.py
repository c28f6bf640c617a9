"""Did a finding reproduce? Two runs' values of one headline judged by the headline's own rule.

Every ``Headline`` says how a re-run is judged (``rule``):

- ``exact``: counts and figures that depend on no random draw (parameters, MACs, image
  counts): equal, or changed.
- ``bootstrap``: an estimate with a bootstrap interval over test images. The interval of the
  *difference* between the runs (each run's half-width read as its standard error,
  combined as independent: conservative when both runs score the same images) is tested
  against zero (different) and, by two one-sided tests, against the headline's equivalence
  ``margin`` (equivalent): reproduced when equivalent, changed when different and not
  equivalent, inconclusive otherwise.
- ``seeds``: a mean ± std over ``n`` training seeds: the same tests with the pooled standard
  error of the two means and Student's t.
- ``check``: a check's status ("met", "NOT met"): changed when it flips.
- ``difference``: a difference between methods with its status ("resolved: A > B",
  "not resolved"): changed when the new run resolves it the other way; a committed resolved
  difference that the new run leaves unresolved is inconclusive.
- ``order``: an ordering with its pairs (``status``: "a>b*; c>a" — ``*`` marks a resolved
  pair): changed when a pair resolved in the committed run is resolved the other way;
  inconclusive when one only changes sign.
- ``report``: timings and memory measured on one machine, and counts derived from other
  headlines (judged there): reported, never judged.

Values measured in another setting (another profile: other widths, resolutions, data) are not
compared; only findings (checks, differences, orderings) are judged across settings.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from numbers import Real

from scipy import stats

RULES = ("exact", "bootstrap", "seeds", "check", "difference", "order", "report")
VERDICTS = ("reproduced", "inconclusive", "changed", "reported", "missing", "new")


@dataclass(frozen=True)
class Judged:
    """One headline of two runs, judged: ``verdict`` is one of ``VERDICTS``; ``delta`` new −
    committed where both are numbers; ``note`` says why in a few words."""

    quantity: str
    rule: str
    committed: object
    new: object
    delta: float | None
    verdict: str
    note: str


def _number(x: object) -> bool:
    return isinstance(x, Real) and not isinstance(x, bool) and math.isfinite(float(x))


def _level(interval: str) -> float:
    found = re.search(r"(\d+(?:\.\d+)?)\s*%", interval or "")
    return float(found.group(1)) / 100 if found else 0.95


def _same(a: object, b: object, rel: float = 1e-9) -> bool:
    undefined = [isinstance(x, float) and math.isnan(x) for x in (a, b)]
    if any(undefined):
        return all(undefined)  # both undefined (no interval, no test) is the same answer
    if _number(a) and _number(b):
        return abs(float(a) - float(b)) <= rel * max(1.0, abs(float(a)), abs(float(b)))
    return a == b


def _statistical(delta: float, se: float, crit95: float, crit90: float, margin: float | None,
                 better: str | None) -> tuple[str, str]:
    """The three outcomes from the difference, its standard error and the critical values."""
    if se <= 0 or not math.isfinite(se):
        return ("reproduced", "identical") if delta == 0 else ("inconclusive", "no uncertainty to judge a change by")
    low95, high95 = delta - crit95 * se, delta + crit95 * se
    low90, high90 = delta - crit90 * se, delta + crit90 * se
    if margin is not None and -margin < low90 and high90 < margin:
        return "reproduced", f"Δ within ±{margin:g} (two one-sided tests)"
    if low95 > 0 or high95 < 0:
        way = ""
        if better in ("higher", "lower"):
            way = " (better)" if (delta > 0) == (better == "higher") else " (worse)"
        return "changed", f"Δ's 95% interval [{low95:.3g}, {high95:.3g}] excludes 0{way}"
    reason = "no margin stated" if margin is None else f"Δ's 90% interval reaches beyond ±{margin:g}"
    return "inconclusive", f"no change detected, but {reason}"


def pairs_of(status: str) -> dict[tuple[str, str], bool]:
    """An ordering's pairs ("a>b*; c>a") -> {(winner, loser): resolved}."""
    out = {}
    for part in filter(None, (p.strip() for p in (status or "").split(";"))):
        resolved = part.endswith("*")
        a, b = part.rstrip("*").split(">")
        out[(a.strip(), b.strip())] = resolved
    return out


def judge(committed: dict, new: dict, same_setting: bool = True) -> Judged:
    """Judge one headline (``committed`` and ``new``: the two runs' headlines as dicts, the
    rule and margin taken from ``new``). ``same_setting``: values were measured alike (same
    profile); otherwise only findings are judged."""
    rule = new.get("rule") or committed.get("rule") or "report"
    a, b = committed.get("value"), new.get("value")
    delta = float(b) - float(a) if _number(a) and _number(b) else None
    q = new.get("quantity") or committed.get("quantity")

    def out(verdict: str, note: str) -> Judged:
        return Judged(q, rule, a, b, delta, verdict, note)

    if rule not in RULES:
        raise ValueError(f"headline {q!r} has an unknown rule {rule!r}; known: {RULES}")
    if rule == "report":
        return out("reported", "a timing, a memory figure or a count derived from other headlines: reported, never "
                               "judged")
    if rule in ("exact", "bootstrap", "seeds") and not same_setting:
        return out("reported", "measured in another setting: values not compared, only findings")
    if rule == "exact":
        return out("reproduced", "equal") if _same(a, b) else out("changed", "not equal")
    if rule in ("bootstrap", "seeds"):
        if _same(a, b):
            return out("reproduced", "identical")
        if delta is None:
            return out("changed", "a number became text or the other way round")
        margin, better = new.get("margin"), new.get("better")
        half = [(h["high"] - h["low"]) / 2 if _number(h.get("low")) and _number(h.get("high")) else math.nan
                for h in (committed, new)]
        if rule == "bootstrap":
            level = _level(new.get("interval", ""))
            z = stats.norm.ppf(0.5 + level / 2)
            se = math.sqrt(sum((h / z) ** 2 for h in half))
            return out(*_statistical(delta, se, stats.norm.ppf(0.975), stats.norm.ppf(0.95), margin, better))
        n = [int(h.get("n") or 0) for h in (committed, new)]
        if min(n) < 2:
            return out("inconclusive", "fewer than two seeds: no spread to judge a change by")
        se = math.sqrt(sum(s ** 2 / k for s, k in zip(half, n)))  # half of mean ± std is the std
        df = sum(n) - 2
        return out(*_statistical(delta, se, stats.t.ppf(0.975, df), stats.t.ppf(0.95, df), margin, better))
    old, now = committed.get("status"), new.get("status")
    if rule == "check":
        return out("reproduced", f"still {now}") if old == now else out("changed", f"{old} → {now}")
    if rule == "difference":
        if old == now:
            return out("reproduced", f"still {now}")
        if str(old).startswith("resolved") and str(now).startswith("resolved"):
            return out("changed", f"{old} → {now}")
        if str(old).startswith("resolved"):
            return out("inconclusive", f"{old} → {now}")
        return out("inconclusive", f"{old} → {now} (not resolved before)")
    before, after = pairs_of(old), pairs_of(now)
    flipped = [p for p, resolved in before.items() if resolved and (p[1], p[0]) in after]
    reversed_resolved = [p for p in flipped if after[(p[1], p[0])]]
    kept = sum(1 for p, resolved in before.items() if resolved and p in after)
    if reversed_resolved:
        return out("changed", "resolved the other way: " + ", ".join(f"{x} vs {y}" for x, y in reversed_resolved))
    if flipped:
        return out("inconclusive", "changed sign, unresolved: " + ", ".join(f"{x} vs {y}" for x, y in flipped))
    return out("reproduced", f"all {kept} resolved pairs keep their order")
