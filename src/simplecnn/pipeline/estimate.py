"""How long a chapter will take, said before it runs.

From the last run with the same parameters: its wall time, adjusted by what the cache holds
now (the own seconds every entry it computed or loaded recorded, ``core.cache``), so the
figure is right for an empty cache, a warm one, and anything between. Without such a run: an estimate from the chapter's
plan (``core.plan``): the images each training loop sees over the training images/s
measured here for its model, batch and resolution (bf16 autocast, as the chapters train;
cached per device), plus what evaluation and a kernel cost. ``benchmarks/profile_hours.py``
prints the same estimate per chapter.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from simplecnn.core.cache import MANIFEST, Cache
from simplecnn.core.complexity import train_images_per_s
from simplecnn.core.device import device_description, resolve_device
from simplecnn.core.plan import Loop
from simplecnn.pipeline import registry

OVERHEAD_S = 30.0  # a kernel's start, imports and data loading from the cache
EVALUATION = 1.15  # evaluation passes on top of training, as measured on the cpu profile
CPU_BATCH_CAP = 128  # img/s of a training step on 2 cores, bf16, batch 32 / 128 / 256 (2026-12): limited I at
# 32 px 682 / 1222 / 1089, IIa 601 / 698 / 763, ResNet-18 ×0.5 at 64 px 546 / 917 / 1035, against 1417, 849
# and 907 in the cpu book's own runs: timed at 32 the limited chapter was announced at 1 h 20 min and took 34
# min of wall time (45.5 min cold with the ablation's cached models).


def recorded_seconds(study: str, params: dict, folders: list[Path], cache: Cache | None = None,
                     seen: set[str] | None = None) -> float | None:
    """What the last run of ``study`` with these parameters says this run will take: its
    wall time, less the computations it made whose entries the cache now holds, plus those
    it loaded that the cache no longer holds (each entry's own seconds, counted once per book
    run: ``seen`` collects what earlier chapters of this run will already have computed).
    Without ``cache`` (or for results without entry lists): its recorded cold cost."""
    same = json.dumps(params, sort_keys=True, default=str)
    for folder in folders:
        path = Path(folder) / str(params["profile"]) / f"{study}.json"
        if not path.exists():
            continue
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # unreadable here: another folder may still know
        p = doc.get("provenance", {})
        if p.get("cold_seconds") is None or json.dumps(doc.get("params"), sort_keys=True, default=str) != same:
            continue
        entries = p.get("cache")
        if cache is None or entries is None:
            return float(p["cold_seconds"])
        seen = set() if seen is None else seen
        held = {name for name in (*entries["computed"], *entries["loaded"]) if (cache.root / name / MANIFEST).exists()}
        seconds = float(p["wall_time_s"]) - sum(s for name, s in entries["computed"].items() if name in held)
        seconds += sum(s for name, s in entries["loaded"].items() if name not in held and name not in seen)
        seen.update(entries["computed"], entries["loaded"])
        return max(seconds, OVERHEAD_S)
    return None


def loop_rate(loop: Loop, cache: Cache | None = None, device: str = "auto", steps: int = 2) -> float:
    """Training images/s of ``loop``'s model here (bf16 autocast), cached per device."""
    dev = resolve_device(device)
    batch = min(loop.batch, CPU_BATCH_CAP) if dev.type == "cpu" else loop.batch
    spec = {"loop": repr(loop.key()), "batch": batch, "device": device_description(dev), "torch": torch.__version__}

    def measure() -> float:
        torch.manual_seed(0)
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            return train_images_per_s(loop.build(), batch, loop.resolution, max(loop.classes, 2), steps=steps,
                                      device=dev)
    module = loop.builder.split(":")[0].removeprefix("simplecnn.")
    return float((cache or Cache()).get_or_compute("rate", spec, measure, code=("core.complexity", module)))


def plan_of(study: str, params: dict, upstream: dict[str, dict]) -> list[Loop]:
    """The chapter's loops (its study module's ``plan``)."""
    return registry.get(study).load().plan(params, upstream)


def estimated_seconds(study: str, params: dict, upstream: dict[str, dict], cache: Cache | None = None) -> float:
    """Training images over measured img/s for every loop that trains, with evaluation and
    a kernel's overhead on top."""
    training = sum(loop.images / loop_rate(loop, cache) for loop in plan_of(study, params, upstream) if loop.trains)
    return OVERHEAD_S + EVALUATION * training


def expected(study: str, params: dict, folders: list[Path], upstream: dict[str, dict], cache: Cache | None = None,
             seen: set[str] | None = None, measure: bool = True) -> tuple[float, str]:
    """Seconds ``study`` is expected to take here, and where the figure comes from. Without
    ``measure`` (a dry run, whose models' speed is not the point), no img/s is measured."""
    recorded = recorded_seconds(study, params, folders, cache, seen)
    if recorded is not None:
        return recorded, "the last run with these parameters, less what the cache now holds"
    if not measure:
        return OVERHEAD_S, "not estimated (dry run)"
    return estimated_seconds(study, params, upstream, cache), "estimate: training images ÷ img/s measured here"
