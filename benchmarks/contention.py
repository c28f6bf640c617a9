"""Sharing the machine: one training epoch of a chapter alone and beside a competing
training process, per way of sharing the cores.

The worker trains design I of the limited chapter (width ×0.25, batch 256, bf16 autocast, as
the cpu profile does) for one epoch on 10,000 CIFAR-sized images and prints its seconds.
The competitor is the same training loop run without end (another book, a test suite). Each
process's setting is in its environment before torch loads:

- ``fixed``: every core, libgomp's default waiting (idle threads spin before they sleep);
- ``passive`` (``OMP_WAIT_POLICY=PASSIVE``) and ``spin10k`` (``GOMP_SPINCOUNT=10000``): idle
  threads sleep at once or soon;
- ``one``: one thread (``OMP_NUM_THREADS=1``);
- ``governed``: the training loop's ``core.sharing.ThreadGovernor`` (the book's choice):
  every core alone, the cores other processes leave when they load the machine.

    .venv/bin/python benchmarks/contention.py [--repeats 3] [--pairs governed:fixed fixed:fixed]

Prints, per (worker, competitor) pair, the median epoch seconds alone and beside the
competitor, and the slowdown. Run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

POLICIES = {"fixed": {"SIMPLECNN_SHARE": "0"}, "passive": {"OMP_WAIT_POLICY": "PASSIVE", "SIMPLECNN_SHARE": "0"},
            "spin10k": {"GOMP_SPINCOUNT": "10000", "SIMPLECNN_SHARE": "0"}, "one": {"OMP_NUM_THREADS": "1",
            "SIMPLECNN_SHARE": "0"}, "governed": {"SIMPLECNN_SHARE": "1"}}
CLEAN = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "SIMPLECNN_SHARE")


def train_epoch(images: int, forever: bool = False) -> None:
    """The worker (one epoch, prints its seconds) or, with ``forever``, the competitor."""
    import torch

    from simplecnn.core.data import ImageSet
    from simplecnn.core.train import TrainConfig, build_normalized, fit

    g = torch.Generator().manual_seed(0)
    data = ImageSet(torch.randint(0, 256, (images, 3, 32, 32), dtype=torch.uint8, generator=g),
                    torch.randint(0, 10, (images,), generator=g), [str(c) for c in range(10)])

    class Splits:  # what build_normalized reads
        train, num_classes = data, 10

    config = TrainConfig(epochs=1, batch_size=256, lr=0.4, cpu_bf16=True)
    while True:
        model = build_normalized("limited_I", Splits, {"width": 0.25}, 0)
        t0 = time.perf_counter()
        fit(model, data, config, label="contention")
        if not forever:
            print(f"{time.perf_counter() - t0:.3f}", flush=True)
            return


def run_worker(policy: str, images: int) -> float:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN} | POLICIES[policy]
    done = subprocess.run([sys.executable, __file__, "--worker", "--images", str(images)], env=env,
                          capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--competitor", action="store_true")
    parser.add_argument("--pairs", nargs="+", default=["fixed:fixed", "governed:fixed", "governed:governed",
                                                         "one:fixed", "passive:passive"],
                        help="worker:competitor waiting policies")
    args = parser.parse_args()
    if args.worker or args.competitor:
        return train_epoch(args.images, forever=args.competitor)
    print(f"one epoch of limited_I ×0.25 on {args.images:,} images, {os.cpu_count()} cores; median of {args.repeats}")
    print(f"{'worker':9s} {'competitor':10s} {'alone s':>8s} {'shared s':>9s} {'slowdown':>8s}")
    alone_cache: dict[str, float] = {}
    for pair in args.pairs:
        worker, rival = pair.split(":")
        if worker not in alone_cache:
            alone_cache[worker] = statistics.median(run_worker(worker, args.images) for _ in range(args.repeats))
        env = {k: v for k, v in os.environ.items() if k not in CLEAN} | POLICIES[rival]
        competitor = subprocess.Popen([sys.executable, __file__, "--competitor", "--images", str(args.images)],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(10)  # let it import and start training
            shared = statistics.median(run_worker(worker, args.images) for _ in range(args.repeats))
        finally:
            competitor.kill()
            competitor.wait()
        print(f"{worker:9s} {rival:10s} {alone_cache[worker]:8.1f} {shared:9.1f} {shared / alone_cache[worker]:7.1f}×",
              flush=True)


if __name__ == "__main__":
    main()
