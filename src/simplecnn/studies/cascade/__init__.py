"""Resolution cascades: models m_0..m_n at growing resolutions, an image leaving at the first
stage whose confidence reaches that stage's threshold (the last stage takes the rest).

Everything after training works on cached per-stage logits: a threshold map over a grid
of (δ_0, …, δ_{n-2}) is one broadcast over all threshold combinations and images, for any
number of stages. Expected cost follows the report's equation (2.2): an image pays the
MACs of every stage it reaches.

Thresholds are chosen on validation over the fine grid (the coarse map's thresholds and its
zoom's together) and scored once on test with bootstrap intervals over the test images;
every exit rule (score, calibration, stage subset) goes through the same path. The
report's own claim is restated in real MACs by ``report_cost_model``, without training.
"""

from __future__ import annotations

from simplecnn.core import params as P
from simplecnn.core.models import MODELS
from simplecnn.core.results import Headline
from simplecnn.studies.cascade.goals import (goal_check, goals_table, latency, mac_goal_reason, oracle_cost,
                                             speed_goal_reason, wall_time)
from simplecnn.studies.cascade.maps import (check_thresholds, choose_thresholds, classify, evaluate_thresholds,
                                            fine_grid, frontier_table, map_position, outcomes, pareto_front,
                                            point_outcomes, simulate, threshold_grid)
from simplecnn.studies.cascade.report import (REPORT_BASE, REPORT_CLAIMS, REPORT_REAL, REPORT_STAGES, feasible_range,
                                              report_cost_model, report_frame, report_lines, report_params,
                                              report_real_macs, report_values)
from simplecnn.studies.cascade.scores import (SCORES, ExitGate, calibration_frame, calibration_lines,
                                              calibration_table, exit_score,
                                              expected_calibration_error, fit_gates, fit_temperature, gate_features,
                                              interval, ranking_auc, ranking_table)
from simplecnn.studies.cascade.selection import (GATE, Reference, Variant, compare_accuracy, expected_cost, records,
                                                 score_variants, select, selection_stability, targets_from,
                                                 variant_inputs, variant_scorers, variants)
from simplecnn.studies.cascade.stages import Stage, plan, stage_macs, stage_params, train_stage

__all__ = [
    "GATE", "REPORT_BASE", "REPORT_CLAIMS", "REPORT_HEADLINE", "REPORT_REAL", "REPORT_STAGES", "SCORES", "ExitGate",
    "Reference", "Stage", "Variant", "calibration_frame", "calibration_lines", "calibration_table", "check_thresholds", "choose_thresholds", "classify",
    "compare_accuracy", "evaluate_thresholds", "exit_score", "expected_calibration_error", "expected_cost",
    "feasible_range", "fine_grid", "fit_gates", "fit_temperature", "frontier_table", "gate_features", "goal_check",
    "goals_table", "headline", "interval", "latency", "mac_goal_reason", "map_position", "oracle_cost", "outcomes",
    "pareto_front", "plan", "point_outcomes", "ranking_auc", "ranking_table", "records", "report_cost_model",
    "report_frame", "report_lines", "report_params", "report_real_macs", "report_values", "results_dict", "score_variants", "select", "selection_stability", "simulate",
    "speed_goal_reason", "stage_macs", "stage_params", "targets_from", "threshold_grid", "train_stage",
    "variant_inputs", "variant_scorers", "variants", "wall_time"]


PARAMETERS = {**P.COMMON, "dataset": P.dataset(), "label_smoothing": P.number(0, 1, high_open=True),
         "train_size": P.whole(2, optional=True), "extra_seeds": P.wholes(0, 0),
         "like": P.one_of([None, "cifar10", "imagenette"]), "grid_size": P.whole(2), "zoom_size": P.whole(2),
         "zoom_low": P.number(0, 1, high_open=True), "scores": P.Rule(lambda v: P.some_of(list(SCORES)).ok(v) and "max_prob" in v,
                                          f"a list of {list(SCORES)} holding max_prob (the report's score)"), "gate_folds": P.whole(2),
         "ece_bins": P.whole(1), "bootstrap_rounds": P.whole(10), "stability_rounds": P.whole(2),
         "bootstrap_seed": P.whole(0), "level": P.fraction(), "throughput_images": P.whole(1),
         "latency_images": P.whole(1), "timing_repeats": P.whole(1), "min_ladder_ratio": P.number(0, low_open=True),
         "goal_mid_cut": P.number(0, low_open=True), "goal_top_cut": P.number(0, low_open=True),
         "goal_speedup": P.number(0, low_open=True),
         "stages": P.Rule(lambda v: isinstance(v, list) and len(v) >= 2 and all(
             isinstance(s, dict) and {"model", "resolution"} <= set(s) and s["model"] in MODELS
             and isinstance(s["resolution"], int) and s["resolution"] >= 8 and s.get("width", 1.0) > 0
             and s.get("epochs", 1) >= 1 for s in v),
             f"a list of at least two stages, each a dict with a registered model (one of {sorted(MODELS)}), an "
             f"input resolution ≥ 8 px, a width > 0 and epochs ≥ 1")}
"""Every parameter's allowed values, checked before the chapter trains anything (``core.params``)."""

REPORT_HEADLINE = {  # the report's figure at the last (-1) and middle (-2) stage's accuracy, and its setting
    -1: ("top", "validation, parameter-count cost model (25.56 / 11.04), vs ResNet50@224 (called ResNet152)"),
    -2: ("mid", "validation, parameter-count cost model (21.80 / 7.15), vs ResNet34 (its parameter count)"),
}


def results_dict(setting: dict, specs: list[Stage], stage_table, temperatures: list[float], ladder: dict,
                 calibration: list[dict], gate_rows: list[dict], judged_targets: dict, table, full_224: dict,
                 ips: dict, lat: dict, speedup: dict, oracle: dict, goals: list[dict], report: dict,
                 seed_rows: list[dict]) -> dict:
    """The chapter's results json."""
    return {"setting": setting,
            "stages": {s.name: {"resolution": s.resolution, "width": s.width,
                                "macs": int(stage_table.loc[s.name, "macs"]),
                                "params": int(stage_table.loc[s.name, "params"]),
                                "val_acc": float(stage_table.loc[s.name, "val_acc"]),
                                "test_acc": float(stage_table.loc[s.name, "test_acc"]),
                                "train_s": float(stage_table.loc[s.name, "train_s"]), "temperature": t}
                       for s, t in zip(specs, temperatures)},
            "ladder": ladder, "calibration": calibration, "gate_auc": gate_rows,
            "targets": judged_targets["report rule"], "gate_targets": judged_targets.get("learned gate", {}),
            "variants": records(table), "full_224_macs": full_224, "images_per_s": ips, "latency_s": lat,
            "speedup": speedup, "oracle": oracle, "goals": goals, "report": report, "across_seeds": seed_rows}


def headline(results: dict) -> list[Headline]:
    """At the last and the middle stage's accuracy as targets (the report's two claims), with
    the report's exit rule: the cascade's test MAC cut against that stage at its own
    resolution (bootstrap CI over test images: this trained ladder; the report's figure beside
    it, not comparable: its cost model counts parameters and its reference is another model),
    its test accuracy and stability; the goals, across seeds where several ladders were
    trained; the ladder's steepness; calibration; timings (reported); and the report's own
    claims restated in real MACs (ranges)."""
    s = results["setting"]
    rows = []
    names = list(results["stages"])
    ci = f"{s['level']:.0%} bootstrap CI over test images (one trained ladder)"
    for ref in names[max(1, len(names) - 2):]:
        t = results["targets"].get(ref, {})
        if not t.get("reached", False):
            rows.append(Headline(f"cascade MAC cut at {ref}'s accuracy (×)", "not reached on validation",
                                 setting=f"{s['dataset']} validation, no threshold reaches {ref}'s accuracy",
                                 rule="check", status="not reached"))
            continue
        px = results["stages"][ref]["resolution"]
        d = t["acc_difference"]
        status = "matched" if d["matched"] else "not matched"
        where = (f"ptflops MACs per image, {s['dataset']} test ({s['n_test']:,} images); {ref} at its own {px} px; "
                 f"thresholds chosen on validation (fine grid); accuracy {status}: cascade − {ref} = "
                 f"{100 * d['value']:+.1f} points [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]")
        position = names.index(ref) - len(names)
        source, source_setting = None, ""
        if position in REPORT_HEADLINE:
            key, source_setting = REPORT_HEADLINE[position]
            source = REPORT_CLAIMS[key]["cut"]
        c = t["mac_cut"]
        rows.append(Headline(f"cascade MAC cut at {ref}'s accuracy (×)", c["value"], c["low"], c["high"], ci, where,
                             source, source_setting, rule="bootstrap", margin=0.3, better="higher"))
        rows.append(Headline(f"cascade accuracy at {ref}'s accuracy target", status, interval=ci, setting=where,
                             rule="check", status=status))
        a = t["test_acc"]
        rows.append(Headline(f"cascade test accuracy at {ref}'s accuracy target (%)", 100 * a["value"],
                             100 * a["low"], 100 * a["high"], ci,
                             f"top-1, {s['dataset']} test; {ref} itself: {100 * t['reference_test_acc']:.1f} %",
                             REPORT_CLAIMS[REPORT_HEADLINE[position][0]]["acc"] if position in REPORT_HEADLINE else None,
                             "validation accuracy of the report's chosen point, its own models" if position in
                             REPORT_HEADLINE else "", rule="bootstrap", margin=2.0, better="higher"))
        st = t.get("stability", {})
        if "mac_cut" in st:
            rows.append(Headline(f"cascade MAC cut at {ref}'s accuracy, re-selected on validation resamples (×)",
                                 st["mac_cut"]["median"], st["mac_cut"]["low"], st["mac_cut"]["high"],
                                 f"median and {s['level']:.0%} range over {st['resamples']} validation resamples",
                                 f"test MAC cut vs {ref} at {px} px; target unreached on "
                                 f"{st['unreached_share']:.0%} of resamples", rule="bootstrap", margin=0.3,
                                 better="higher"))
    for g in results.get("goals", []):
        if g["rule"] == "report rule" and not g["target"].startswith("speed"):
            rows.append(Headline(f"goal: {g['quantity']}, report rule", g["status"],
                                 interval=f"{g['value']:.2f}× (one trained ladder)", setting=g.get("reason", ""),
                                 goal=g["goal"], rule="check", status=g["status"]))
    for r in results.get("across_seeds", []):
        rows.append(Headline(f"MAC cut at {r['target']}'s accuracy across training seeds (×)", r["mean"], r["low"],
                             r["high"], r["covers"], f"report rule; goal {r['goal']:g}×: {r['status']}", goal=r["goal"],
                             rule="check", status=r["status"]))
    ladder = results.get("ladder")
    if ladder:
        rows.append(Headline("ladder: top stage's MACs ÷ first stage's (×)", ladder["ratio"], interval="exact count",
                             setting="ptflops MACs at each stage's own resolution", goal=ladder["goal"], rule="exact"))
        rows.append(Headline("ladder at least as steep as its goal", "met" if ladder["met"] else "NOT met",
                             goal=ladder["goal"], rule="check", status="met" if ladder["met"] else "NOT met"))
    top = names[-1]
    g = results.get("gate_targets", {}).get(top, {})
    if g.get("reached"):
        c, d = g["mac_cut"], g["acc_difference"]
        rows.append(Headline(f"cascade MAC cut at {top}'s accuracy, learned exit gate (×)", c["value"], c["low"],
                             c["high"], ci, f"ptflops MACs, {s['dataset']} test; logistic gate per stage trained on "
                             f"validation; accuracy {'matched' if d['matched'] else 'not matched'}", rule="bootstrap",
                             margin=0.3, better="higher"))
    for rule, sp in results.get("speedup", {}).items():
        for key, what in (("batched", "in batches"), ("one_image_mean", "one image at a time, mean latency")):
            rows.append(Headline(f"cascade wall-clock speed-up over {top}, {rule}, {what} (×)", sp[key],
                                 interval="one timing run", setting=f"{s['dataset']} test images, this run's machine "
                                 f"({s.get('latency_images', '?')} images one at a time); at {top}'s accuracy target",
                                 rule="report"))
    cal = results.get("calibration", [])
    if cal:
        e0, e1 = cal[-1]["test_ece_raw"], cal[-1]["test_ece_calibrated"]
        for e, what in ((e0, "raw"), (e1, "temperature-scaled (T fitted on validation)")):
            rows.append(Headline(f"top stage's test ECE, {what}", e["value"], e["low"], e["high"],
                                 f"{s['level']:.0%} percentiles of the resampled ECE over test images (ECE is biased "
                                 f"upward, so the interval may lie above the estimate)",
                                 f"{top}, {s['dataset']} test, {s.get('ece_bins', 15)} equal-width bins",
                                 rule="bootstrap", margin=0.02, better="lower"))
    rep = results["report"]
    for key, ref in (("mid", "resnet34@224"), ("top", "resnet50@224")):
        c = rep["claims"][key]
        low, high = c["real_cut_range"][ref]
        rows.append(Headline(f"report's §{c['section']} claim in real MACs: cut vs {ref} (×)", (low + high) / 2,
                             low, high, f"range over the stage shares its quoted {c['cost']} M allows; value: midpoint",
                             "ptflops MACs of full-width ResNet18@32, ResNet34@96, ResNet50@224 (10 classes) at "
                             "the report's stage shares; no training", c["cut"],
                             "validation, parameter-count cost model (not MACs)", rule="exact"))
    return rows
