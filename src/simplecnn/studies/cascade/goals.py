"""The goals the chapter sets itself, judged: MAC cuts at the middle and top stage's accuracy
against what exits that know the right answers could reach (the oracle), and wall-clock
speed-ups; and the timing that measures them."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch


def oracle_cost(correct: list[torch.Tensor], stage_cost: list[float], target: float) -> float | None:
    """The least expected cost per image at which exits that *know* which predictions are
    right reach accuracy ``target`` (None: not even then): an image counted right leaves at
    the first stage that gets it right and pays every stage up to it; the others leave at the
    first stage. No exit rule over these stages can be cheaper, so a goal beyond the
    oracle's cut is out of reach of the ladder itself, not of the rule."""
    ok = torch.stack([c.bool() for c in correct]).numpy()  # stages × N
    n, paid = ok.shape[1], np.cumsum(np.asarray(stage_cost, dtype=np.float64))
    rightable = ok.any(0)
    cost_right = paid[np.argmax(ok, 0)][rightable]
    needed = int(np.ceil(target * n - 1e-6))
    if needed > len(cost_right):
        return None
    kept = np.sort(cost_right)[:max(needed, 0)]
    return float((kept.sum() + (n - len(kept)) * stage_cost[0]) / n)


def goal_check(quantity: str, value: float, goal: float, low: float | None = None, high: float | None = None,
               matched: bool | None = None) -> dict:
    """A goal ``value ≥ goal`` judged on its measured value: "met" or "NOT met", whether the
    interval lies wholly on one side (``resolved``), and, where the value is a cut at an
    accuracy target, whether that accuracy was matched (a cut at a lower accuracy does not
    meet a goal stated at that accuracy)."""
    value = float(value)
    met = bool(np.isfinite(value) and value >= goal and matched is not False)
    resolved = None if low is None or high is None else bool(low >= goal or high < goal)
    out = {"quantity": quantity, "value": value, "goal": float(goal), "met": met, "status": "met" if met else "NOT met",
           "resolved": resolved}
    if low is not None:
        out.update(low=float(low), high=float(high))
    if matched is not None:
        out["matched"] = bool(matched)
    return out


def mac_goal_reason(cut: float | None, oracle_cut: float | None, goal: float, matched: bool | None = None) -> str:
    """Why a MAC-cut goal is (not) met, in one sentence, from the measured cut and the
    oracle's (``oracle_cost``) on the same stages."""
    if cut is None or not np.isfinite(cut):
        return "no threshold reached the target accuracy on validation"
    if matched is False:
        return f"the chosen point's test accuracy falls short of the target (cut {cut:.2f}× at a lower accuracy)"
    if cut >= goal:
        return f"cut {cut:.2f}× ≥ {goal:g}×"
    if oracle_cut is None or oracle_cut < goal:
        bound = "none" if oracle_cut is None else f"{oracle_cut:.2f}×"
        return (f"cut {cut:.2f}× < {goal:g}×, and even exits that know which predictions are right would reach only "
                f"{bound}: the ladder's stages are too close in accuracy for their cost gap")
    return (f"cut {cut:.2f}× < {goal:g}× although oracle exits would reach {oracle_cut:.2f}×: the exit rule cannot "
            f"tell right from wrong predictions well enough")


def speed_goal_reason(speedup: float, mac_cut: float, goal: float) -> str:
    """Why a wall-clock goal is (not) met: time can fall short of the MACs saved, since
    small stages do fewer MACs per second and every stage call pays a fixed overhead."""
    if speedup >= goal:
        return f"speed-up {speedup:.2f}× ≥ {goal:g}×"
    if mac_cut < goal:
        return f"speed-up {speedup:.2f}× < {goal:g}×; the MACs themselves fall only {mac_cut:.2f}×"
    return (f"speed-up {speedup:.2f}× < {goal:g}× although the MACs fall {mac_cut:.2f}×: the small stages' lower MACs "
            f"per second and each stage call's fixed overhead eat the saving")


def goals_table(targets: dict[str, dict[str, dict]], oracle: dict[str, dict], speedup: dict[str, dict],
                mid: str, top: str, goal_mid: float, goal_top: float, goal_speed: float) -> list[dict]:
    """Every goal of the chapter judged for every declared rule (``targets``: rule label ->
    ``targets_from`` rows): the MAC cut at the ``mid`` and ``top`` stage's accuracy, with
    the oracle's cut on the same stages (``oracle_cost``) and the reason, and the measured
    wall-clock speed-ups over ``top`` (``speedup``: rule -> batched / one_image_mean)."""
    goals = []
    for label, tg in targets.items():
        for key, ref, goal in (("mid", mid, goal_mid), ("top", top, goal_top)):
            t = tg.get(ref, {})
            reached = bool(t.get("reached"))
            c = t["mac_cut"] if reached else {"value": float("nan"), "low": None, "high": None}
            matched = t["acc_difference"]["matched"] if reached else None
            o = oracle.get(ref, {}).get("cut")
            g = goal_check(f"MAC cut at {ref}'s accuracy (×)", c["value"], goal, c["low"], c["high"], matched)
            goals.append({**g, "rule": label, "target": key, "oracle_cut": o,
                          "reason": mac_goal_reason(c["value"] if reached else None, o, goal, matched)})
        if label in speedup and tg.get(top, {}).get("reached"):
            cut = tg[top]["mac_cut"]["value"]
            for key, field_, what in (("batched", "batched", "in batches"),
                                      ("one", "one_image_mean", "one image at a time (mean latency)")):
                value = speedup[label][field_]
                goals.append({**goal_check(f"wall-clock speed-up over {top}, {what} (×)", value, goal_speed),
                              "rule": label, "target": f"speed_{key}", "mac_cut": cut,
                              "reason": speed_goal_reason(value, cut, goal_speed)})
    return goals


def wall_time(fn: Callable[[], object], repeats: int = 1) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def latency(run: Callable[[int], object], n: int, warmup: int = 3, percentiles: tuple[float, ...] = (50, 95)) -> dict:
    """Per-call latency in seconds of ``run(i)`` for i = 0 … n-1 (e.g. image i at batch 1),
    after ``warmup`` untimed calls: the mean (what throughput at batch 1 pays) and the
    percentiles, keyed ``p50``, ``p95`` …"""
    if n < 1:
        raise ValueError(f"latency needs at least one call, got n={n}")
    for i in range(min(warmup, n)):
        run(i)
    times = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        run(i)
        times[i] = time.perf_counter() - t0
    return {"n": int(n), "mean": float(times.mean()), "min": float(times.min()), "max": float(times.max()),
            **{f"p{q:g}": float(np.percentile(times, q)) for q in percentiles}}


def oracles(test_correct: list[torch.Tensor], stage_cost: list[float], references) -> dict[str, dict]:
    """Per reference, the cheapest cascade of these stages whose exits know which
    predictions are right, at the reference's test accuracy (``oracle_cost``) and its cut."""
    out = {}
    for ref in references:
        cost = oracle_cost(test_correct, stage_cost, float(ref.test_correct.float().mean()))
        out[ref.name] = {"cost": cost, "cut": None if cost is None else ref.macs / cost}
    return out


def goal_lines(goals: list[dict]) -> list[str]:
    """The printed check of every goal."""
    lines = []
    for g in goals:
        extra = f" [{g['low']:.2f}, {g['high']:.2f}]" if "low" in g else ""
        clear = "" if g["resolved"] is None else (", resolved" if g["resolved"] else ", interval straddles the goal")
        lines.append(f"check: {g['rule']}: {g['quantity']} = {g['value']:.2f}{extra} (goal ≥ {g['goal']:g}) -> "
                     f"{g['status']}{clear}{'; ' + g['reason'] if 'reason' in g else ''}")
    return lines


def goal_values(goals: list[dict], rule: str = "report rule") -> dict[str, str]:
    """The glue of each goal of ``rule`` for the prose: ``goal_<target>_status`` and
    ``_reason``; speed goals that were not timed say so."""
    out = {}
    for g in goals:
        if g["rule"] == rule:
            out[f"goal_{g['target']}_status"] = g["status"]
            if "reason" in g:
                out[f"goal_{g['target']}_reason"] = g["reason"]
    for key in ("batched", "one"):
        out.setdefault(f"goal_speed_{key}_status", "NOT met")
        out.setdefault(f"goal_speed_{key}_reason", "not timed: no threshold reached the target")
    return out


def time_cascades(models: list, images: list[torch.Tensor], names: list[str], deployed: dict[str, tuple], n: int,
                  n_lat: int, repeats: int, top: str) -> tuple[dict, dict, dict]:
    """Images/s in batches of 256 and per-image latency (one at a time) of every single model
    and every deployed cascade (label -> (models, images, thresholds, exit scorers)), and the
    cascades' speed-ups over the ``top`` stage alone."""
    from simplecnn.core.train import predict
    from simplecnn.studies.cascade.maps import classify
    ips = {name: n / wall_time(lambda m=m, x=x: predict(m, x[:n], batch_size=256), repeats)
           for name, m, x in zip(names, models, images)}
    lat = {name: latency(lambda i, m=m, x=x: predict(m, x[i:i + 1], batch_size=1), n_lat)
           for name, m, x in zip(names, models, images)}
    for label, (ms, xs, ds, fs) in deployed.items():
        ips[label] = n / wall_time(lambda: classify(ms, [x[:n] for x in xs], ds, fs), repeats)
        lat[label] = latency(lambda i: classify(ms, [x[i:i + 1] for x in xs], ds, fs, batch_size=1), n_lat)
    speedup = {label: {"batched": ips[label] / ips[top], "one_image_mean": lat[top]["mean"] / lat[label]["mean"],
                       "one_image_p50": lat[top]["p50"] / lat[label]["p50"]} for label in deployed}
    return ips, lat, speedup
