"""Expected training hours of a profile's chapters, from img/s measured on this device.

Each chapter's training loops are read from the profile's parameters (models, widths,
resolutions, batches, epochs, seeds, image counts, offline copies); every distinct model is
timed for a few SGD steps (``core.complexity.train_images_per_s``, bf16 autocast as the
chapters train) and the hours are images seen / img/s, summed per chapter. Evaluation,
attribution and timing passes are not counted (minutes, not hours, in every profile).
Run it on the machine the profile is meant for: on this 2-core CPU it says what not to do.

    .venv/bin/python benchmarks/profile_hours.py [--profile paper] [--batch-cap 16] [--steps 2]

``--batch-cap`` times large batches at a smaller one (a CPU's img/s barely depends on the
batch beyond a few dozen images; a GPU's does, so leave it off there).
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import torch

from simplecnn.core.complexity import train_images_per_s
from simplecnn.core.device import resolve_device
from simplecnn.core.models import build_model
from simplecnn.core.recipes import recipe
from simplecnn.pipeline import registry, runner
from simplecnn.studies import limited

CIFAR_TRAIN, IMAGENETTE_TRAIN = 45_000, 9_469  # training split sizes (validation held out)


def loops(profile: str) -> list[dict]:
    """One row per training run of each chapter: model, its arguments, px, batch, images seen."""
    rows = []
    p = runner.parameters(registry.get("limited_resnets").path, profile)
    n = p["train_size"] or CIFAR_TRAIN
    copies = p["offline_copies"] if p["main_augmentation"] == "all" else 0
    for d in p["designs"]:
        rows += [{"chapter": "limited_resnets", "model": f"limited_{d}", "kwargs": {"width": p["width"]}, "px": 32,
                  "batch": p["batch_size"], "images": n * (1 + copies) * p["epochs"]}] * len(p["seeds"])
    settings = limited.ablation_settings(leave_one_out=p["ablation_leave_one_out"],
                                         offline_copies=p["ablation_offline_copies"], epochs=p["ablation_epochs"])
    m = p["ablation_train_size"] or CIFAR_TRAIN
    for s in settings.values():
        rows += [{"chapter": "limited_resnets", "model": f"limited_{p['ablation_design']}",
                  "kwargs": {"width": p["ablation_width"]}, "px": 32, "batch": p["ablation_batch_size"],
                  "images": m * (1 + s.offline) * (s.epochs or p["ablation_epochs"])}] * len(p["seeds"])
    p = runner.parameters(registry.get("patches").path, profile)
    n = p["train_size"] or IMAGENETTE_TRAIN
    b = p["bagnet"]
    retrained = [p["heatmap_q"]] if p.get("background_refit", True) and "bagnet" in p["methods"] else []
    for q in p["qs"] + retrained:  # the refit trains BagNet-q once more, on object windows (same cost per step)
        rows.append({"chapter": "patches", "model": "bagnet", "kwargs": {"q": q, "width": b["width"],
                     "blocks": b["blocks"]}, "px": p["resolution"], "batch": b["batch_size"], "images": n * b["epochs"]})
    ceiling = recipe(p["ceiling_recipe"], p["dataset"])
    rows.append({"chapter": "patches", "model": ceiling.model, "kwargs": ceiling.model_kwargs, "px": p["resolution"],
                 "batch": ceiling.config.batch_size, "images": n * p["ceiling_epochs"]})
    p = runner.parameters(registry.get("cascade").path, profile)
    n = p["train_size"] or IMAGENETTE_TRAIN
    for s in p["stages"]:
        rows.append({"chapter": "cascade", "model": s["model"], "kwargs": {"width": s.get("width", 1.0)},
                     "px": s["resolution"], "batch": s["batch_size"], "images": n * s["epochs"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-cap", type=int, default=None, help="time at most this batch (CPU)")
    parser.add_argument("--steps", type=int, default=2, help="timed SGD steps per model (after one warm-up)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    rates: dict[str, float] = {}
    hours: dict[str, float] = defaultdict(float)
    print(f"profile {args.profile} on {device} ({torch.get_num_threads()} threads)")
    for row in loops(args.profile):
        key = f"{row['model']} {row['kwargs']} @{row['px']} batch {row['batch']}"
        if key not in rates:
            batch = min(row["batch"], args.batch_cap or row["batch"])
            torch.manual_seed(0)
            model = build_model(row["model"], 10, **row["kwargs"])
            with torch.autocast(device.type, dtype=torch.bfloat16):
                rates[key] = train_images_per_s(model, batch, row["px"], 10, steps=args.steps, device=device)
            print(f"  {key:70s} {rates[key]:9.1f} img/s (timed at batch {batch})", flush=True)
        hours[row["chapter"]] += row["images"] / rates[key] / 3600
    for chapter, h in hours.items():
        print(f"{chapter:16s} {h:9.1f} h of training")
    print(f"{'total':16s} {sum(hours.values()):9.1f} h")


if __name__ == "__main__":
    main()
