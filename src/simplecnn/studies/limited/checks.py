"""Can this run answer its question? The checks and verdicts the chapter prints: the
accuracy floor, overfitting without augmentation, the ablation's contrasts (each setting
against none, offline against online; paired by seed, pooled variance, Holm), agreement with
the paper's order, each worded by its test (``core.findings``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from simplecnn.core import findings
from simplecnn.core.metrics import holm


def floor_check(by_design: pd.DataFrame, floor: float) -> dict:
    """Every design's mean test accuracy at or above ``floor`` (%): below it the designs are
    too little trained for their differences to say anything about the designs."""
    below = [d for d in by_design.index if by_design.loc[d, "acc_mean"] < floor]
    low = float(by_design["acc_mean"].min())
    verdict = "met" if not below else f"NOT met ({', '.join(below)} below)"
    return {"floor": floor, "met": not below, "below": below, "lowest": low,
            "text": f"accuracy floor {floor:g} %: lowest design mean {low:.1f} %: {verdict}"}


def ablation_tests(runs: pd.DataFrame, reference: str = "none", online: str = "all", alpha: float = 0.05,
                   level: float = 0.95) -> dict[str, dict]:
    """Every augmentation setting against ``reference`` and the offline row against ``online``,
    each as per-seed differences (paired by seed) tested with the seed variance pooled over
    all these contrasts (``core.findings.pooled_paired``) and Holm-adjusted together. Returns
    per contrast the mean gain (points), its interval over seeds, p, adjusted p and finding."""
    acc = runs.pivot_table(index="seed", columns="setting", values="acc", sort=False) * 100
    diffs = {f"{s} − {reference}": (acc[s] - acc[reference]).dropna().to_numpy()
             for s in acc.columns if s != reference}
    offline = [s for s in acc.columns if "offline" in s]
    if offline and online in acc.columns:
        diffs[f"{offline[0]} − {online}"] = (acc[offline[0]] - acc[online]).dropna().to_numpy()
    tested = findings.pooled_paired(diffs, level)
    finite = {k: v["p"] for k, v in tested.items() if np.isfinite(v["p"])}
    adjusted = holm(finite) if finite else {}
    out = {}
    for name, t in tested.items():
        a, b = name.split(" − ")
        p_holm = adjusted.get(name, math.nan)
        resolved = bool(np.isfinite(p_holm) and p_holm < alpha)
        f = findings.compare(a, b, t["mean"], t["low"], t["high"], findings.SEEDS, "test accuracy", " points",
                             p=p_holm if np.isfinite(p_holm) else None, resolved=resolved)
        out[name] = {**t, "n": int(len(diffs[name])), "p_holm": p_holm, "resolved": f.resolved, "status": f.status,
                     "text": f.words}
    return out


def overfit_check(by_setting: pd.DataFrame, reference: str = "none", train_floor: float = 95.0) -> dict:
    """Without augmentation the model must (nearly) fit its training set while test accuracy
    lags: only then can augmentation's regularisation show."""
    train = float(by_setting.loc[reference, "train_acc_mean"])
    test = float(by_setting.loc[reference, "acc_mean"])
    met = train >= train_floor
    return {"train_acc": train, "test_acc": test, "train_floor": train_floor, "met": met,
            "text": f"without augmentation: training accuracy {train:.1f} % vs test {test:.1f} % "
                    f"(overfitting regime needs training ≥ {train_floor:g} %): {'met' if met else 'NOT met'}"}


def rank_verdict(rank: dict, pairs: pd.DataFrame, paper: dict[str, float], alpha: float = 0.05) -> tuple[str, str]:
    """Whether agreement with the paper's order is detected (status, sentence), with how many
    of the pairs resolved after Holm go the paper's way."""
    resolved = pairs[pairs["resolved"]]
    with_paper = int(sum((r.diff > 0) == (paper[r.a] > paper[r.b]) for r in resolved.itertuples()))
    return findings.agreement(rank.get("kendall", math.nan), rank.get("kendall_p", math.nan), with_paper,
                              len(resolved), alpha)


def ablation_verdict(overfit: dict, tests: dict[str, dict], needed: Sequence[str] = ("all − none", "crop+flip − none")
                     ) -> str:
    """What the ablation may conclude, given its own checks: the regime must overfit without
    augmentation and resolve the reference gains (all five, crop+flip) after Holm."""
    if not overfit["met"]:
        return ("The model does not overfit without augmentation, so this regime cannot show what augmentation "
                "does; the gains below are not conclusions.")
    missing = [n for n in needed if n in tests and not tests[n]["resolved"]]
    if missing:
        return (f"The model overfits without augmentation, but {', '.join(missing)} is not resolved after Holm: the "
                f"regime is too noisy to rank the augmentations; read the bars as unresolved.")
    resolved = [n for n, t in tests.items() if t["resolved"]]
    return (f"The regime can answer the question: the model overfits without augmentation, and "
            f"{len(resolved)} of the {len(tests)} contrasts are resolved after Holm (the two reference gains "
            f"among them).")


def offline_text(tests: dict[str, dict], online: str = "all") -> str:
    """The offline row against the online one (its test, not the offline row against no
    augmentation), or a note that it did not run."""
    found = [t for name, t in tests.items() if "offline" in name and name.endswith(f" − {online}")]
    return found[0]["text"] if found else "the offline row did not run in this profile"


def tests_text(tests: dict[str, dict]) -> str:
    """Every contrast's finding, resolved ones first."""
    ordered = sorted(tests.values(), key=lambda t: not t["resolved"])
    return "; ".join(t["text"] for t in ordered)


def tests_frame(by_setting: pd.DataFrame, tests: dict[str, dict], reference: str = "none") -> pd.DataFrame:
    """The ablation's table: each setting's accuracy (mean ± std over seeds), training
    accuracy, and its contrast with ``reference``: gain, interval over seeds, Holm p, finding."""
    rows = []
    for setting, r in by_setting.iterrows():
        t = tests.get(f"{setting} − {reference}")
        rows.append({"setting": setting, "test acc (%)": f"{r['acc_mean']:.1f} ± {r['acc_std']:.1f}",
                     "train acc (%)": r.get("train_acc_mean", float("nan")),
                     "gain (points)": t["mean"] if t else float("nan"),
                     "interval over seeds": f"[{t['low']:+.1f}, {t['high']:+.1f}]" if t else "",
                     "Holm p": t["p_holm"] if t else float("nan"), "finding": t["status"] if t else "reference"})
    return pd.DataFrame(rows).set_index("setting")
