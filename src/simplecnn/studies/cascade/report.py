"""The report's own claim restated in real MACs, without training: its cost model identified
(parameter counts × squared resolution ratio) and each quoted cost turned into the range of
stage shares it allows, over which the real ptflops MACs and cuts are intervals."""

from __future__ import annotations

import numpy as np

from simplecnn.core.complexity import macs
from simplecnn.core.models import build_model, count_params


REPORT_STAGES = (("resnet18", 32, 11.69, 0.24), ("resnet34", 96, 21.80, 4.00), ("resnet50", 224, 25.56, 25.56))
"""Table 2.1 of the report: model, resolution, "FLOPS_224 (M)" and "FLOPS_Res (M)" as printed."""

REPORT_BASE = 224  # the resolution its "FLOPS_224" refers to

REPORT_CLAIMS = {
    # §2.2.5: ResNet34 (88.92 %) reached at 89.0 % with 7.15 M, "3.0x less" = 21.80 / 7.15
    "mid": {"section": "2.2.5", "cost": 7.15, "digits": 2, "reference": "resnet34", "reference_figure": 21.80,
            "cut": 3.0, "acc": 89.0, "reference_acc": 88.92},
    # §2.2.6: "ResNet152" (the figures are ResNet50's, 25.56 / 11.04 = 2.3) at 89.66 %
    "top": {"section": "2.2.6", "cost": 11.04, "digits": 2, "reference": "resnet50", "reference_figure": 25.56,
            "cut": 2.3, "acc": 89.66, "reference_acc": 89.63},
    # §2.2.6: "sacrificing between 1 to 0.1 %" wins "from 4.4x to 3.2x": cost = 25.56 / cut
    "top_minus_1pt": {"section": "2.2.6", "cut": 4.4, "reference": "resnet50", "reference_figure": 25.56},
    "top_minus_0.1pt": {"section": "2.2.6", "cut": 3.2, "reference": "resnet50", "reference_figure": 25.56},
}

REPORT_REAL = {"resnet18@32": ("resnet18", 32), "resnet34@96": ("resnet34", 96), "resnet50@224": ("resnet50", 224),
               "resnet34@224": ("resnet34", 224)}
"""Full-width models whose ptflops MACs restate the report: its stages and its references."""


def report_real_macs(num_classes: int = 10) -> dict[str, int]:
    """ptflops MACs per image of the report's stages and references (full width, the
    project's ImageNet-stem ResNets, ``num_classes`` outputs: Imagenette's ten)."""
    return {k: macs(build_model(m, num_classes), px) for k, (m, px) in REPORT_REAL.items()}


def report_params(num_classes: int = 1000) -> dict[str, int]:
    """Parameter counts of the report's models with an ImageNet head (1000 classes): the
    figures its "FLOPS_224" column holds."""
    return {m: count_params(build_model(m, num_classes)) for m, _, _, _ in REPORT_STAGES}


def feasible_range(stage_cost: list[float], total: tuple[float, float], objective: list[float]) -> tuple[float, float]:
    """Minimum and maximum of ``objective · (1, r_1, …, r_{n-1})`` over the shares r_p of
    images reaching stage p (1 ≥ r_1 ≥ … ≥ r_{n-1} ≥ 0) whose expected cost
    ``stage_cost · (1, r_1, …)`` lies in ``total`` (equation 2.2). Infeasible: NaNs."""
    from scipy.optimize import linprog

    k = len(stage_cost) - 1
    c = np.asarray(objective[1:], dtype=np.float64)
    order = np.zeros((k, k))  # r_{p+1} - r_p <= 0
    for p in range(k - 1):
        order[p, p], order[p, p + 1] = -1.0, 1.0
    a = np.vstack([order[:k - 1], np.asarray(stage_cost[1:])[None], -np.asarray(stage_cost[1:])[None]])
    b = np.r_[np.zeros(k - 1), total[1] - stage_cost[0], -(total[0] - stage_cost[0])]
    ends = []
    for sign in (1.0, -1.0):
        res = linprog(sign * c, A_ub=a, b_ub=b, bounds=[(0.0, 1.0)] * k, method="highs")
        if not res.success:
            return float("nan"), float("nan")
        ends.append(objective[0] + float(c @ res.x))
    return ends[0], ends[1]


def report_cost_model(real_macs: dict[str, int], params_1000: dict[str, int] | None = None) -> dict:
    """The report's cost model identified and its claims restated in real MACs.

    Its "FLOPs" of a stage are the model's parameter count (ImageNet head) times
    (resolution / 224)²: ``reproduces`` checks that against Table 2.1's printed figures to
    their two decimals, and ``params_match`` that the project's builders count the same
    parameters. Each claim's quoted cost (known to its rounding) fixes the shares of images
    reaching each stage only to a range; over that range, the cascade's real ptflops MACs
    and its MAC cut against the full-width references at 224 px are intervals."""
    model = {m: fig * (px / REPORT_BASE) ** 2 for m, px, fig, _ in REPORT_STAGES}
    out = {"cost_model": "parameters (M, 1000-class head) × (resolution / 224)²",
           "stages": {f"{m}@{px}": {"flops_224_printed": fig, "flops_res_printed": printed, "cost_model": model[m],
                                    "real_macs": int(real_macs[f"{m}@{px}"])} for m, px, fig, printed in REPORT_STAGES},
           "reproduces": all(round(model[m], 2) == printed for m, _, _, printed in REPORT_STAGES)}
    if params_1000 is not None:
        out["params_1000"] = {m: int(params_1000[m]) for m, _, _, _ in REPORT_STAGES}
        out["params_match"] = all(round(params_1000[m] / 1e6, 2) == fig for m, _, fig, _ in REPORT_STAGES)
    names = [f"{m}@{px}" for m, px, _, _ in REPORT_STAGES]
    cost = [model[m] for m, _, _, _ in REPORT_STAGES]
    real = [float(real_macs[n]) for n in names]
    references = {"resnet34@224": float(real_macs["resnet34@224"]), "resnet50@224": float(real_macs["resnet50@224"])}
    out["references_real_macs"] = {k: int(v) for k, v in references.items()}
    claims = {}
    for key, claim in REPORT_CLAIMS.items():
        c = dict(claim)
        if "cost" in c:  # a quoted cost, known to half a unit of its last digit
            half = 0.5 * 10 ** -c["digits"]
            total = (c["cost"] - half, c["cost"] + half)
            c["cut_recomputed"] = c["reference_figure"] / c["cost"]
            c["cut_reproduced"] = round(c["cut_recomputed"], 1) == c["cut"]
        else:  # a quoted cut, known to its one decimal
            total = (c["reference_figure"] / (c["cut"] + 0.05), c["reference_figure"] / (c["cut"] - 0.05))
        c["cost_range"] = list(total)
        k = len(cost) - 1
        reach = [feasible_range(cost, total, [0.0] + [1.0 if q == p else 0.0 for q in range(k)]) for p in range(k)]
        c["reach_range"] = {names[p + 1]: list(reach[p]) for p in range(k)}
        exits = []
        for p in range(k + 1):  # exit share x_p = r_p - r_{p+1} (r_0 = 1, r_{n} = 0)
            coef = [0.0] * (k + 1)
            coef[p] = 1.0
            if p < k:
                coef[p + 1] = -1.0
            exits.append(list(feasible_range(cost, total, coef)))
        c["exit_range"] = dict(zip(names, exits))
        low, high = feasible_range(cost, total, real)
        c["real_macs_range"] = [low, high]
        c["real_cut_range"] = {r: [m / high, m / low] for r, m in references.items()}
        claims[key] = c
    out["claims"] = claims
    return out


def report_values(report: dict) -> dict[str, object]:
    """The glue of the report's restated claims for the prose."""
    out = {"report_cost_model_ok": "reproduces" if report["reproduces"] else "does NOT reproduce"}
    for key in ("mid", "top"):
        c = report["claims"][key]
        out |= {f"report_{key}_cut": c["cut"], f"report_{key}_cost": c["cost"],
                f"report_{key}_figure": c["reference_figure"],
                f"real_{key}_r50_low": c["reach_range"]["resnet50@224"][0],
                f"real_{key}_r50_high": c["reach_range"]["resnet50@224"][1]}
        for ref in ("resnet34@224", "resnet50@224"):
            low, high = c["real_cut_range"][ref]
            out |= {f"real_{key}_{ref[:8]}_low": low, f"real_{key}_{ref[:8]}_high": high}
    return out


def report_lines(report: dict) -> list[str]:
    """The printed checks of the report's cost model and quoted cuts."""
    lines = [f"check: parameters × (resolution / 224)² {'reproduces' if report['reproduces'] else 'does NOT reproduce'}"
             " Table 2.1's FLOPS_Res column to its two decimals",
             f"check: the project's ResNets with a 1000-class head have "
             f"{'the same' if report.get('params_match') else 'OTHER'} parameter counts (M, two decimals) as the "
             f"FLOPS_224 column"]
    for c in report["claims"].values():
        if "cut_reproduced" in c:
            lines.append(f"check: §{c['section']} {c['reference_figure']} / {c['cost']} = {c['cut_recomputed']:.3f}, "
                         f"quoted {c['cut']}× ({'reproduced' if c['cut_reproduced'] else 'NOT reproduced'})")
    return lines


def report_frame(report: dict):
    """The restated claims as a table: quoted cut, cost range, share reaching the top model,
    real MACs and real cuts (ranges)."""
    import pandas as pd
    return pd.DataFrame([{"claim": f"§{c['section']} {k}", "quoted cut": c["cut"],
                          "cost range (report units)": f"{c['cost_range'][0]:.3f}–{c['cost_range'][1]:.3f}",
                          "share reaching ResNet50@224": "{:.3f}–{:.3f}".format(*c["reach_range"]["resnet50@224"]),
                          "real GMACs": "{:.3f}–{:.3f}".format(*(np.array(c["real_macs_range"]) / 1e9)),
                          **{f"real cut vs {r}": "{:.2f}–{:.2f}".format(*c["real_cut_range"][r])
                             for r in ("resnet34@224", "resnet50@224")}}
                         for k, c in report["claims"].items()]).set_index("claim")
