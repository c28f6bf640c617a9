"""The statistics the chapter states: mean ± std over seeds, paired differences between
designs with Holm-adjusted tests, rank agreement with the paper's Table 1, and the
augmentation ablation's gains paired by seed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from simplecnn.core.metrics import holm

def summarise(runs: pd.DataFrame, by: str) -> pd.DataFrame:
    """Mean and sample std (ddof 1) of accuracy in %, mean training time and runs per ``by``."""
    grouped = runs.groupby(by, sort=False)
    return pd.DataFrame({"acc_mean": grouped["acc"].mean() * 100, "acc_std": grouped["acc"].std(ddof=1) * 100,
                         "train_s": grouped["train_s"].mean(), "n": grouped.size()})


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval of the mean of ``values``; NaN bounds with one value."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return mean, mean - half, mean + half


PAIRWISE_TESTS = ("pooled", "paired")


def pairwise_differences(runs: pd.DataFrame, level: float = 0.95, alpha: float = 0.05,
                         test: str = "pooled") -> pd.DataFrame:
    """Every pair of designs: the difference of their mean test accuracies (percentage
    points), an interval, a two-sided p-value Holm-adjusted over all pairs, and
    ``resolved`` when the adjusted p is below ``alpha``.

    ``pooled`` (default): Student's t with the seed-to-seed variance pooled over every design
    (one-way ANOVA's residual, N − k degrees of freedom), the usual choice when each design
    has few seeds and their noise is alike: with 2 seeds a pair alone has 1 degree of
    freedom, the pool of 6 designs 6. ``paired``: the t-test of the per-seed differences
    (only that pair's seeds). ``std`` is the std of the per-seed differences either way.
    With one seed per design nothing is resolved."""
    if test not in PAIRWISE_TESTS:
        raise ValueError(f"unknown pairwise test {test!r}; known: {PAIRWISE_TESTS}")
    acc = runs.pivot_table(index="seed", columns="design", values="acc", sort=False) * 100
    counts = acc.count()
    dof = int(counts.sum() - len(counts))
    pooled_var = float(sum(acc[c].dropna().var(ddof=1) * (counts[c] - 1) for c in acc.columns if counts[c] > 1)
                       / dof) if dof > 0 else math.nan
    rows, p_values = [], {}
    for a, b in itertools.combinations(acc.columns, 2):
        d = (acc[a] - acc[b]).dropna().to_numpy()
        std = float(d.std(ddof=1)) if len(d) > 1 else math.nan
        if test == "paired":
            mean, low, high = t_interval(d, level)
            se, df = (std / math.sqrt(len(d)), len(d) - 1) if len(d) > 1 else (math.nan, 0)
        else:
            mean = float(acc[a].mean() - acc[b].mean())
            se, df = math.sqrt(pooled_var * (1 / counts[a] + 1 / counts[b])) if dof > 0 else math.nan, dof
            half = stats.t.ppf(0.5 + level / 2, df) * se if df > 0 else math.nan
            low, high = mean - half, mean + half
        if df < 1 or math.isnan(se):
            p = math.nan
        elif se == 0:
            p = 1.0 if mean == 0 else 0.0
        else:
            p = float(2 * stats.t.sf(abs(mean) / se, df))
        rows.append({"a": a, "b": b, "diff": mean, "std": std, "se": se, "df": df, "low": low, "high": high,
                     "n": len(d), "p": p, "test": test})
        p_values[f"{a}-{b}"] = p
    out = pd.DataFrame(rows)
    finite = {k: v for k, v in p_values.items() if not math.isnan(v)}
    adjusted = holm(finite) if finite else {}
    out["p_holm"] = [adjusted.get(f"{a}-{b}", math.nan) for a, b in zip(out["a"], out["b"])]
    out["resolved"] = out["p_holm"] < alpha
    return out


def _permutation_p(x: np.ndarray, y: np.ndarray, statistic, permutations: int, seed: int) -> float:
    """One-sided p-value of ``statistic(x, y)`` being as large as observed when ``y``'s order is
    random: exact over all orders up to eight items, Monte Carlo (plus one) above."""
    observed = statistic(x, y) - 1e-12
    if len(y) <= 8:
        hits = [statistic(x, np.asarray(p)) >= observed for p in itertools.permutations(y)]
        return float(np.mean(hits))
    rng = np.random.default_rng(seed)
    hits = sum(statistic(x, rng.permutation(y)) >= observed for _ in range(permutations))
    return (hits + 1) / (permutations + 1)


def rank_agreement(paper: dict[str, float], measured: dict[str, float], permutations: int = 10_000,
                   seed: int = 0) -> dict[str, float]:
    """Kendall's tau and Spearman's rho between the paper's accuracies and the measured ones
    over the designs both have, each with a one-sided permutation p-value (the chance that
    a random order of the designs agrees at least as well)."""
    keys = [k for k in paper if k in measured]
    x = np.array([paper[k] for k in keys], dtype=np.float64)
    y = np.array([measured[k] for k in keys], dtype=np.float64)
    if len(keys) < 2:
        return {"n": len(keys), "kendall": math.nan, "kendall_p": math.nan, "spearman": math.nan,
                "spearman_p": math.nan}
    kendall = lambda a, b: float(stats.kendalltau(a, b).statistic)  # noqa: E731
    spearman = lambda a, b: float(stats.spearmanr(a, b).statistic)  # noqa: E731
    return {"n": len(keys), "kendall": kendall(x, y), "kendall_p": _permutation_p(x, y, kendall, permutations, seed),
            "spearman": spearman(x, y), "spearman_p": _permutation_p(x, y, spearman, permutations, seed)}


def ablation_summary(runs: pd.DataFrame, reference: str = "none") -> pd.DataFrame:
    """Per augmentation setting: accuracy mean ± std (in %) and the gain over ``reference``
    paired by seed (mean ± std, percentage points), in the settings' order; with the runs'
    training accuracy (``train_acc``), its mean too."""
    acc = runs.pivot_table(index="seed", columns="setting", values="acc", sort=False) * 100
    gains = acc.sub(acc[reference], axis=0)
    out = pd.DataFrame({"acc_mean": acc.mean(), "acc_std": acc.std(ddof=1), "gain_mean": gains.mean(),
                        "gain_std": gains.std(ddof=1), "n": acc.count()})
    if "train_acc" in runs:
        out["train_acc_mean"] = runs.groupby("setting", sort=False)["train_acc"].mean() * 100
    return out


def gains(runs: pd.DataFrame, reference: str = "none") -> pd.DataFrame:
    """One row per run outside ``reference``: its accuracy gain over the reference run of the
    same seed, in percentage points (what the ablation figure draws)."""
    base = runs[runs.setting == reference].set_index("seed")["acc"]
    out = runs[runs.setting != reference].copy()
    out["gain"] = (out["acc"] - out["seed"].map(base)) * 100
    return out


def difference_matrix(pairs: pd.DataFrame, designs: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pairwise table as a square matrix of mean differences (row minus column, points)
    and a matching matrix of marks ("*" where the pair is resolved), for a heatmap."""
    designs = list(designs)
    diff = pd.DataFrame(np.nan, index=designs, columns=designs)
    mark = pd.DataFrame("", index=designs, columns=designs)
    for r in pairs.itertuples():
        diff.loc[r.a, r.b], diff.loc[r.b, r.a] = r.diff, -r.diff
        if r.resolved:
            mark.loc[r.a, r.b] = mark.loc[r.b, r.a] = "*"
    return diff, mark


def pairwise_text(pairs: pd.DataFrame, test: str, n_designs: int, n_seeds: int) -> str:
    """How the pairwise intervals are made, in words."""
    if test == "pooled":
        return (f"a Student-t interval whose seed-to-seed variance is pooled over all {n_designs} designs "
                f"({int(pairs['df'].iloc[0])} degrees of freedom, against {n_seeds - 1} for one pair alone: the usual "
                f"choice when every design has few seeds and their noise is alike).")
    return f"a paired Student-t interval over the per-seed differences ({n_seeds - 1} degrees of freedom)."


def resolved_text(pairs: pd.DataFrame) -> str:
    """The resolved pairs, the better design first."""
    resolved = [f"{r.a} > {r.b}" if r.diff > 0 else f"{r.b} > {r.a}" for r in pairs.itertuples() if r.resolved]
    return "resolved: " + ", ".join(resolved) if resolved else "no pair is resolved"
