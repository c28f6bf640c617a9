"""Accuracy against training time: the plain recipe against the fast one, epoch by epoch.

For each data set and recipe (``simplecnn.core.recipes``) and seed, trains from scratch on the
cached uint8 tensors and prints one row per epoch: cumulative training seconds and test
accuracy (the test curve is for this benchmark only; nothing is selected on it). The
summary gives each recipe's final accuracy (mean ± std over seeds), its whole-run time
(model set-up, whitening, training, final evaluation; the per-epoch test evaluations of
the curve excluded) and the speed-up: how much sooner the fast recipe reaches the plain
recipe's final accuracy.

    .venv/bin/python benchmarks/recipes.py --datasets cifar10 imagenette --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from simplecnn.core.data import load_dataset
from simplecnn.core.metrics import accuracy
from simplecnn.core.recipes import recipe
from simplecnn.core.train import build_normalized, fit, predict

RESOLUTION = {"cifar10": 32, "imagenette": 64}


def run(dataset: str, name: str, seed: int, epochs: int | None) -> dict:
    data = load_dataset(dataset, RESOLUTION[dataset])
    r = recipe(name, dataset, seed=seed, **({"epochs": epochs} if epochs else {}))
    start = time.perf_counter()
    model = build_normalized(r.model, data, r.model_kwargs, seed, r.config.whiten)
    setup_s = time.perf_counter() - start
    history = fit(model, data.train, r.config, val=data.test)
    t0 = time.perf_counter()
    final = accuracy(predict(model, data.test.images, tta=r.config.tta), data.test.labels)
    final_eval_s = time.perf_counter() - t0
    for row in history:
        print(f"{dataset:<11} {name:<6} seed {seed}  epoch {row['epoch']:>3}  train {row['elapsed_s']:7.1f} s"
              f"  test acc {row['val_acc']:.4f}", flush=True)
    wall_s = setup_s + history[-1]["elapsed_s"] + final_eval_s
    print(f"{dataset:<11} {name:<6} seed {seed}  final test acc {final:.4f}, whole run {wall_s / 60:.2f} min", flush=True)
    return {"history": history, "acc": final, "wall_s": wall_s}


def time_to_reach(history: list[dict], target: float) -> float | None:
    return next((row["elapsed_s"] for row in history if row["val_acc"] >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["cifar10", "imagenette"], choices=sorted(RESOLUTION))
    parser.add_argument("--recipes", nargs="+", default=["plain", "fast"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--plain-seeds", nargs="+", type=int, default=None,
                        help="seeds of the plain baseline (default: --seeds)")
    parser.add_argument("--epochs", type=int, default=None, help="override every recipe's epochs")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for dataset in args.datasets:
        summary = []
        runs = {name: [run(dataset, name, s, args.epochs)
                       for s in (args.plain_seeds or args.seeds if name == "plain" else args.seeds)]
                for name in args.recipes}
        for name, rs in runs.items():
            accs = [r["acc"] for r in rs]
            summary.append(f"{dataset:<11} {name:<6} test acc {statistics.mean(accs):.4f} ± "
                           f"{statistics.pstdev(accs):.4f} over {len(rs)} seed(s), whole run "
                           f"{statistics.mean(r['wall_s'] for r in rs) / 60:.2f} min")
        if {"plain", "fast"} <= set(runs):
            target = statistics.mean(r["acc"] for r in runs["plain"])
            plain_s = statistics.mean(r["history"][-1]["elapsed_s"] for r in runs["plain"])
            reach = [time_to_reach(r["history"], target) for r in runs["fast"]]
            if all(t is not None for t in reach):
                summary.append(f"{dataset:<11} fast reaches plain's {target:.4f} after {statistics.mean(reach):.0f} s "
                               f"of training against plain's {plain_s:.0f} s: {plain_s / statistics.mean(reach):.1f}×")
            else:
                summary.append(f"{dataset:<11} fast does not reach plain's {target:.4f} in every seed")
        print("\n".join(["", *summary, ""]), flush=True)


if __name__ == "__main__":
    main()
