"""Levers for the patch chapter's full-image CNN (its ceiling): training seconds and test
accuracy of the ``fast`` recipe on Imagenette at 64 px, per variant of the work done.

Variants as in ``limited_levers.py``: ``base``, ``ep<n>`` and ``low<k>@<scale>`` (progressive
resizing: the first k epochs on images downscaled by scale), combinable with ``+``.

    .venv/bin/python benchmarks/ceiling_levers.py --variants base low14@0.75

Every run trains from scratch in a throw-away cache. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import tempfile

from limited_levers import variant_config

from simplecnn.core.cache import Cache
from simplecnn.core.data import load_dataset
from simplecnn.core.metrics import accuracy
from simplecnn.core.recipes import recipe
from simplecnn.core.train import train_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="fast")
    parser.add_argument("--dataset", default="imagenette")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=28)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--variants", nargs="+", default=["base", "low14@0.75"])
    args = parser.parse_args()
    data = load_dataset(args.dataset, args.resolution)
    print(f"{args.recipe} recipe, {args.dataset} at {args.resolution} px, {len(data.train):,} training images")
    print(f"{'variant':22s} {'seed':>4s} {'train s':>8s} {'test acc':>8s}")
    for variant in args.variants:
        for seed in args.seeds:
            chosen = recipe(args.recipe, data.name, epochs=args.epochs, seed=seed, cpu_bf16=True)
            config = variant_config(variant, chosen.config, args.epochs)
            with tempfile.TemporaryDirectory() as tmp:
                trained = train_model(chosen.model, data, config, chosen.model_kwargs, Cache(tmp), track_val=False)
                acc = accuracy(trained.logits(data.test, "test"), data.test.labels)
            print(f"{variant:22s} {seed:4d} {trained.train_s:8.1f} {100 * acc:7.2f}%", flush=True)


if __name__ == "__main__":
    main()
