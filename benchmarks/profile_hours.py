"""Expected training hours of a profile's chapters, from img/s measured on this device.

Each chapter's training loops come from its plan (``studies.<study>.plan``: models, widths,
resolutions, batches and the images each loop sees, read from the profile's parameters);
every distinct model is timed for a few SGD steps in bf16 autocast, as the chapters train
(``pipeline.estimate.loop_rate``, cached per device), and the hours are images seen over
img/s, summed per chapter. Evaluation, attribution and timing passes are not counted
(minutes, not hours, in every profile). The runner prints the same figure before a run that
has no recorded cold cost. Run it on the machine the profile is meant for: on a 2-core CPU
it says what not to do. ``--save`` writes the figures to ``results/<profile>/estimate.json``,
where the book's costs chapter shows them beside the device they were measured on.

    .venv/bin/python benchmarks/profile_hours.py [--profile paper] [--save]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

import torch

from simplecnn.core.device import device_description, resolve_device
from simplecnn.core.io import atomic_write_bytes
from simplecnn.core.paths import results_root
from simplecnn.pipeline import estimate, proof


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--save", action="store_true", help="write results/<profile>/estimate.json")
    args = parser.parse_args()
    device = resolve_device(args.device)
    hours: dict[str, float] = defaultdict(float)
    print(f"profile {args.profile} on {device} ({torch.get_num_threads()} threads); CPU batches timed at "
          f"{estimate.CPU_BATCH_CAP} at most")
    for study, loops in proof.profile_plans(args.profile).items():
        for loop in loops:
            if loop.trains:
                rate = estimate.loop_rate(loop, device=args.device)
                hours[study] += loop.images / rate / 3600
                print(f"  {study:16s} {loop.what[:48]:48s} {loop.resolution:4d} px batch {loop.batch:4d} "
                      f"{rate:9.1f} img/s", flush=True)
    for chapter, h in hours.items():
        print(f"{chapter:16s} {h:9.2f} h of training")
    print(f"{'total':16s} {sum(hours.values()):9.2f} h")
    if args.save:
        path = results_root() / args.profile / "estimate.json"
        doc = {"profile": args.profile, "device": device_description(device), "threads": torch.get_num_threads(),
               "torch": torch.__version__, "made": time.strftime("%Y-%m-%dT%H:%M:%S"),
               "what": "training hours: images each loop sees / img/s measured here (evaluation not counted)",
               "hours": dict(hours), "total_h": sum(hours.values())}
        atomic_write_bytes(path, (json.dumps(doc, indent=1) + "\n").encode())
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
